"""Every FreeSWITCH capture through ESL simulator → ESL adapter → tracker → bus → call log → database.

`Event-Date-Timestamp` is rewritten by the simulator keeping the recorded spacing, so the
replays run flat out and the records still carry the recorded durations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pbxlink.config import PbxConfig
from pbxlink.esl.adapter import EslAdapter
from pbxlink.esl.simulator import EslSimulator, SimulatorThread
from pbxlink.storage.calls import open_calls
from tests.esl_scenarios import CAPTURES, FIXTURES, agent_patterns, call_id_of, check_record
from tests.integration.site import Site, ended, stored, wait_for
from tests.integration.site import mid_call as replay_mid_call

PASSWORD = "e2e-password"


def pbx(site: Site, capture: str, ping: float = 5.0, **sim: object) -> tuple[SimulatorThread, EslAdapter]:
    patterns = agent_patterns(capture)
    return site.connect(
        EslSimulator(password=PASSWORD, **sim),  # type: ignore[arg-type]
        EslAdapter,
        lambda host, port: PbxConfig(
            "fs", "freeswitch", host, port, "pbxlink", PASSWORD, ping_interval=ping, agent_patterns=patterns
        ),
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "pbxlink.db")
    yield s
    s.close()


def mid_call(sim: SimulatorThread, capture: str):  # type: ignore[no-untyped-def]
    return replay_mid_call(sim, FIXTURES / capture, call_id_of(capture))


def test_every_capture_becomes_one_correct_row(site: Site) -> None:
    jobs = [(capture, pbx(site, capture)[0]) for capture in CAPTURES]
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(lambda job: job[1].play_capture(FIXTURES / job[0], 0.0), jobs))
    for capture, _ in jobs:
        call_id = call_id_of(capture)
        wait_for(lambda call_id=call_id: ended(call_id))
        [row] = stored(call_id)
        check_record(capture, row)


def test_link_dropped_mid_call_gives_one_correct_row(site: Site) -> None:
    capture = "100_inbound_answered.esl"
    sim, adapter = pbx(site, capture, ping=0.3)
    with mid_call(sim, capture) as call_id:
        sim.drop_connections()
        wait_for(lambda: adapter.status().reconnects >= 1 and adapter.status().connected)
    [row] = stored(call_id)
    check_record(capture, row)


def test_silent_freeswitch_is_noticed_and_the_row_is_right(site: Site) -> None:
    capture = "103_queue_answered.esl"
    sim, adapter = pbx(site, capture, ping=0.3)
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
    sim, first = pbx(site, capture)
    with mid_call(sim, capture) as call_id:
        first.stop()  # pbxlink goes away mid-call ...
        time.sleep(0.3)
        site.adapter(EslAdapter, first.pbx)  # ... and comes back
    [row] = stored(call_id)
    check_record(capture, row)


def test_call_cut_by_a_freeswitch_restart_is_closed_once_by_the_system(site: Site) -> None:
    capture = "110_click_to_call.esl"
    sim, _ = pbx(site, capture, ping=0.3, restart_downtime=0.3)
    with mid_call(sim, capture) as call_id:
        sim.restart()  # SYSTEM_SHUTDOWN hangups, then the socket closes without +OK bye
        wait_for(lambda: ended(call_id))
    [row] = stored(call_id)
    assert (row["hangup_by"], row["disposition"]) == ("system", "answered")
    assert open_calls("fs") == []
