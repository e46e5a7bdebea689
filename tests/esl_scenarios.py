"""What freeswitch/SCENARIOS.md (and sip/SCENARIOS.md) says each capture must become.

The loopback captures have their agents on `loopback/20x` legs, so they are tracked with the
agent pattern a site with such phones would configure; the SIP capture uses the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

FIXTURES = Path(__file__).parent / "fixtures" / "freeswitch"
LOOPBACK_AGENTS = (r"^loopback/(?P<ext>20\d)-[ab]$",)
TOLERANCE = 0.35

_INBOUND = {"direction": "inbound", "caller": "+15551234567", "caller_name": "Customer", "queue": None}
_ANSWERED_BY_201 = {"agent": "201", "agents": ["201"], "disposition": "answered", "miss_reason": None}
_MISSED = {"agent": None, "agents": [], "disposition": "missed", "talk_seconds": 0.0}

#: scenario -> (the channel whose uuid is the call id, expected record fields)
EXPECTED: dict[str, tuple[str, dict[str, Any]]] = {
    "100_inbound_answered": (
        "loopback/100-b",
        {
            **_INBOUND,
            **_ANSWERED_BY_201,
            "callee": "100",
            "hangup_by": "agent",
            "wait_seconds": 2.0,
            "talk_seconds": 5.0,
            "recording": "/opt/fs/recordings/{call_id}.wav",
            "rang": ["201"],
        },
    ),
    "101_inbound_missed": (
        "loopback/101-b",
        {
            **_INBOUND,
            **_MISSED,
            "callee": "101",
            "miss_reason": "no_answer",
            "hangup_by": "system",
            # the 10 s timeout rang 9.84 s in the plain run and 9.22 s in the json run (FreeSWITCH's timer)
            "wait_seconds": 9.55,
            "recording": None,
            "rang": ["202"],
        },
    ),
    "102_inbound_busy": (
        "loopback/102-b",
        {
            **_INBOUND,
            **_MISSED,
            "callee": "102",
            "miss_reason": "busy",
            "hangup_by": "system",
            "wait_seconds": 0.0,
            "recording": None,
            "rang": ["203"],
        },
    ),
    "103_queue_answered": (
        "loopback/103-b",
        {
            **_INBOUND,
            **_ANSWERED_BY_201,
            "callee": "103",
            "queue": "support",
            "hangup_by": "agent",
            "wait_seconds": 2.1,
            "talk_seconds": 5.0,
            "recording": None,
            "rang": ["201"],
        },
    ),
    "104_queue_abandoned": (
        "loopback/104-b",
        {
            **_INBOUND,
            **_MISSED,
            "callee": "104",
            "queue": "sales",
            "miss_reason": "abandoned",
            "hangup_by": "customer",
            "wait_seconds": 8.0,
            "recording": None,
            "rang": ["202"],
        },
    ),
    "105_outbound_socket": (
        "loopback/105-b",
        {
            **_INBOUND,
            **_ANSWERED_BY_201,
            "callee": "105",
            "hangup_by": "agent",
            "wait_seconds": 2.0,
            "talk_seconds": 5.0,
            "recording": None,
            "rang": ["201"],
        },
    ),
    "110_click_to_call": (
        "loopback/201-a",
        {
            "direction": "outbound",
            "caller": "201",
            "caller_name": None,
            "callee": "+15557654321",
            "queue": None,
            **_ANSWERED_BY_201,
            "hangup_by": "agent",
            "wait_seconds": 1.0,
            "talk_seconds": 4.0,
            "recording": None,
            "rang": [],
        },
    ),
    "sip/sip_answered": (
        "sofia/cti/+15552220100@127.0.0.1",
        {
            "direction": "inbound",
            "caller": "+15552220100",
            "caller_name": "Customer",
            "queue": None,
            **_ANSWERED_BY_201,
            "callee": "100",
            "hangup_by": "customer",
            "wait_seconds": 2.0,
            "talk_seconds": 5.0,
            "recording": None,
            "rang": ["201"],
        },
    ),
}

#: every capture of a call: the plain runs, the json runs, the SIP run
CAPTURES = [*(f"{n}.esl" for n in EXPECTED), *(f"{n}.json.esl" for n in EXPECTED if "/" not in n)]


def scenario_of(capture: str) -> str:
    return capture.removesuffix(".esl").removesuffix(".json")


def agent_patterns(capture: str) -> tuple[str, ...] | None:
    return None if capture.startswith("sip/") else LOOPBACK_AGENTS


def frames(raw: bytes) -> Iterator[tuple[dict[str, str], bytes]]:
    """The ESL frames of a capture: envelope headers and body, as FreeSWITCH sent them."""
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\n\n", pos)
        if end < 0:
            return
        envelope = dict(line.split(": ", 1) for line in raw[pos:end].decode().split("\n") if ": " in line)
        pos = end + 2
        length = int(envelope.get("Content-Length", "0"))
        yield envelope, raw[pos : pos + length]
        pos += length


def events(capture: str) -> Iterator[tuple[dict[str, Any], datetime]]:
    """The capture's events decoded as the client hands them to the tracker, with their times."""
    for envelope, body in frames((FIXTURES / capture).read_bytes()):
        kind = envelope.get("Content-Type")
        if kind == "text/event-json":
            event: dict[str, Any] = json.loads(body)
        elif kind == "text/event-plain":
            event = {}
            head = body.split(b"\n\n", 1)[0].decode()
            for line in head.split("\n"):
                if ": " in line:
                    key, value = line.split(": ", 1)
                    value = unquote(value)
                    event[key] = (
                        [*event[key], value]
                        if isinstance(event.get(key), list)
                        else ([event[key], value] if key in event else value)
                    )
        else:
            continue
        yield event, datetime.fromtimestamp(int(event["Event-Date-Timestamp"]) / 1e6, UTC)


def call_id_of(capture: str) -> str:
    channel = EXPECTED[scenario_of(capture)][0]
    return next(
        e["Unique-ID"]
        for e, _ in events(capture)
        if e.get("Event-Name") == "CHANNEL_CREATE" and e.get("Channel-Name") == channel
    )


def check_record(capture: str, record: dict[str, Any]) -> None:
    _, expected = EXPECTED[scenario_of(capture)]
    call_id = call_id_of(capture)
    assert record["call_id"] == call_id, capture
    for key, want in expected.items():
        if key == "rang":
            continue
        got = record[key]
        if key in ("wait_seconds", "talk_seconds"):
            assert got is not None and abs(got - want) <= TOLERANCE, f"{capture}: {key} {got} != {want}"
        elif key == "recording" and want is not None:
            assert got == want.format(call_id=call_id), f"{capture}: recording {got}"
        else:
            assert got == want, f"{capture}: {key} {got!r} != {want!r}"
    assert record["end_seen"] is True and record["ended_at"] is not None
