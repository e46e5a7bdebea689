"""Replay every FreeSWITCH capture (plain and json) through the pure tracker; check SCENARIOS.md."""

from __future__ import annotations

import pytest

from pbxlink.domain.calls import CallEnded, CallEvent, CallRinging, CallStarted
from pbxlink.esl.channels import agent_map
from pbxlink.esl.tracker import EslTracker
from tests.esl_scenarios import CAPTURES, EXPECTED, agent_patterns, check_record, events, scenario_of


def replay(capture: str) -> list[CallEvent]:
    tracker = EslTracker("fs", agent_map(agent_patterns(capture)))
    out: list[CallEvent] = []
    for event, at in events(capture):
        out += tracker.feed(event, at)
    assert tracker.open_calls == []
    return out


@pytest.mark.parametrize("capture", CAPTURES)
def test_capture_becomes_exactly_one_correct_record(capture: str) -> None:
    out = replay(capture)
    ended = [e.call for e in out if isinstance(e, CallEnded)]
    assert len(ended) == 1, [c.to_dict() for c in ended]
    check_record(capture, ended[0].to_dict())
    assert len([e for e in out if isinstance(e, CallStarted)]) == 1


@pytest.mark.parametrize("capture", CAPTURES)
def test_every_agent_rung_gets_one_ringing_event(capture: str) -> None:
    rang = [e.agent for e in replay(capture) if isinstance(e, CallRinging)]
    assert sorted(rang) == sorted(EXPECTED[scenario_of(capture)][1]["rang"])
