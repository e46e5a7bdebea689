"""What SCENARIOS.md says each real capture must become: shared by the unit replay and the TCP tests.

Times are checked with a tolerance (`TOLERANCE` seconds): the scenarios give them rounded,
and the re-captured `timestamped/` runs differ by a few milliseconds. Ids differ between
the two runs, so the call id is the Linkedid of the capture's first Newchannel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "asterisk"
TOLERANCE = 0.35

#: name -> (folder-relative path without suffix, expected record fields)
EXPECTED: dict[str, dict[str, Any]] = {
    "inbound_answered_recorded": {
        "direction": "inbound",
        "caller": "+15551234567",
        "caller_name": "Jane Customer",
        "callee": "100",
        "agent": "201",
        "agents": ["201"],
        "queue": None,
        "disposition": "answered",
        "miss_reason": None,
        "hangup_by": "agent",
        "transfers": [],
        "wait_seconds": 2.0,
        "talk_seconds": 5.5,
        "recording": "/opt/ast/var/spool/asterisk/monitor/{caller_uid}.wav",
        "end_seen": True,
        "rang": ["201"],
    },
    "inbound_missed_noanswer": {
        "direction": "inbound",
        "caller": "+15552220101",
        "caller_name": "Bob Missed",
        "callee": "101",
        "agent": None,
        "agents": [],
        "queue": None,
        "disposition": "missed",
        "miss_reason": "no_answer",
        "hangup_by": "system",
        "transfers": [],
        "wait_seconds": 10.0,
        "talk_seconds": 0.0,
        "recording": None,
        "end_seen": True,
        "rang": ["202"],
    },
    "inbound_busy": {
        "direction": "inbound",
        "caller": "+15552220102",
        "caller_name": "Carol Busy",
        "callee": "102",
        "agent": None,
        "agents": [],
        "queue": None,
        "disposition": "missed",
        "miss_reason": "busy",
        "hangup_by": "customer",
        "transfers": [],
        "wait_seconds": 0.0,
        "talk_seconds": 0.0,
        "recording": None,
        "end_seen": True,
        "rang": ["203"],
    },
    "queue_answered": {
        "direction": "inbound",
        "caller": "+15552220103",
        "caller_name": "Dave Queue",
        "callee": "103",
        "agent": "201",
        "agents": ["201"],
        "queue": "support",
        "disposition": "answered",
        "miss_reason": None,
        "hangup_by": "agent",
        "transfers": [],
        "wait_seconds": 2.0,
        "talk_seconds": 5.5,
        "recording": None,
        "end_seen": True,
        "rang": ["201", "202"],
    },
    "queue_abandoned": {
        "direction": "inbound",
        "caller": "+15552220104",
        "caller_name": "Erin Abandon",
        "callee": "104",
        "agent": None,
        "agents": [],
        "queue": "sales",
        "disposition": "missed",
        "miss_reason": "abandoned",
        "hangup_by": "customer",
        "transfers": [],
        "wait_seconds": 4.5,
        "talk_seconds": 0.0,
        "recording": None,
        "end_seen": True,
        "rang": ["202"],
    },
    "agi_lookup": {
        "direction": "inbound",
        "caller": "+15557770105",
        "caller_name": "ACME Corp",
        "callee": "105",
        "agent": "201",
        "agents": ["201"],
        "queue": None,
        "disposition": "answered",
        "miss_reason": None,
        "hangup_by": "agent",
        "transfers": [],
        "wait_seconds": 2.0,
        "talk_seconds": 5.5,
        "recording": None,
        "end_seen": True,
        "rang": ["201"],
    },
    "blind_transfer": {
        "direction": "inbound",
        "caller": "+15552220106",
        "caller_name": "Gina Transfer",
        "callee": "106",
        "agent": "204",
        "agents": ["204", "201"],
        "queue": None,
        "disposition": "answered",
        "miss_reason": None,
        "hangup_by": "agent",
        "transfers": [{"from": "204", "to": "201", "kind": "blind"}],
        "wait_seconds": 2.0,
        "talk_seconds": 8.5,
        "recording": None,
        "end_seen": True,
        "rang": ["204", "201"],
    },
    "click_to_call": {
        "direction": "outbound",
        "caller": "204",
        "caller_name": None,
        "callee": "15559876543",
        "agent": "204",
        "agents": ["204"],
        "queue": None,
        "disposition": "answered",
        "miss_reason": None,
        "hangup_by": "customer",
        "transfers": [],
        "wait_seconds": 3.0,
        "talk_seconds": 8.5,
        "recording": None,
        "end_seen": True,
        "rang": [],
    },
    "sip/sip_answered": {
        "direction": "inbound",
        "caller": "+15551234567",
        "caller_name": "Jane Customer",
        "callee": "100",
        "agent": "201",
        "agents": ["201"],
        "queue": None,
        "disposition": "answered",
        "miss_reason": None,
        "hangup_by": "agent",
        "transfers": [],
        "wait_seconds": 2.0,
        "talk_seconds": 5.0,
        "recording": "/opt/ast/var/spool/asterisk/monitor/{caller_uid}.wav",
        "end_seen": True,
        "rang": ["201"],
    },
    "sip/sip_queue_answered": {
        "direction": "inbound",
        "caller": "+15552220103",
        "caller_name": "Dave Queue",
        "callee": "103",
        "agent": "201",
        "agents": ["201"],
        "queue": "sip-support",
        "disposition": "answered",
        "miss_reason": None,
        "hangup_by": "agent",
        "transfers": [],
        "wait_seconds": 2.0,
        "talk_seconds": 5.0,
        "recording": None,
        "end_seen": True,
        "rang": ["201", "202"],
    },
}

#: every capture with calls: the plain runs, the timestamped re-runs, and the SIP runs
CAPTURES: list[str] = [
    *(n for n in EXPECTED if not n.startswith("sip/")),
    *(f"timestamped/{n}" for n in EXPECTED if not n.startswith("sip/")),
    *(n for n in EXPECTED if n.startswith("sip/")),
]


def scenario_of(capture: str) -> str:
    return capture.removeprefix("timestamped/")


def messages(capture: str) -> list[dict[str, Any]]:
    with open(FIXTURES / f"{capture}.jsonl") as fh:
        return [json.loads(line) for line in fh]


def ids_of(capture: str) -> dict[str, str]:
    """The call id (Linkedid) and the caller leg's Uniqueid, read from the capture itself."""
    first = next(m["fields"] for m in messages(capture) if m["fields"].get("Event") == "Newchannel")
    linkedid = first["Linkedid"]
    caller_uid = linkedid
    for m in messages(capture):
        f = m["fields"]
        if f.get("Event") == "VarSet" and f.get("Variable") == "MIXMONITOR_FILENAME":
            caller_uid = f["Uniqueid"]
    return {"call_id": linkedid, "caller_uid": caller_uid}


def check_record(capture: str, record: dict[str, Any]) -> None:
    """Assert a call record (the `to_dict()` shape) is what SCENARIOS.md says for this capture."""
    expected = EXPECTED[scenario_of(capture)]
    ids = ids_of(capture)
    assert record["call_id"] == ids["call_id"], capture
    for key, want in expected.items():
        if key == "rang":
            continue
        got = record[key]
        if key in ("wait_seconds", "talk_seconds"):
            assert got is not None and abs(got - want) <= TOLERANCE, f"{capture}: {key} {got} != {want}"
        elif key == "recording" and want is not None:
            assert got == want.format(**ids), f"{capture}: recording {got}"
        else:
            assert got == want, f"{capture}: {key} {got!r} != {want!r}"
    assert record["started_at"] is not None and record["ended_at"] is not None
    if record["disposition"] == "answered":
        assert record["answered_at"] is not None
