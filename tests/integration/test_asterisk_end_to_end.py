"""Every real capture through simulator → AMI adapter → tracker → bus → call log → database → API.

The plain captures carry no `Timestamp` header, so they are replayed at their recorded pace
(times then come from the receive time), all at once, each on its own simulator; the
timestamped and SIP ones are replayed flat out, their rewritten headers keeping the spacing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.bus import InProcessBus
from pbxlink.config import PbxConfig
from pbxlink.services.call_log import call_log_handler
from pbxlink.storage.calls import CallFilter, open_calls, search_calls
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from tests.scenarios import CAPTURES, FIXTURES, check_record, ids_of

SECRET = "e2e-secret"


class Site:
    """pbxlink as `run` wires it (adapters, bus, call log, database), minus the web server."""

    def __init__(self, db_path: Path) -> None:
        migrate(connect(f"sqlite:///{db_path}"))
        self.bus = InProcessBus()
        self.bus.subscribe("call-log", call_log_handler())
        self.adapters: list[AmiAdapter] = []
        self.sims: list[SimulatorThread] = []

    def pbx(self, timestamps: bool, ping: float = 5.0, **sim: object) -> tuple[SimulatorThread, AmiAdapter]:
        thread = SimulatorThread(AmiSimulator(secret=SECRET, timestampevents=timestamps, **sim))  # type: ignore[arg-type]
        host, port = thread.start()
        self.sims.append(thread)
        cfg = PbxConfig("main", "asterisk", host, port, "pbxlink", SECRET, ping_interval=ping)
        adapter = AmiAdapter(cfg, self.bus.publish, lambda: open_calls("main"))
        adapter.start()
        self.adapters.append(adapter)
        wait_for(lambda: adapter.status().connected)
        return thread, adapter

    def close(self) -> None:
        for adapter in self.adapters:
            adapter.stop()
        self.bus.close()
        for sim in self.sims:
            sim.stop()


def wait_for(cond: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def stored(call_id: str) -> list[dict[str, object]]:
    rows, _ = search_calls(CallFilter(), limit=1000)
    return [r for r in rows if r["call_id"] == call_id]


def ended(call_id: str) -> bool:
    rows = stored(call_id)
    return bool(rows) and rows[0]["ended_at"] is not None


@contextmanager
def mid_call(sim: SimulatorThread, capture: str) -> Iterator[str]:
    """Replay `capture` at its pace; the body runs once the call is answered; then the replay ends."""
    call_id = ids_of(capture)["call_id"]
    with ThreadPoolExecutor(1) as pool:
        replay = pool.submit(sim.play_capture, FIXTURES / f"{capture}.ami", 1.0)
        wait_for(lambda: any(r["answered_at"] for r in stored(call_id)))
        yield call_id
        replay.result(timeout=30)
    wait_for(lambda: ended(call_id))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "pbxlink.db")
    yield s
    s.close()


def test_every_capture_becomes_one_correct_row(site: Site) -> None:
    plain = [c for c in CAPTURES if "/" not in c]
    fast = [c for c in CAPTURES if "/" in c]
    jobs = [(c, site.pbx(timestamps=False)[0], 1.0) for c in plain]
    jobs += [(c, site.pbx(timestamps=True)[0], 0.0) for c in fast]
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(lambda job: job[1].play_capture(FIXTURES / f"{job[0]}.ami", job[2]), jobs))
    for capture, _, _ in jobs:
        call_id = ids_of(capture)["call_id"]
        wait_for(lambda call_id=call_id: ended(call_id))
        [row] = stored(call_id)
        check_record(capture, row)


def test_link_dropped_mid_call_gives_one_correct_row(site: Site) -> None:
    capture = "timestamped/inbound_answered_recorded"
    sim, adapter = site.pbx(timestamps=True, ping=0.3)
    with mid_call(sim, capture) as call_id:
        sim.drop_connections()
        wait_for(lambda: adapter.status().reconnects >= 1 and adapter.status().connected)
    [row] = stored(call_id)
    check_record(capture, row)


def test_silent_pbx_is_noticed_within_two_pings_and_the_row_is_right(site: Site) -> None:
    capture = "timestamped/queue_answered"
    sim, adapter = site.pbx(timestamps=True, ping=0.3)
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
    sim, first = site.pbx(timestamps=True)
    with mid_call(sim, capture) as call_id:
        first.stop()  # pbxlink goes away mid-call ...
        time.sleep(0.5)
        second = AmiAdapter(first.pbx, site.bus.publish, lambda: open_calls("main"))  # ... and comes back
        second.start()
        site.adapters.append(second)
    [row] = stored(call_id)
    assert row["end_seen"] is True
    check_record(capture, row)


def test_call_cut_by_a_pbx_restart_is_closed_once_by_the_system(site: Site) -> None:
    sim, _ = site.pbx(timestamps=True, ping=0.3, restart_downtime=0.3)
    with mid_call(sim, "timestamped/click_to_call") as call_id:
        sim.restart()  # the replay's own later hangups (the far party's) reach no call any more
        wait_for(lambda: ended(call_id))
    [row] = stored(call_id)
    assert (row["hangup_by"], row["disposition"]) == ("system", "answered")
    assert open_calls("main") == []
