"""The shapes of generated calls: direct to an agent, through a queue, click-to-call.

Each function plays one call on a CallBuilder the way Asterisk 22 with PJSIP does in the
`sip/` captures (who sends HangupRequest vs SoftHangupRequest, causes 0/16/17/26/127,
two DialEnd CANCEL for a ringall loser) and returns what a tracker must derive from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pbxlink.ami.control import TAG_VARIABLE
from pbxlink.ami.simulator.builder import CallBuilder, Channel
from pbxlink.ami.simulator.flow import (
    Answer,
    Caller,
    ExpectedCall,
    Legs,
    Site,
    agent_idle,
    conversation,
    expectation,
    ringing,
)

MONITOR_DIR = "/opt/ast/var/spool/asterisk/monitor"
NO_ANSWER_TIMEOUT = 20.0  # Dial(PJSIP/2XX,20)
MEMBER_TIMEOUT = 15.0  # queues.conf timeout


def direct_call(
    b: CallBuilder, site: Site, caller: Caller, did: str, agent: str, outcome: str | Answer, record: bool
) -> ExpectedCall:
    """DID routed to one agent's phone: `outcome` is an Answer, "no_answer" or "busy"."""
    trunk = b.channel("trunk", 4, (caller.raw, caller.name or "<unknown>"), "from-trunk", did)
    b.var(trunk, "SIPDOMAIN", "127.0.0.1")
    b.exten(trunk, "NoOp", f"SIP DID {did} - direct to PJSIP/{agent}")
    if caller.raw != caller.number:
        b.exten(trunk, "ExecIf", f"1?Set(CALLERID(num)={caller.number})")
        b.callerid(trunk, caller.number)
    recording = _mixmonitor(b, trunk) if record else None
    dial_data = f"PJSIP/{agent},{int(NO_ANSWER_TIMEOUT)}"
    b.exten(trunk, "Dial", dial_data)
    b.dial_vars(trunk)
    leg = b.channel(agent, 0, (agent, f"Agent {agent}"), "internal", "s", trunk.linkedid)
    b.var(leg, "DIALEDPEERNUMBER", agent)
    b.exten(leg, "AppDial", "(Outgoing Line)", advance=False)
    leg.exten = did
    b.connected(leg, caller.number, caller.name or "<unknown>")
    b.dial("DialBegin", trunk, leg, ("DialString", f"PJSIP/{agent}"))
    b.connected(trunk, agent, f"Agent {agent}")
    expect = expectation(trunk, caller, did, agent, [agent], None, recording)
    if outcome == "busy":
        b.wait(0.02)
        b.dial("DialEnd", trunk, leg, ("DialStatus", "BUSY"))
        b.hangup(leg, 17)
        _system_ends(b, trunk, leg, dial_data, "BUSY", 17)
        return expect(b, "missed", "busy", "system", None)
    ringing(b, site, trunk, leg, agent)
    if isinstance(outcome, Answer):
        b.wait(outcome.ring)
        b.newstate(leg, 6)
        b.dial_vars(trunk, {"DIALSTATUS": "ANSWER", "DIALEDPEERNAME": leg.name, "DIALEDPEERNUMBER": agent})
        b.dial("DialEnd", trunk, leg, ("DialStatus", "ANSWER"))
        b.newstate(trunk, 6)
        legs = Legs(trunk, leg, agent, ("customer", "agent"))
        return conversation(b, site, legs, outcome, expect, ("Dial", dial_data))
    b.wait(NO_ANSWER_TIMEOUT)
    b.dial("DialEnd", trunk, leg, ("DialStatus", "NOANSWER"))
    b.hangup(leg, 0)
    agent_idle(b, site, agent)
    _system_ends(b, trunk, leg, dial_data, "NO ANSWER", 16)
    return expect(b, "missed", "no_answer", "system", None)


def queue_call(
    b: CallBuilder,
    site: Site,
    caller: Caller,
    did: str,
    queue: str,
    offered: list[str],
    answer: Answer | None,
    abandon_after: float,
) -> ExpectedCall:
    """Queue with ringall over `offered`: the first of them answers, or the customer gives up."""
    trunk = b.channel("trunk", 4, (caller.raw, caller.name or "<unknown>"), "from-trunk", did)
    b.var(trunk, "SIPDOMAIN", "127.0.0.1")
    b.exten(trunk, "NoOp", f"SIP DID {did} - queue {queue}")
    offered_legs = enter_queue(b, site, trunk, queue, offered)
    if answer is None:
        _abandon(b, site, trunk, queue, offered_legs, abandon_after)
        expect = expectation(trunk, caller, did, None, offered, queue, None)
        return expect(b, "missed", "abandoned", "customer", None)
    b.wait(answer.ring)
    agent, winner, member, hold = take_call(b, site, trunk, queue, offered_legs, answer.ring)
    expect = expectation(trunk, caller, did, agent, [agent], queue, None)
    legs = Legs(trunk, winner, agent, ("customer", "agent"))
    return conversation(b, site, legs, answer, expect, ("Queue", f"{queue},,,,300"), *member, hold)


def enter_queue(
    b: CallBuilder, site: Site, caller: Channel, queue: str, offered: list[str]
) -> dict[str, Channel]:
    """`caller` runs Queue(): it joins and waits with music while the `offered` agents ring (ringall)."""
    b.exten(caller, "Queue", f"{queue},,,,300")
    for name in ("ANSWEREDTIME", "DIALEDTIME", "QUEUEWAIT"):
        b.var(caller, name, "")
    b.device(f"Queue:{queue}", "RINGING")
    position = [("Queue", queue), ("Position", "1"), ("Count", "1")]
    b.emit("QueueCallerJoin", "agent", *caller.snapshot(), *position)
    b.emit("MusicOnHoldStart", "call", *caller.snapshot(), ("Class", "default"))
    offered_legs = {agent: _offer(b, caller, queue, agent) for agent in offered}
    for agent, leg in offered_legs.items():
        ringing(b, site, caller, leg, agent, queued=True)
    return offered_legs


def take_call(
    b: CallBuilder, site: Site, caller: Channel, queue: str, legs: dict[str, Channel], ring: float
) -> tuple[str, Channel, tuple[tuple[str, str], ...], tuple[str, str]]:
    """The first of the ringing agents answers (the others get two DialEnd CANCEL and go):
    its agent, its leg, and the member and HoldTime headers AgentComplete repeats."""
    agent, *losers = legs
    winner = legs[agent]
    b.newstate(winner, 6)
    b.dial("DialEnd", caller, winner, ("DialStatus", "ANSWER"))
    for loser in losers:  # a ringall loser gets two DialEnd CANCEL
        b.dial("DialEnd", caller, legs[loser], ("DialStatus", "CANCEL"))
    b.connected(caller, agent, f"Agent {agent}")
    for loser in losers:
        b.dial("DialEnd", caller, legs[loser], ("DialStatus", "CANCEL"))
    b.emit("MusicOnHoldStop", "call", *caller.snapshot())
    b.device(f"Queue:{queue}", "NOT_INUSE")
    b.emit(
        "QueueCallerLeave", "agent", *caller.snapshot(), ("Queue", queue), ("Position", "1"), ("Count", "0")
    )
    b.var(caller, "QUEUEWAIT", str(int(ring)))
    member = _member(queue, agent)
    hold = ("HoldTime", str(int(ring)))
    b.dial("AgentConnect", caller, winner, *member, hold, ("RingTime", str(int(ring))))
    b.newstate(caller, 6)
    for loser in losers:
        b.hangup(legs[loser], 26)
        agent_idle(b, site, loser)
    return agent, winner, member, hold


def click_to_call(
    b: CallBuilder,
    site: Site,
    agent: str,
    number: str,
    cid: tuple[str, str],
    context: str,
    answer: Answer,
    action_id: str,
    ring_remote: float,
    variables: Sequence[tuple[str, str]] = (),
) -> ExpectedCall:
    """AMI Originate: the agent's phone rings and answers, then the PBX dials `number` out the trunk.

    The originate's `variables` are set on the agent's channel (a VarSet each)."""
    leg = b.channel(agent, 0, ("<unknown>", "<unknown>"), "internal", "s")
    for name, value in variables:
        b.var(leg, name, value)
    leg.cid_name = cid[1]
    b.callerid(leg, cid[0])
    b.connected(leg, *cid)
    b.newstate(leg, 5)
    b.device(f"PJSIP/{agent}", "RINGING")
    b.wait(answer.ring)
    b.newstate(leg, 6)
    action = [("ActionID", action_id)] if action_id else []
    b.emit(
        "OriginateResponse",
        "call",
        *action,
        *[("Response", "Success"), ("Channel", leg.name), ("Context", context), ("Exten", number)],
        *[("Reason", "4"), ("Uniqueid", leg.uniqueid), ("CallerIDNum", cid[0]), ("CallerIDName", cid[1])],
    )
    leg.context, leg.exten = context, number
    dial_data = f"PJSIP/{number}@trunk,60"
    b.exten(leg, "Dial", dial_data)
    b.dial_vars(leg)
    remote = b.channel("trunk", 0, (number, "<unknown>"), "from-trunk", "s", leg.linkedid)
    b.var(remote, "DIALEDPEERNUMBER", f"{number}@trunk")
    b.connected(remote, *cid)
    b.dial("DialBegin", leg, remote, ("DialString", f"{number}@trunk"))
    b.newstate(remote, 5)
    b.dial("DialState", leg, remote, ("DialStatus", "RINGING"))
    b.wait(ring_remote)
    b.newstate(remote, 6)
    b.dial("DialEnd", leg, remote, ("DialStatus", "ANSWER"))
    caller = Caller(cid[0], cid[1], cid[0])
    expect = expectation(leg, caller, number, agent, [agent], None, None, "outbound")
    legs = Legs(leg, remote, agent, ("agent", "customer"))
    expected = conversation(b, site, legs, answer, expect, ("Dial", dial_data))
    return replace(expected, origin=dict(variables).get(TAG_VARIABLE))


def _mixmonitor(b: CallBuilder, trunk: Channel) -> str:
    b.exten(trunk, "MixMonitor", f"{trunk.uniqueid}.wav")
    path = f"{MONITOR_DIR}/{trunk.uniqueid}.wav"
    b.var(trunk, "MIXMONITOR_FILENAME", path)
    b.emit("MixMonitorStart", "call", *trunk.snapshot())
    return path


def _offer(b: CallBuilder, trunk: Channel, queue: str, agent: str) -> Channel:
    leg = b.channel(agent, 0, (agent, f"Agent {agent}"), "internal", "s", trunk.linkedid)
    b.var(leg, "DIALEDPEERNUMBER", agent)
    b.dial("AgentCalled", trunk, leg, *_member(queue, agent))
    b.dial("DialBegin", trunk, leg, ("DialString", f"PJSIP/{agent}"))
    return leg


def _member(queue: str, agent: str) -> tuple[tuple[str, str], ...]:
    return (("Queue", queue), ("Interface", f"PJSIP/{agent}"), ("MemberName", f"Agent {agent}"))


def _system_ends(b: CallBuilder, trunk: Channel, leg: Channel, dial_data: str, cdr: str, cause: int) -> None:
    """Dial() returned unanswered: the dialplan's Hangup() ends the caller (no HangupRequest)."""
    b.var(trunk, "DIALSTATUS", cdr.replace(" ", ""))
    b.exten(trunk, "Hangup", "")
    b.hangup_request(trunk, 16, soft=True)
    b.cdr(trunk, leg.name, "Dial", dial_data, (None, b.t), cdr)
    b.hangup(trunk, cause)
    b.device("PJSIP/trunk", "NOT_INUSE")


def _abandon(
    b: CallBuilder, site: Site, trunk: Channel, queue: str, legs: dict[str, Channel], after: float
) -> None:
    """The customer CANCELs while waiting (cause 127); members ring out first if they have time."""
    still_ringing = legs
    if after >= MEMBER_TIMEOUT:
        b.wait(MEMBER_TIMEOUT)
        for agent, leg in legs.items():
            b.dial(
                "AgentRingNoAnswer",
                trunk,
                leg,
                *_member(queue, agent),
                ("RingTime", str(int(MEMBER_TIMEOUT * 1000))),
            )
            b.dial("DialEnd", trunk, leg, ("DialStatus", "NOANSWER"))
            b.hangup(leg, 0)
            agent_idle(b, site, agent)
        still_ringing = {}
    b.wait(max(0.0, after - b.t))
    b.hangup_request(trunk, 127)
    for agent, leg in still_ringing.items():
        b.dial("DialEnd", trunk, leg, ("DialStatus", "CANCEL"))
        b.hangup(leg, 127)
        agent_idle(b, site, agent)
    b.emit("MusicOnHoldStop", "call", *trunk.snapshot())
    position = [("Queue", queue), ("Position", "1")]
    b.emit(
        "QueueCallerAbandon",
        "agent",
        *trunk.snapshot(),
        *position,
        ("OriginalPosition", "1"),
        ("HoldTime", str(int(after))),
    )
    b.emit("QueueCallerLeave", "agent", *trunk.snapshot(), *position, ("Count", "0"))
    b.device(f"Queue:{queue}", "NOT_INUSE")
    b.cdr(trunk, "", "Queue", f"{queue},,,,300", (None, b.t), "NO ANSWER")
    b.hangup(trunk, 127)
    b.device("PJSIP/trunk", "NOT_INUSE")
