"""A missed call replayed through each simulator becomes exactly one callback, placed at the right
moment and never outside business hours, and the callback's own call settles it.

Real parts: the captured missed call played by the AMI or ESL simulator over TCP, the adapter,
the bus, the call log on SQLite, the CallbackService, and the adapter's PbxControl sending the
originate back to the simulator, which plays the callback. The test holds the service's clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pbxlink.ami.adapter import AmiAdapter
from pbxlink.ami.simulator import AmiSimulator
from pbxlink.config import CallbackPolicyConfig, PbxConfig
from pbxlink.domain.callback_policy import CallbackPolicy
from pbxlink.domain.phone import numbers
from pbxlink.domain.ports import OriginateHandle, OriginateRequest, PbxControl
from pbxlink.esl.adapter import EslAdapter
from pbxlink.esl.simulator import EslSimulator
from pbxlink.services.callbacks import CallbackService
from pbxlink.storage import callbacks as store
from pbxlink.storage.calls import CallFilter, search_calls
from tests.esl_scenarios import FIXTURES as ESL_FIXTURES
from tests.esl_scenarios import LOOPBACK_AGENTS
from tests.integration.site import Site, wait_for
from tests.scenarios import FIXTURES as AMI_FIXTURES

SECRET = "cb-e2e"
DELAY = 60.0
ALWAYS = tuple(((0, 24 * 60),) for _ in range(7))


@dataclass(frozen=True)
class Capture:
    pbx: str
    sim: Any
    adapter: Any
    path: Path
    caller: str
    agent_patterns: tuple[str, ...] | None = None  # the captures' loopback legs stand for phones


CAPTURES = {
    "asterisk": Capture(
        "asterisk",
        lambda: AmiSimulator(secret=SECRET, call_speed=10),
        AmiAdapter,
        AMI_FIXTURES / "inbound_missed_noanswer.ami",
        "+15552220101",
    ),
    "freeswitch": Capture(
        "freeswitch",
        lambda: EslSimulator(password=SECRET, call_speed=10),
        EslAdapter,
        ESL_FIXTURES / "101_inbound_missed.esl",
        "+15551234567",
        LOOPBACK_AGENTS,
    ),
}


class Recorded:
    """The adapter's own control, with each originate it was asked for written down."""

    def __init__(self, control: PbxControl) -> None:
        self.control = control
        self.name = control.name
        self.placed: list[tuple[OriginateRequest, OriginateHandle]] = []

    def originate(self, req: OriginateRequest) -> OriginateHandle:
        handle = self.control.originate(req)
        self.placed.append((req, handle))
        return handle

    def hangup(self, call_id: str) -> None:
        self.control.hangup(call_id)


def policy(**changes: Any) -> CallbackPolicy:
    cfg = CallbackPolicyConfig(
        name="missed", pbx="main", timezone="UTC", delay=DELAY, hours=ALWAYS, ring="agent", max_attempts=2
    )
    return CallbackPolicy(dataclasses.replace(cfg, **changes), numbers())


@pytest.fixture(params=sorted(CAPTURES))
def capture(request: pytest.FixtureRequest) -> Capture:
    return CAPTURES[request.param]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path / "pbxlink.db")
    yield s
    s.close()


def missed_call(
    site: Site, capture: Capture, cb_policy: CallbackPolicy
) -> tuple[Any, Recorded, CallbackService]:
    """Connect, let the service follow the bus, replay the missed call; wait for its callback row."""
    sim, adapter = site.connect(
        capture.sim(),
        capture.adapter,
        lambda host, port: PbxConfig(
            "main",
            capture.pbx,
            host,
            port,
            "pbxlink",
            SECRET,
            agent_patterns=capture.agent_patterns,  # type: ignore[arg-type]
        ),
    )
    control = Recorded(adapter.control)
    service = CallbackService([cb_policy], {"main": control}, numbers())
    site.bus.subscribe("callbacks", service.on_event)
    sim.run(sim.sim.play_capture(capture.path, speed=20.0), timeout=60)
    wait_for(lambda: store.counts().get("pending") == 1)
    # the call log is another subscriber of the bus: the missed call may be written just after
    wait_for(lambda: any(c["disposition"] == "missed" for c in search_calls(CallFilter(), limit=10)[0]))
    return control, service


def ended_at() -> datetime:
    (call,) = [c for c in search_calls(CallFilter(), limit=10)[0] if c["disposition"] == "missed"]
    return datetime.fromisoformat(call["ended_at"])


def test_a_missed_call_is_called_back_once_at_the_right_moment(site: Site, capture: Capture) -> None:
    control, service = missed_call(site, capture, policy())
    due = ended_at() + timedelta(seconds=DELAY)
    (cb,), _ = store.page("pending", 10)
    assert (cb.number, cb.agent) == (capture.caller, "202")
    assert abs(cb.due_at - due) < timedelta(milliseconds=1)  # the call log keeps milliseconds

    assert service.run_due(due - timedelta(seconds=1)) == 0  # not a second early
    assert control.placed == []
    assert service.run_due(due + timedelta(seconds=1)) == 1
    assert service.run_due(due + timedelta(seconds=2)) == 0  # and once
    ((req, handle),) = control.placed
    assert req.endpoint == "202" and req.exten in (capture.caller, capture.caller.lstrip("+"))  # agent first

    # The simulator plays the callback: 202 answers, then the customer; the call's end settles it.
    wait_for(lambda: any(c["origin"] == handle.tag for c in search_calls(CallFilter(), limit=20)[0]))
    wait_for(lambda: store.get(cb.id).status == "done", timeout=60)  # type: ignore[union-attr]
    (attempt,) = store.attempts_of(cb.id)
    assert (attempt.tag, attempt.outcome) == (handle.tag, "answered")
    # the call log links both ways: the missed call to its callback, the callback's call to the miss
    (missed,) = [
        c for c in search_calls(CallFilter(), limit=20)[0] if c["disposition"] == "missed" and not c["origin"]
    ]
    assert store.linked_to(missed["pbx"], missed["call_id"], None) == [
        {"callback": cb.id, "status": "done", "as": "missed call"}
    ]
    (placed,) = [c for c in search_calls(CallFilter(), limit=20)[0] if c["origin"] == handle.tag]
    (link,) = store.linked_to(placed["pbx"], placed["call_id"], handle.tag)
    assert (link["callback"], link["missed_call"]) == (cb.id, f"{missed['pbx']}:{missed['call_id']}")
    assert service.run_due(due + timedelta(hours=1)) == 0
    assert len(control.placed) == 1


def test_no_callback_is_placed_outside_business_hours(site: Site, capture: Capture) -> None:
    # Open one hour a day, starting three hours after the call (in UTC, the policy's zone).
    probe = datetime.now(UTC)
    start = (probe.hour * 60 + probe.minute + 180) % (23 * 60)
    hours = tuple(((start, start + 60),) for _ in range(7))
    control, service = missed_call(site, capture, policy(hours=hours))
    ended = ended_at()
    (cb,), _ = store.page("pending", 10)
    opening = cb.due_at
    assert opening > ended + timedelta(seconds=DELAY)
    assert (opening.hour * 60 + opening.minute) == start and opening - ended < timedelta(days=1)

    assert service.run_due(ended + timedelta(seconds=DELAY + 1)) == 0  # due by the delay, but closed
    assert service.run_due(opening - timedelta(seconds=1)) == 0
    assert control.placed == []
    assert service.run_due(opening + timedelta(seconds=1)) == 1
    assert len(control.placed) == 1
