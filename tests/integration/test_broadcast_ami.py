"""Campaign calls against the AMI simulator over real TCP: AmiControl's originates, the tracker's records.

Voice broadcasts (a contact who listens, a machine with AMD() on, a press 1 to the queue, no
answer, busy, unreachable) and an agent-first dial through the support queue, each placed with
the tag the dialler chose; see tests.integration.campaign_calls for what each record must say.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.ami.simulator.synthetic import SyntheticPbx
from pbxlink.bus import InProcessBus
from pbxlink.config import PbxConfig
from tests.integration.campaign_calls import (
    QUICK,
    SECRET,
    SPEED,
    Seen,
    check_agent_first,
    check_broadcasts,
    wait_for,
)

Running = tuple[AmiAdapter, SimulatorThread, Seen]


@pytest.fixture
def asterisk() -> Iterator[Running]:
    bus, seen = InProcessBus(), Seen()
    bus.subscribe("test-seen", seen)
    traffic = SyntheticPbx(agents=8, mix=QUICK, seed=5)
    sim = SimulatorThread(
        AmiSimulator(secret=SECRET, timestampevents=True, synthetic=traffic, call_speed=SPEED)
    )
    host, port = sim.start()
    adapter = AmiAdapter(
        PbxConfig("main", "asterisk", host, port, "pbxlink", SECRET, ping_interval=5), bus.publish
    )
    adapter.start()
    try:
        wait_for(lambda: adapter.status().connected)
        yield adapter, sim, seen
    finally:
        adapter.stop()
        sim.stop()
        bus.close()


def test_broadcast_records_on_asterisk(asterisk: Running) -> None:
    adapter, sim, seen = asterisk

    def tell(number: str, behaviour: str) -> None:
        sim.call(sim.sim.customers.__setitem__, number, behaviour)  # type: ignore[attr-defined]

    check_broadcasts(adapter.control, tell, seen)


def test_agent_first_campaign_call_on_asterisk(asterisk: Running) -> None:
    adapter, _, seen = asterisk
    check_agent_first(adapter.control, "1000", seen)  # an Asterisk originate dials digits: the queue's number
