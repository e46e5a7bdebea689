"""Callback originates on the AMI simulator: `Originate Channel: Local/<endpoint>@<dial context>`.

The Local pair's `;2` rings the endpoint; once someone answers there, `;1` runs the
Originate's Context/Exten. Agent first: the endpoint is an agent's phone or a queue whose
members ring, and `;1` dials the customer (Exten). Customer first: the endpoint is the
customer's number, and `;1` plays a message and joins the queue Exten names, where an agent
answers. The originate's variables are set on `;1` (a VarSet each, as Asterisk does); the
OriginateResponse carries the ActionID, with Uniqueid `<null>` when the first party never
answered. Event shapes follow the click_to_call capture and the `sip/` ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pbxlink.ami.control import TAG_VARIABLE
from pbxlink.ami.simulator.builder import CallBuilder, Channel
from pbxlink.ami.simulator.flow import Answer, Site, agent_idle, ringing
from pbxlink.ami.simulator.scenarios import NO_ANSWER_TIMEOUT, enter_queue, take_call
from pbxlink.ami.simulator.wire import Headers
from pbxlink.simulation.callbacks import MESSAGE_SECONDS, Behaviour
from pbxlink.simulation.timeline import ExpectedCall

#: DialStatus of a first party that did not answer -> (OriginateResponse Reason, Hangup cause)
_UNANSWERED = {"BUSY": ("5", 17), "NOANSWER": ("3", 0)}


@dataclass(frozen=True)
class Originate:
    """One `Originate Channel: Local/<endpoint>@<dial_context>` as the simulator read it."""

    endpoint: str
    dial_context: str
    context: str
    exten: str
    cid: tuple[str, str]  # (number, name) of the CallerID header
    action_id: str
    variables: tuple[tuple[str, str], ...]
    timeout: float  # seconds the first party rings before the originate gives up

    def response(self, near: Channel | None, reason: str) -> Headers:
        """OriginateResponse's headers after Event/Privilege: Success with the channel, or Failure."""
        return [
            *([("ActionID", self.action_id)] if self.action_id else []),
            ("Response", "Success" if near else "Failure"),
            ("Channel", near.name if near else f"Local/{self.endpoint}@{self.dial_context}"),
            *[("Context", self.context), ("Exten", self.exten), ("Reason", reason)],
            ("Uniqueid", near.uniqueid if near else "<null>"),
            *[("CallerIDNum", self.cid[0]), ("CallerIDName", self.cid[1])],
        ]


@dataclass
class Callback:
    """A callback while it plays: its channels and bridges, and when it was offered and answered."""

    b: CallBuilder
    site: Site
    o: Originate
    near: Channel
    far: Channel
    channels: list[Channel] = field(default_factory=list)
    bridges: dict[str, list[Channel]] = field(default_factory=dict)
    offered_at: float = 0.0
    answered_at: float | None = None
    talk: float = 0.0

    def new(self, endpoint: str, cid: tuple[str, str], context: str) -> Channel:
        channel = self.b.channel(endpoint, 0, cid, context, "s", self.near.linkedid)
        self.channels.append(channel)
        return channel

    def bridge(self, *legs: Channel) -> None:
        bridge_id = self.b.new_bridge_id()
        self.b.bridge("BridgeCreate", bridge_id, 0)
        for count, leg in enumerate(legs, start=1):
            self.b.bridge("BridgeEnter", bridge_id, count, leg)
        self.bridges[bridge_id] = list(legs)

    def reached(self) -> None:
        """`;2` reached the first party: the originate's dial of `;1` is answered, and said so."""
        b, near = self.b, self.near
        b.newstate(self.far, 6)
        b.newstate(near, 6)
        b.emit("DialEnd", "call", *near.snapshot("Dest"), ("DialStatus", "ANSWER"))
        b.emit("OriginateResponse", "call", *self.o.response(near, "4"))
        near.context, near.exten = self.o.context, self.o.exten

    def unreached(self, phone: Channel, status: str) -> None:
        """The first party did not answer: its phone goes, the wire ends, the originate fails."""
        b, near, far = self.b, self.near, self.far
        reason, cause = _UNANSWERED[status]
        b.dial("DialEnd", far, phone, ("DialStatus", status))
        b.hangup(phone, cause)
        b.emit("DialEnd", "call", *near.snapshot("Dest"), ("DialStatus", status))
        b.hangup(near, cause)
        b.hangup_request(far, 16, soft=True)
        b.hangup(far, cause)
        b.emit("OriginateResponse", "call", *self.o.response(None, reason))

    def converse(self, answered_at: float, answer: Answer, agent_side: Channel, customer: Channel) -> str:
        """The agent's side and the customer are bridged and talk; who will hang up."""
        self.answered_at = answered_at
        self.bridge(agent_side, customer)
        self.b.talk([customer, agent_side], answer.talk or 0.0)
        self.talk = self.b.t - answered_at
        return "agent" if answer.agent_hangs_up else "customer"

    def end(self, first: Channel, person: bool, cause: int, agents: list[str]) -> None:
        """`first` hangs up (its far end asked, or the PBX did), then every other channel; bridges go."""
        b = self.b
        b.hangup_request(first, cause, soft=not person)
        for bridge_id, legs in self.bridges.items():
            for count, leg in enumerate(reversed(legs)):
                b.bridge("BridgeLeave", bridge_id, count, leg)
            b.bridge("BridgeDestroy", bridge_id, 0)
        b.hangup(first, cause)
        for other in (c for c in self.channels if c is not first):
            b.hangup_request(other, 16, soft=True)
            b.hangup(other, 16)
        for agent in agents:
            agent_idle(b, self.site, agent)

    def expect(
        self,
        caller: str | None,
        callee: str | None,
        agent: str | None,
        queue: str | None,
        miss: str | None,
        by: str,
    ) -> ExpectedCall:
        answered = miss is None
        waited = (self.answered_at if self.answered_at is not None else self.b.t) - self.offered_at
        return ExpectedCall(
            call_id=self.near.linkedid,
            direction="outbound",
            caller=caller,
            caller_name=None,
            callee=callee,
            agent=agent if answered else None,
            agents=[agent] if answered and agent else [],
            queue=queue,
            disposition="answered" if answered else "missed",
            miss_reason=miss,
            hangup_by=by,
            wait_seconds=round(waited, 3),
            talk_seconds=round(self.talk, 3),
            recording=None,
            started_at=self.b.start,
            origin=dict(self.o.variables).get(TAG_VARIABLE),
        )


def originated(b: CallBuilder, site: Site, o: Originate) -> Callback:
    """The Local pair, the originate's variables on `;1`, and the originate dialling `;1`."""
    near, far = b.local_pair(o.endpoint, o.dial_context, o.cid)
    for name, value in o.variables:
        b.var(near, name, value)
    b.emit("DialBegin", "call", *near.snapshot("Dest"), ("DialString", f"{o.endpoint}@{o.dial_context}"))
    return Callback(b, site, o, near, far, [near, far])


def agent_first(
    b: CallBuilder,
    site: Site,
    o: Originate,
    queue: str | None,
    agents: list[str],
    customer: Behaviour,
    answer: Answer,
    remote_ring: float,
) -> ExpectedCall:
    """The endpoint (one agent, or a queue ringing `agents`) answers; then the customer (Exten) is dialled."""
    call = originated(b, site, o)
    far = call.far
    if queue is None:
        agent = agents[0]
        b.exten(far, "Dial", f"PJSIP/{agent},{int(o.timeout)}")
        phone = call.new(agent, o.cid, "from-internal")
        b.dial("DialBegin", far, phone, ("DialString", f"PJSIP/{agent}"))
        ringing(b, site, far, phone, agent)
        b.wait(answer.ring)
        b.newstate(phone, 6)
        b.dial("DialEnd", far, phone, ("DialStatus", "ANSWER"))
    else:
        legs = enter_queue(b, site, far, queue, agents)
        call.channels += legs.values()
        b.wait(answer.ring)
        agent, phone, _, _ = take_call(b, site, far, queue, legs, answer.ring)
        call.channels = [c for c in call.channels if c is phone or c not in legs.values()]
    call.bridge(phone, far)
    call.reached()
    near = call.near
    b.exten(near, "Dial", f"PJSIP/{o.exten}@trunk,{int(NO_ANSWER_TIMEOUT)}")
    if customer == "fail":  # no channel to the customer at all: Dial() gives up at once
        b.var(near, "DIALSTATUS", "CHANUNAVAIL")
        call.end(near, False, 16, [agent])
        return call.expect(agent, None, agent, queue, "failed", "system")
    remote = call.new("trunk", (o.exten, "<unknown>"), "from-trunk")
    call.offered_at = b.t
    b.dial("DialBegin", near, remote, ("DialString", f"{o.exten}@trunk"))
    if customer == "busy":
        b.wait(0.02)
        b.dial("DialEnd", near, remote, ("DialStatus", "BUSY"))
        call.end(remote, False, 17, [agent])
        return call.expect(agent, o.exten, agent, queue, "busy", "system")
    b.newstate(remote, 5)
    b.dial("DialState", near, remote, ("DialStatus", "RINGING"))
    if customer == "no_answer":
        b.wait(NO_ANSWER_TIMEOUT)
        b.dial("DialEnd", near, remote, ("DialStatus", "NOANSWER"))
        call.end(remote, False, 16, [agent])
        return call.expect(agent, o.exten, agent, queue, "no_answer", "system")
    b.wait(remote_ring)
    b.newstate(remote, 6)
    answered = b.t
    b.dial("DialEnd", near, remote, ("DialStatus", "ANSWER"))
    by = call.converse(answered, answer, near, remote)
    call.end(phone if by == "agent" else remote, True, 16, [agent])
    return call.expect(agent, o.exten, agent, queue, None, by)


def reach_customer(call: Callback, customer: Behaviour, ring: float) -> Channel | ExpectedCall:
    """`;2` dials the customer (the endpoint) through the trunk: their phone once they answered, or
    the missed call's outcome (busy, no answer)."""
    b, o, far = call.b, call.o, call.far
    b.exten(far, "Dial", f"PJSIP/{o.endpoint}@trunk,{int(o.timeout)}")
    phone = call.new("trunk", (o.endpoint, "<unknown>"), "from-trunk")
    b.dial("DialBegin", far, phone, ("DialString", f"{o.endpoint}@trunk"))
    if customer == "busy":
        b.wait(0.02)
        call.unreached(phone, "BUSY")
        return call.expect(None, o.endpoint, None, None, "busy", "system")
    b.newstate(phone, 5)
    b.dial("DialState", far, phone, ("DialStatus", "RINGING"))
    if customer == "no_answer":
        b.wait(o.timeout)
        call.unreached(phone, "NOANSWER")
        return call.expect(None, o.endpoint, None, None, "no_answer", "system")
    b.wait(ring)
    b.newstate(phone, 6)
    b.dial("DialEnd", far, phone, ("DialStatus", "ANSWER"))
    call.bridge(phone, far)
    call.reached()
    return phone


def customer_first(
    b: CallBuilder,
    site: Site,
    o: Originate,
    customer: Behaviour,
    queue: str,
    agents: list[str],
    answer: Answer,
    customer_ring: float,
) -> ExpectedCall:
    """The customer (the endpoint) answers, hears a message and waits in `queue`, where `agents` ring."""
    call = originated(b, site, o)
    phone = reach_customer(call, customer, customer_ring)
    if isinstance(phone, ExpectedCall):
        return phone
    near = call.near
    b.exten(near, "Playback", "pbxlink/callback-intro")
    b.wait(MESSAGE_SECONDS)
    call.offered_at = b.t
    legs = enter_queue(b, site, near, queue, agents)
    b.wait(answer.ring)
    answered = b.t
    agent, agent_phone, _, _ = take_call(b, site, near, queue, legs, answer.ring)
    call.channels.append(agent_phone)
    by = call.converse(answered, answer, agent_phone, near)
    call.end(agent_phone if by == "agent" else phone, True, 16, [agent])
    return call.expect(None, o.endpoint, agent, queue, None, by)
