"""The phases generated calls share: what a call must become, ringing, talking, hanging up.

`conversation` ends a bridged call the way the `sip/` captures show it: the first
HangupRequest is on the leg whose party hung up, the other leg gets a SoftHangupRequest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbxlink.ami.simulator.builder import CallBuilder, Channel
from pbxlink.simulation.timeline import ExpectedCall


@dataclass(frozen=True)
class Caller:
    number: str  # E.164, after any dialplan rewrite
    name: str  # "" when the carrier sent none
    raw: str  # as the carrier sent it; differs when the dialplan adds +1


@dataclass(frozen=True)
class Site:
    """The PBX configuration calls run against: queue membership drives QueueMemberStatus noise."""

    queues: dict[str, list[str]]
    login_time: int

    def member_status(self, b: CallBuilder, agent: str, status: int) -> None:
        for queue, members in self.queues.items():
            if agent in members:
                b.member_status(queue, agent, status, self.login_time)


@dataclass(frozen=True)
class Answer:
    """How an answered call goes: ring before answer, talk (None: kept up), who hangs up."""

    ring: float
    talk: float | None
    agent_hangs_up: bool


def ringing(
    b: CallBuilder, site: Site, trunk: Channel, leg: Channel, agent: str, queued: bool = False
) -> None:
    """The agent's phone rings (180): its state, device and queue-member status follow."""
    b.newstate(leg, 5)
    if queued:  # app_queue's leg learns the customer once it rings
        leg.exten = trunk.exten
        b.exten(leg, "AppQueue", "(Outgoing Line)", advance=False)
        b.connected(leg, trunk.cid_num, trunk.cid_name)
    b.device(f"PJSIP/{agent}", "RINGING")
    site.member_status(b, agent, 6)
    b.dial("DialState", trunk, leg, ("DialStatus", "RINGING"))
    b.device("PJSIP/trunk", "INUSE")


def agent_idle(b: CallBuilder, site: Site, agent: str) -> None:
    """The agent's phone is free again."""
    b.device(f"PJSIP/{agent}", "NOT_INUSE")
    site.member_status(b, agent, 1)


@dataclass(frozen=True)
class Legs:
    """The two bridged legs; `parties` names who is on each (dialer, dialed) for `hangup_by`."""

    dialer: Channel
    dialed: Channel
    agent: str
    parties: tuple[str, str]


def conversation(
    b: CallBuilder,
    site: Site,
    legs: Legs,
    answer: Answer,
    expect: Callable[..., ExpectedCall],
    app: tuple[str, str],
    *complete: tuple[str, str],
) -> ExpectedCall:
    """Bridge the two legs, talk, and hang up; `complete` (queue calls) adds AgentComplete."""
    dialer, dialed = legs.dialer, legs.dialed
    answered_at = b.t
    bridge_id = b.new_bridge_id()
    b.device(f"PJSIP/{legs.agent}", "INUSE")
    site.member_status(b, legs.agent, 2)
    b.bridge("BridgeCreate", bridge_id, 0)
    for count, leg in enumerate((dialed, dialer), start=1):
        b.bridge("BridgeEnter", bridge_id, count, leg)
    b.var(dialed, "BRIDGEPEER", dialer.name)
    b.var(dialer, "BRIDGEPEER", dialed.name)
    if answer.talk is None:
        return expect(b, "answered", None, None, None, ended=False, wait=answered_at)
    b.talk([dialed, dialer], answer.talk)
    talk = b.t - answered_at
    dialed_first = answer.agent_hangs_up == (legs.parties[1] == "agent")
    first, second = (dialed, dialer) if dialed_first else (dialer, dialed)
    b.hangup_request(first, None if complete and dialed_first else 16)
    if complete:
        reason = "agent" if dialed_first else "caller"
        b.dial("AgentComplete", dialer, dialed, *complete, ("TalkTime", str(int(talk))), ("Reason", reason))
    b.bridge("BridgeLeave", bridge_id, 1, first)
    b.bridge("BridgeLeave", bridge_id, 0, second)
    b.bridge("BridgeDestroy", bridge_id, 0)
    if not dialed_first:
        b.hangup_request(dialed, 16, soft=True)
    b.hangup(dialed, 16)
    agent_idle(b, site, legs.agent)
    if dialed_first:
        b.hangup_request(dialer, 16, soft=True)
    b.cdr(dialer, dialed.name, *app, (answered_at, b.t), "ANSWERED")
    b.hangup(dialer, 16)
    b.device("PJSIP/trunk", "NOT_INUSE")
    return expect(b, "answered", None, legs.parties[int(dialed_first)], talk, wait=answered_at)


def expectation(
    first: Channel,
    caller: Caller,
    callee: str,
    agent: str | None,
    agents: list[str],
    queue: str | None,
    recording: str | None,
    direction: str = "inbound",
) -> Callable[..., ExpectedCall]:
    """Fix what is known when the call starts; the returned function completes it at the end."""

    def complete(
        b: CallBuilder,
        disposition: str,
        miss_reason: str | None,
        hangup_by: str | None,
        talk: float | None,
        ended: bool = True,
        wait: float | None = None,
    ) -> ExpectedCall:
        return ExpectedCall(
            call_id=first.linkedid,
            direction=direction,
            caller=caller.number,
            caller_name=caller.name or None,
            callee=callee,
            agent=agent if disposition == "answered" else None,  # only who talked, never who just rang
            agents=agents if disposition == "answered" else [],
            queue=queue,
            disposition=disposition,
            miss_reason=miss_reason,
            hangup_by=hangup_by,
            wait_seconds=round(b.t if wait is None else wait, 3),
            talk_seconds=round(talk, 3) if talk is not None else (0.0 if ended else None),
            recording=recording,
            started_at=b.start,
            ended=ended,
        )

    return complete
