"""Callbacks over real TCP: PbxControl.originate on each simulator, the call's record on the bus.

Each PBX gets its simulator and its adapter on an in-process bus. Every originate is tagged
by pbxlink; the simulator plays the agent-first or customer-first flow with the customer
doing what the test told it; the CallEnded on the bus must carry the originate's tag and
the outcome the customer was told to produce. An originate that makes no channel at all
(an unreachable customer) must produce no record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.simulator import AmiSimulator, SimulatorThread
from pbxlink.ami.simulator.synthetic import SyntheticPbx as AmiTraffic
from pbxlink.bus import InProcessBus
from pbxlink.config import PbxConfig
from pbxlink.domain.calls import CallEnded, CallEvent, CallRecord
from pbxlink.domain.ports import OriginateRequest
from pbxlink.esl.adapter import EslAdapter
from pbxlink.esl.simulator import EslSimulator
from pbxlink.esl.simulator.synthetic import SyntheticPbx as EslTraffic
from pbxlink.simulation.traffic import TrafficMix

SECRET = "cb-secret"
QUICK = TrafficMix(ring=(0.5, 1.0), talk=(1.0, 2.0))
SPEED = 50  # generated calls run 50 times faster; their events keep the real spacing
AGENTS = {str(201 + i) for i in range(8)}
OUTCOMES = {"answer": ("answered", None), "busy": ("missed", "busy"), "no_answer": ("missed", "no_answer")}


@dataclass(frozen=True)
class Pbx:
    name: str
    sim: SimulatorThread
    adapter: Any  # AmiAdapter | EslAdapter
    queue: str  # how an originate names the support queue on this PBX

    def tell(self, number: str, behaviour: str) -> None:
        self.sim.call(self.sim.sim.customers.__setitem__, number, behaviour)  # type: ignore[attr-defined]


class Ended:
    """The CallEnded events the bus delivers, by origin."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[CallRecord] = []

    def __call__(self, event: CallEvent) -> None:
        if isinstance(event, CallEnded):
            with self._lock:
                self.calls.append(event.call)

    def of(self, tag: str) -> list[CallRecord]:
        with self._lock:
            return [c for c in self.calls if c.origin == tag]


def wait_for(cond: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def bus() -> Iterator[tuple[InProcessBus, Ended]]:
    b, ended = InProcessBus(), Ended()
    b.subscribe("test-ended", ended)
    yield b, ended
    b.close()


@pytest.fixture(params=["asterisk", "freeswitch"])
def pbx(request: pytest.FixtureRequest, bus: tuple[InProcessBus, Ended]) -> Iterator[Pbx]:
    if request.param == "asterisk":
        traffic = AmiTraffic(agents=8, mix=QUICK, seed=3)
        sim = SimulatorThread(
            AmiSimulator(secret=SECRET, timestampevents=True, synthetic=traffic, call_speed=SPEED)
        )
        host, port = sim.start()
        cfg = PbxConfig("main", "asterisk", host, port, "pbxlink", SECRET, ping_interval=5)
        adapter: Any = AmiAdapter(cfg, bus[0].publish)
        queue = "1000"  # an Asterisk originate dials digits: the queue's number
    else:
        sim = SimulatorThread(
            EslSimulator(password=SECRET, synthetic=EslTraffic(agents=8, mix=QUICK, seed=3), call_speed=SPEED)
        )
        host, port = sim.start()
        adapter = EslAdapter(
            PbxConfig("fs", "freeswitch", host, port, "pbxlink", SECRET, ping_interval=5), bus[0].publish
        )
        queue = "support"
    adapter.start()
    try:
        wait_for(lambda: adapter.status().connected)
        yield Pbx(request.param, sim, adapter, queue)
    finally:
        adapter.stop()
        sim.stop()


def test_every_callback_call_carries_its_tag_and_the_outcome_the_customer_gave(
    pbx: Pbx, bus: tuple[InProcessBus, Ended]
) -> None:
    _, ended = bus
    cases = [  # (flow, endpoint, exten, customer, behaviour); direct agents first so queues pick others
        ("agent-first", "201", "+15550000101", "+15550000101", "answer"),
        ("agent-first", "202", "+15550000102", "+15550000102", "busy"),
        ("agent-first", "203", "+15550000103", "+15550000103", "no_answer"),
        ("agent-first", pbx.queue, "+15550000104", "+15550000104", "answer"),
        ("customer-first", "+15550000105", pbx.queue, "+15550000105", "answer"),
        ("customer-first", "+15550000106", pbx.queue, "+15550000106", "busy"),
        ("customer-first", "+15550000107", pbx.queue, "+15550000107", "no_answer"),
    ]
    placed = []
    for flow, endpoint, exten, customer, behaviour in cases:
        pbx.tell(customer, behaviour)
        request = OriginateRequest(
            endpoint=endpoint,
            exten=exten,
            context=f"pbxlink-callback-{flow}",
            caller_id="ACME <+15550001000>",
        )
        placed.append((flow, endpoint, customer, behaviour, pbx.adapter.control.originate(request)))
    pbx.tell("+15550000199", "fail")
    unreachable = pbx.adapter.control.originate(
        OriginateRequest(endpoint="+15550000199", exten=pbx.queue, context="pbxlink-callback-customer-first")
    )

    wait_for(lambda: all(ended.of(handle.tag) for *_, handle in placed))
    for flow, endpoint, customer, behaviour, handle in placed:
        [rec] = ended.of(handle.tag)  # exactly one record per originate
        why = (pbx.name, flow, endpoint, behaviour, rec.to_dict())
        assert handle.pbx == rec.pbx == pbx.adapter.pbx.name, why
        assert (rec.disposition, rec.miss_reason) == OUTCOMES[behaviour], why
        assert (rec.direction, rec.callee) == ("outbound", customer), why
        if flow == "customer-first":  # nobody dialled out: the agent is whoever took it in the queue
            assert rec.caller is None and (rec.queue == "support") == (behaviour == "answer"), why
        elif endpoint == pbx.queue:  # the member who answered placed the call
            assert rec.caller in AGENTS, why
        else:
            assert rec.caller == endpoint, why
        if behaviour == "answer":
            assert rec.agent in AGENTS and rec.agent in rec.agents and rec.talk_seconds, why
    assert ended.of(unreachable.tag) == []  # no channel was ever made: no record
    assert len(ended.calls) == len(placed)
