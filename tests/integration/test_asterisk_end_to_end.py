"""Every real capture through simulator → AMI adapter → tracker → bus → call log → database → API.

The plain captures carry no `Timestamp` header, so they are replayed at their recorded pace
(times then come from the receive time), all at once, each on its own simulator; the
timestamped and SIP ones are replayed flat out, their rewritten headers keeping the spacing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.config import PbxConfig
from pbxlink.storage.calls import open_calls
from tests.integration.site import Site, ended, stored, wait_for
from tests.integration.site import mid_call as replay_mid_call
from tests.scenarios import CAPTURES, FIXTURES, check_record, ids_of

SECRET = "e2e-secret"


def pbx(site: Site, timestamps: bool, ping: float = 5.0, **sim: object) -> tuple[SimulatorThread, AmiAdapter]:
    simulator = AmiSimulator(secret=SECRET, timestampevents=timestamps, **sim)  # type: ignore[arg-type]
    return site.connect(
        simulator,
        AmiAdapter,
        lambda host, port: PbxConfig("main", "asterisk", host, port, "pbxlink", SECRET, ping_interval=ping),
    )


def mid_call(sim: SimulatorThread, capture: str):  # type: ignore[no-untyped-def]
    return replay_mid_call(sim, FIXTURES / f"{capture}.ami", ids_of(capture)["call_id"])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "pbxlink.db")
    yield s
    s.close()


def test_every_capture_becomes_one_correct_row(site: Site) -> None:
    plain = [c for c in CAPTURES if "/" not in c]
    fast = [c for c in CAPTURES if "/" in c]
    jobs = [(c, pbx(site, timestamps=False)[0], 1.0) for c in plain]
    jobs += [(c, pbx(site, timestamps=True)[0], 0.0) for c in fast]
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(lambda job: job[1].play_capture(FIXTURES / f"{job[0]}.ami", job[2]), jobs))
    for capture, _, _ in jobs:
        call_id = ids_of(capture)["call_id"]
        wait_for(lambda call_id=call_id: ended(call_id))
        [row] = stored(call_id)
        check_record(capture, row)


def test_link_dropped_mid_call_gives_one_correct_row(site: Site) -> None:
    capture = "timestamped/inbound_answered_recorded"
    sim, adapter = pbx(site, timestamps=True, ping=0.3)
    with mid_call(sim, capture) as call_id:
        sim.drop_connections()
        wait_for(lambda: adapter.status().reconnects >= 1 and adapter.status().connected)
    [row] = stored(call_id)
    check_record(capture, row)


def test_silent_pbx_is_noticed_within_two_pings_and_the_row_is_right(site: Site) -> None:
    capture = "timestamped/queue_answered"
    sim, adapter = pbx(site, timestamps=True, ping=0.3)
    with mid_call(sim, capture) as call_id:
        sim.go_silent()
        went_silent = time.monotonic()
        wait_for(lambda: not adapter.status().connected, timeout=5)
        assert time.monotonic() - went_silent <= 2 * 0.3 + 0.2
        sim.resume()
        wait_for(lambda: adapter.status().connected)
    [row] = stored(call_id)
    check_record(capture, row)


def test_pbxlink_restarted_mid_call_gives_one_correct_row(site: Site) -> None:
    capture = "timestamped/blind_transfer"
    sim, first = pbx(site, timestamps=True)
    with mid_call(sim, capture) as call_id:
        first.stop()  # pbxlink goes away mid-call ...
        time.sleep(0.5)
        site.adapter(AmiAdapter, first.pbx)  # ... and comes back
    [row] = stored(call_id)
    assert row["end_seen"] is True
    check_record(capture, row)


def test_call_cut_by_a_pbx_restart_is_closed_once_by_the_system(site: Site) -> None:
    sim, _ = pbx(site, timestamps=True, ping=0.3, restart_downtime=0.3)
    with mid_call(sim, "timestamped/click_to_call") as call_id:
        sim.restart()  # the replay's own later hangups (the far party's) reach no call any more
        wait_for(lambda: ended(call_id))
    [row] = stored(call_id)
    assert (row["hangup_by"], row["disposition"]) == ("system", "answered")
    assert open_calls("main") == []
