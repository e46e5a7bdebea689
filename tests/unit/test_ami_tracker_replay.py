"""Replay every real capture through the pure tracker and check the record against SCENARIOS.md."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pbxlink.ami.tracker import AmiTracker
from pbxlink.domain.calls import CallEnded, CallEvent, CallRinging, CallStarted, CallUpdated
from tests.scenarios import CAPTURES, EXPECTED, check_record, messages, scenario_of


def replay(capture: str) -> list[CallEvent]:
    tracker = AmiTracker("main")
    out: list[CallEvent] = []
    for m in messages(capture):
        if m["kind"] != "event":
            continue
        fields = m["fields"]
        ts = fields.get("Timestamp")
        at = datetime.fromtimestamp(float(ts) if ts else m["recv_ts"], UTC)
        out += tracker.feed(fields, at)
    assert tracker.open_calls == []
    return out


@pytest.mark.parametrize("capture", CAPTURES)
def test_capture_becomes_exactly_one_correct_record(capture: str) -> None:
    events = replay(capture)
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert len(ended) == 1, [e.call.call_id for e in ended]
    check_record(capture, ended[0].call.to_dict())
    started = [e for e in events if isinstance(e, CallStarted)]
    assert len(started) == 1 and events[0] is started[0]


@pytest.mark.parametrize("capture", CAPTURES)
def test_every_agent_rung_gets_one_ringing_event(capture: str) -> None:
    events = replay(capture)
    rang = [e.agent for e in events if isinstance(e, CallRinging)]
    assert sorted(rang) == sorted(EXPECTED[scenario_of(capture)]["rang"])


@pytest.mark.parametrize("capture", ["agi_lookup", "timestamped/agi_lookup"])
def test_agi_caller_name_is_known_before_the_agent_rings(capture: str) -> None:
    events = replay(capture)
    ringing = next(i for i, e in enumerate(events) if isinstance(e, CallRinging))
    named = [
        i for i, e in enumerate(events) if isinstance(e, CallUpdated) and e.call.caller_name == "ACME Corp"
    ]
    assert named and named[0] < ringing
    assert events[ringing].call.caller_name == "ACME Corp"
