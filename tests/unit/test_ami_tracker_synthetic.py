"""The tracker against generated traffic: hundreds of overlapping calls, each with its known outcome."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pbxlink.ami.simulator.synthetic import SyntheticPbx
from pbxlink.ami.tracker import AmiTracker
from pbxlink.domain.calls import CallEnded
from pbxlink.simulation.timeline import merge


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_overlapping_generated_calls_each_become_their_expected_record(seed: int) -> None:
    pbx = SyntheticPbx(agents=8, seed=seed)
    timelines = pbx.calls(300, start=1_795_440_000.0, calls_per_minute=120)
    tracker = AmiTracker("main")
    records = {}
    for ts, headers in merge(timelines):
        event: dict[str, object] = {}
        for key, value in headers:
            event[key] = (
                [*event[key], value]
                if key in event and isinstance(event[key], list)
                else ([event[key], value] if key in event else value)
            )
        for ev in tracker.feed(event, datetime.fromtimestamp(ts, UTC)):  # type: ignore[arg-type]
            if isinstance(ev, CallEnded):
                assert ev.call.call_id not in records, "a call ended twice"
                records[ev.call.call_id] = ev.call.to_dict()
    assert tracker.open_calls == []
    assert len(records) == len(timelines)
    for timeline in timelines:
        want = timeline.expected
        got = records[want.call_id]
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
        assert abs(got["wait_seconds"] - want.wait_seconds) < 0.05, (want, got)
        assert abs(got["talk_seconds"] - want.talk_seconds) < 0.05, (want, got)
