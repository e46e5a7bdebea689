"""The ESL tracker against generated FreeSWITCH traffic: overlapping sofia calls with known outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pbxlink.domain.calls import CallEnded
from pbxlink.esl.simulator.synthetic import SyntheticPbx
from pbxlink.esl.tracker import EslTracker
from pbxlink.simulation.timeline import merge


def as_dict(headers: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Headers as the client hands them over: a repeated one (Hangup-Cause) as the list of its values."""
    event: dict[str, str | list[str]] = {}
    for key, value in headers:
        old = event.get(key)
        event[key] = value if old is None else [*old, value] if isinstance(old, list) else [old, value]
    return event


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_overlapping_generated_calls_each_become_their_expected_record(seed: int) -> None:
    pbx = SyntheticPbx(agents=8, seed=seed)
    timelines = pbx.calls(200, start=1_795_440_000.0, calls_per_minute=120)
    tracker = EslTracker("fs")
    records: dict[str, dict[str, object]] = {}
    for ts, event in merge(timelines):
        for ev in tracker.feed(as_dict(list(event.headers)), datetime.fromtimestamp(ts, UTC)):
            if isinstance(ev, CallEnded):
                assert ev.call.call_id not in records, "a call ended twice"
                records[ev.call.call_id] = ev.call.to_dict()
    assert tracker.open_calls == []
    assert len(records) == len(timelines)
    for timeline in timelines:
        want, got = timeline.expected, records[timeline.expected.call_id]
        for key in (
            "direction",
            "caller",
            "callee",
            "agent",
            "agents",
            "queue",
            "disposition",
            "miss_reason",
            "hangup_by",
            "recording",
        ):
            assert got[key] == getattr(want, key), (want.call_id, key, got[key], getattr(want, key))
        assert got["caller_name"] == (want.caller_name or None)
        assert abs(got["wait_seconds"] - want.wait_seconds) < 0.1, (want, got)  # type: ignore[operator]
        assert abs(got["talk_seconds"] - want.talk_seconds) < 0.1, (want, got)  # type: ignore[operator]
