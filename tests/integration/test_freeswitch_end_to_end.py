"""Every FreeSWITCH capture through ESL simulator → ESL adapter → tracker → bus → call log → database.

`Event-Date-Timestamp` is rewritten by the simulator keeping the recorded spacing, so the
replays run flat out and the records still carry the recorded durations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from pbxlink.bus import InProcessBus
from pbxlink.config import PbxConfig
from pbxlink.esl.adapter import EslAdapter
from pbxlink.esl.simulator import EslSimulator, SimulatorThread
from pbxlink.services.call_log import call_log_handler
from pbxlink.storage.calls import CallFilter, open_calls, search_calls
from pbxlink.storage.database import connect
from pbxlink.storage.migrations import migrate
from tests.esl_scenarios import CAPTURES, FIXTURES, agent_patterns, call_id_of, check_record

PASSWORD = "e2e-password"


class Site:
    """pbxlink as `run` wires it for FreeSWITCH (adapter, bus, call log, database), minus the web."""

    def __init__(self, db_path: Path) -> None:
        migrate(connect(f"sqlite:///{db_path}"))
        self.bus = InProcessBus()
        self.bus.subscribe("call-log", call_log_handler())
        self.adapters: list[EslAdapter] = []
        self.sims: list[SimulatorThread] = []

    def pbx(self, capture: str, ping: float = 5.0, **sim: object) -> tuple[SimulatorThread, EslAdapter]:
        thread = SimulatorThread(EslSimulator(password=PASSWORD, **sim))  # type: ignore[arg-type]
        host, port = thread.start()
        self.sims.append(thread)
        cfg = PbxConfig(
            "fs",
            "freeswitch",
            host,
            port,
            "pbxlink",
            PASSWORD,
            ping_interval=ping,
            agent_patterns=agent_patterns(capture),
        )
        adapter = EslAdapter(cfg, self.bus.publish, lambda: open_calls("fs"))
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


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "pbxlink.db")
    yield s
    s.close()


@contextmanager
def mid_call(sim: SimulatorThread, capture: str) -> Iterator[str]:
    """Replay `capture` at its pace; the body runs once the call is answered; then the replay ends."""
    call_id = call_id_of(capture)
    with ThreadPoolExecutor(1) as pool:
        replay = pool.submit(sim.play_capture, FIXTURES / capture, 1.0)
        wait_for(lambda: any(r["answered_at"] for r in stored(call_id)))
        yield call_id
        replay.result(timeout=30)
    wait_for(lambda: ended(call_id))


def test_every_capture_becomes_one_correct_row(site: Site) -> None:
    jobs = [(capture, site.pbx(capture)[0]) for capture in CAPTURES]
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(lambda job: job[1].play_capture(FIXTURES / job[0], 0.0), jobs))
    for capture, _ in jobs:
        call_id = call_id_of(capture)
        wait_for(lambda call_id=call_id: ended(call_id))
        [row] = stored(call_id)
        check_record(capture, row)


def test_link_dropped_mid_call_gives_one_correct_row(site: Site) -> None:
    capture = "100_inbound_answered.esl"
    sim, adapter = site.pbx(capture, ping=0.3)
    with mid_call(sim, capture) as call_id:
        sim.drop_connections()
        wait_for(lambda: adapter.status().reconnects >= 1 and adapter.status().connected)
    [row] = stored(call_id)
    check_record(capture, row)


def test_silent_freeswitch_is_noticed_and_the_row_is_right(site: Site) -> None:
    capture = "103_queue_answered.esl"
    sim, adapter = site.pbx(capture, ping=0.3)
    with mid_call(sim, capture) as call_id:
        sim.go_silent()
        went_silent = time.monotonic()
        wait_for(lambda: not adapter.status().connected, timeout=5)
        assert time.monotonic() - went_silent <= 2 * 0.3 + 0.3
        sim.resume()
        wait_for(lambda: adapter.status().connected)
    [row] = stored(call_id)
    check_record(capture, row)


def test_pbxlink_restarted_mid_call_gives_one_correct_row(site: Site) -> None:
    capture = "sip/sip_answered.esl"
    sim, first = site.pbx(capture)
    with mid_call(sim, capture) as call_id:
        first.stop()  # pbxlink goes away mid-call ...
        time.sleep(0.3)
        second = EslAdapter(first.pbx, site.bus.publish, lambda: open_calls("fs"))  # ... and comes back
        second.start()
        site.adapters.append(second)
    [row] = stored(call_id)
    check_record(capture, row)


def test_call_cut_by_a_freeswitch_restart_is_closed_once_by_the_system(site: Site) -> None:
    capture = "110_click_to_call.esl"
    sim, _ = site.pbx(capture, ping=0.3, restart_downtime=0.3)
    with mid_call(sim, capture) as call_id:
        sim.restart()  # SYSTEM_SHUTDOWN hangups, then the socket closes without +OK bye
        wait_for(lambda: ended(call_id))
    [row] = stored(call_id)
    assert (row["hangup_by"], row["disposition"]) == ("system", "answered")
    assert open_calls("fs") == []
