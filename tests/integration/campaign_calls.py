"""Campaign calls placed over real TCP through a PbxControl: the cases and what their records must say.

Shared by test_broadcast_ami and test_broadcast_esl: each starts its simulator and adapter on
an in-process bus, places every case through `control.originate` with the tag it chose, and
checks the CallEnded (and, agent first, the CallRinging) the bus delivers for that tag.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pbxlink.domain.calls import CallEnded, CallEvent, CallRinging
from pbxlink.domain.ports import OriginateRequest, PbxControl
from pbxlink.simulation.traffic import TrafficMix

SECRET = "campaign-secret"
QUICK = TrafficMix(ring=(0.5, 1.0), talk=(1.0, 2.0))
SPEED = 50  # generated calls run 50 times faster; their events keep the real spacing
AGENTS = {str(201 + i) for i in range(8)}


@dataclass(frozen=True)
class Case:
    """One broadcast dial: the contact's number, what their phone does, AMD on, the press-1 queue."""

    number: str
    behaviour: str
    amd: bool
    queue: str | None
    #: (disposition, miss_reason, amd, hangup_by); None: no channel at all, so no record
    outcome: tuple[str, str | None, str | None, str] | None


CASES = (
    Case("+12125550101", "answer", False, None, ("answered", None, None, "customer")),
    Case("+12125550102", "answer", True, "support", ("answered", None, "human", "customer")),
    Case("+12125550103", "machine", True, None, ("answered", None, "machine", "system")),
    Case("+12125550104", "press1", False, "support", ("answered", None, None, "")),
    Case("+12125550105", "no_answer", True, None, ("missed", "no_answer", None, "system")),
    Case("+12125550106", "busy", False, None, ("missed", "busy", None, "")),
    Case("+12125550107", "fail", False, None, None),
)


class Seen:
    """The events the bus delivers, by the origin of their call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[CallEvent] = []

    def __call__(self, event: CallEvent) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, tag: str, kind: type[CallEvent] = CallEnded) -> list[CallEvent]:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind) and e.call.origin == tag]


def wait_for(cond: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def broadcast_request(case: Case, tag: str) -> OriginateRequest:
    """What the dialler asks for one broadcast dial (pbxlink.domain.campaign.Plan.request's shape)."""
    variables = {"PBXLINK_MESSAGE": "campaign/renewal", "PBXLINK_COL_NAME": "Ada"}
    variables |= {"PBXLINK_QUEUE": case.queue} if case.queue else {}
    variables |= {"PBXLINK_AMD": "1"} if case.amd else {}
    return OriginateRequest(
        endpoint=case.number,
        exten="s",
        context="pbxlink-campaign-broadcast",
        caller_id="+15550001000",
        timeout_s=10,
        variables=variables,
        tag=tag,
    )


def check_broadcasts(control: PbxControl, tell: Callable[[str, str], None], seen: Seen) -> None:
    """Every case placed at once; each record is the one its contact's behaviour makes."""
    tags = {}
    for case in CASES:
        tell(case.number, case.behaviour)
        tags[case] = tag = str(uuid.uuid4())
        assert control.originate(broadcast_request(case, tag)).tag == tag
    placed = [c for c in CASES if c.outcome is not None]
    wait_for(lambda: all(seen.of(tags[c]) for c in placed))
    for case in placed:
        [ended] = seen.of(tags[case])  # exactly one record per dial
        rec, why = ended.call, (case, ended.call.to_dict())
        disposition, miss, amd, by = case.outcome  # type: ignore[misc]
        assert (rec.disposition, rec.miss_reason, rec.amd) == (disposition, miss, amd), why
        assert (rec.origin, rec.direction, rec.callee, rec.caller) == (
            tags[case],
            "outbound",
            case.number,
            None,
        )
        assert not by or rec.hangup_by == by, why
        if case.behaviour == "press1":
            assert rec.agent in AGENTS and rec.agents == [rec.agent] and rec.queue == "support", why
        else:
            assert (rec.agent, rec.agents, rec.queue) == (None, [], None), why
        if disposition == "answered":
            assert rec.answered_at is not None and rec.ended_at is not None, why
            assert rec.talk_seconds == round((rec.ended_at - rec.answered_at).total_seconds(), 3), why
            assert rec.talk_seconds > 0.0, why
        else:
            assert rec.answered_at is None and rec.talk_seconds == 0.0, why
    [unreachable] = [c for c in CASES if c.outcome is None]
    time.sleep(0.3)  # the failure has long been answered: nothing may come of it
    assert seen.of(tags[unreachable]) == []  # no channel was ever made: no record, the dial times out


def check_agent_first(control: PbxControl, queue: str, seen: Seen) -> None:
    """A free member of `queue` answers first, then the contact is dialled; while the agent's phone
    rings, its CallRinging already carries the tag (the screen-pop looks the contact up by it)."""
    tag, number = str(uuid.uuid4()), "+12125550199"
    request = OriginateRequest(
        endpoint=queue,
        exten=number,
        context="pbxlink-campaign-agent-first",
        caller_id="+15550001000",
        variables={"PBXLINK_CUSTOMER": number, "PBXLINK_COL_NAME": "Ada"},
        tag=tag,
    )
    control.originate(request)
    wait_for(lambda: seen.of(tag))
    [ended] = seen.of(tag)
    rings = seen.of(tag, CallRinging)
    rec = ended.call
    assert rings and {r.agent for r in rings} <= AGENTS  # type: ignore[attr-defined]
    assert (rec.disposition, rec.callee, rec.origin, rec.direction) == ("answered", number, tag, "outbound")
    assert rec.agent in {r.agent for r in rings} and rec.caller == rec.agent  # type: ignore[attr-defined]
