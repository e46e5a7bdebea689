"""Campaign calls against the ESL simulator over real TCP: EslControl's originates, the tracker's records.

Voice broadcasts (a contact who listens, a machine with mod_avmd on, a press 1 to the queue, no
answer, busy, unreachable) and an agent-first dial through the support queue, each placed with
the tag the dialler chose; see tests.integration.campaign_calls for what each record must say.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pbxlink.bus import InProcessBus
from pbxlink.config import PbxConfig
from pbxlink.esl.adapter import EslAdapter
from pbxlink.esl.simulator import EslSimulator, SimulatorThread
from pbxlink.esl.simulator.synthetic import SyntheticPbx
from tests.integration.campaign_calls import (
    QUICK,
    SECRET,
    SPEED,
    Seen,
    check_agent_first,
    check_broadcasts,
    wait_for,
)

Running = tuple[EslAdapter, SimulatorThread, Seen]


@pytest.fixture
def freeswitch() -> Iterator[Running]:
    bus, seen = InProcessBus(), Seen()
    bus.subscribe("test-seen", seen)
    traffic = SyntheticPbx(agents=8, mix=QUICK, seed=5)
    sim = SimulatorThread(EslSimulator(password=SECRET, synthetic=traffic, call_speed=SPEED))
    host, port = sim.start()
    adapter = EslAdapter(
        PbxConfig("fs", "freeswitch", host, port, "pbxlink", SECRET, ping_interval=5), bus.publish
    )
    adapter.start()
    try:
        wait_for(lambda: adapter.status().connected)
        yield adapter, sim, seen
    finally:
        adapter.stop()
        sim.stop()
        bus.close()


def test_broadcast_records_on_freeswitch(freeswitch: Running) -> None:
    adapter, sim, seen = freeswitch

    def tell(number: str, behaviour: str) -> None:
        sim.call(sim.sim.customers.__setitem__, number, behaviour)  # type: ignore[attr-defined]

    check_broadcasts(adapter.control, tell, seen)


def test_agent_first_campaign_call_on_freeswitch(
    freeswitch: Running,
) -> None:
    adapter, _, seen = freeswitch
    check_agent_first(adapter.control, "support", seen)
