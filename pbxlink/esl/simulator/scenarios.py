"""The shapes of generated inbound calls: straight to an agent, or through a mod_callcenter queue.

Each plays one call on a CallBuilder the way FreeSWITCH 1.10 does in the captures (a refused
bridge ends the caller with USER_BUSY, an unanswered one lets the dialplan end it with
NORMAL_CLEARING and leaves the cause in originate_disposition; a queue answers the caller itself;
the leg whose party hung up gets the BYE first) and returns what a tracker must derive from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxlink.esl.simulator import callcenter as cc
from pbxlink.esl.simulator import sofia
from pbxlink.esl.simulator.flow import Answer, Caller, Site
from pbxlink.esl.simulator.legs import CallBuilder, Leg
from pbxlink.simulation.timeline import ExpectedCall

NO_ANSWER_TIMEOUT = 20.0  # call_timeout=20, as the sip capture's dialplan sets it
LEG_TIMEOUT = 15.0  # the queue's agent contact: [leg_timeout=15]
_DIAL_STATUS = {
    "USER_BUSY": "BUSY",
    "NO_ANSWER": "NOANSWER",
    "NORMAL_CLEARING": "SUCCESS",
    "NORMAL_TEMPORARY_FAILURE": "CHANUNAVAIL",
}


@dataclass
class Outcome:
    """What is known of a call as it plays; `expect` completes it into an ExpectedCall."""

    call_id: str
    direction: str
    caller: str | None
    caller_name: str | None
    callee: str | None
    queue: str | None = None
    recording: str | None = None
    reached: float = 0.0  # when the call reached an agent or a queue (seconds since it started)
    origin: str | None = None  # the tag of the pbxlink originate that placed it

    def expect(
        self,
        b: CallBuilder,
        agent: str | None,
        miss: str | None,
        by: str | None,
        talk: float | None,
        wait_until: float | None = None,
        ended: bool = True,
    ) -> ExpectedCall:
        answered = miss is None
        until = b.t if wait_until is None else wait_until
        return ExpectedCall(
            call_id=self.call_id,
            direction=self.direction,
            caller=self.caller,
            caller_name=self.caller_name,
            callee=self.callee,
            agent=agent if answered else None,
            agents=[agent] if answered and agent else [],
            queue=self.queue,
            disposition="answered" if answered else "missed",
            miss_reason=miss,
            hangup_by=by,
            wait_seconds=round(until - self.reached, 3),
            talk_seconds=round(talk, 3) if talk is not None else (0.0 if ended else None),
            recording=self.recording,
            started_at=b.start,
            ended=ended,
            origin=self.origin,
        )


@dataclass(frozen=True)
class Talk:
    """A bridged conversation: `a` runs the app (`app`: name, data, uuid); `customer_is_a` says who is who."""

    a: Leg
    b: Leg
    app: tuple[str, str, str]
    customer_is_a: bool


def direct_call(
    b: CallBuilder, site: Site, caller: Caller, did: str, agent: str, outcome: str | Answer, record: bool
) -> ExpectedCall:
    """A DID routed to one agent's phone: `outcome` is an Answer, "no_answer" or "busy"."""
    customer = sofia.inbound(b, site, caller, did)
    call = Outcome(customer.uuid, "inbound", caller.number, caller.name, did)
    b.execute(customer, "set", "hangup_after_bridge=true")
    b.execute(customer, "set", f"call_timeout={int(NO_ANSWER_TIMEOUT)}")
    recording = f"{site.recordings}/{customer.uuid}.wav" if record else None
    if recording:
        b.execute(customer, "set", "RECORD_STEREO=true")
        b.execute(customer, "set", f"recording_file={recording}")
        b.execute(customer, "set", f"execute_on_answer=record_session {recording}")
    ip, port = site.agent_contact(agent)
    target = f"sofia/{site.agent_profile}/{agent}@{ip}:{port}"
    call.reached = b.t
    app = ("bridge", target, b.execute(customer, "bridge", target, complete=False))
    leg = sofia.to_agent(b, site, agent, (caller.number, caller.name), customer)
    if outcome == "busy":
        b.wait(0.02)
        refused(b, customer, leg, app, "USER_BUSY")
        return call.expect(b, None, "busy", "system", None)
    sofia.ring(b, leg, customer)
    if isinstance(outcome, Answer):
        b.wait(outcome.ring)
        sofia.answer(b, leg)
        sofia.answer(b, customer)
        if recording:  # execute_on_answer: only an answered call is recorded
            call.recording = recording
            _record(b, customer, "RECORD_START", recording)
        sofia.bridge(b, customer, leg)
        return converse(b, call, Talk(customer, leg, app, True), outcome, agent)
    b.wait(NO_ANSWER_TIMEOUT)
    refused(b, customer, leg, app, "NO_ANSWER")
    return call.expect(b, None, "no_answer", "system", None)


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
    """mod_callcenter: `offered` agents are called one at a time (the last answers, unless `answer` is
    None); a caller nobody answered gives up `abandon_after` seconds after joining."""
    customer = sofia.inbound(b, site, caller, did)
    call = Outcome(customer.uuid, "inbound", caller.number, caller.name, did, queue)
    b.execute(customer, "set", "hangup_after_bridge=true")
    return in_queue(b, site, call, customer, (caller.number, caller.name), offered, answer, abandon_after)


def in_queue(
    b: CallBuilder,
    site: Site,
    call: Outcome,
    customer: Leg,
    cid: tuple[str, str],
    offered: list[str],
    answer: Answer | None,
    abandon_after: float,
) -> ExpectedCall:
    """`customer` runs callcenter for `call.queue`; the agents' phones show `cid`."""
    name = f"{call.queue}@{site.domain}"
    call.reached = b.t
    app = ("callcenter", name, b.execute(customer, "callcenter", name, complete=False))
    if customer.answer_state != "answered":
        sofia.answer(b, customer)  # the queue answers the caller itself: billsec is not talk time
    member = cc.Member(name, b.ids.uuid(), customer, int(b.now))
    customer.var("cc_queue", name)
    customer.var("cc_member_uuid", member.uuid)
    cc.member_start(b, member)
    cc.members_count(b, name, 1)
    give_up = call.reached + abandon_after
    for n, agent in enumerate(offered):
        b.wait(0.08)
        cc_agent = f"{agent}@{site.domain}"
        cc.agent_state(b, cc_agent, "Receiving")
        cc.offering(b, member, cc_agent)
        called = int(b.now)
        cc_vars = (
            ("cc_queue", member.queue),
            ("cc_member_uuid", member.uuid),
            ("cc_member_session_uuid", member.session.uuid),
            ("cc_agent", cc_agent),
            ("cc_side", "agent"),
        )
        leg = sofia.to_agent(b, site, agent, cid, None, cc_vars)
        sofia.ring(b, leg, None)
        if answer is not None and n == len(offered) - 1:
            b.wait(answer.ring)
            sofia.answer(b, leg)
            answered = int(b.now)
            cc.bridge_start(b, member, cc_agent, leg, called, answered)
            cc.agent_state(b, cc_agent, "In a queue call")
            cc.members_count(b, name, 0)
            customer.var("cc_agent", cc_agent)
            customer.var("cc_cause", "answered")
            b.complete(customer, *app)
            sofia.bridge(b, customer, leg)
            expected = converse(b, call, Talk(customer, leg, app, True), answer, agent, close=False)
            cc.bridge_end(b, member, cc_agent, leg, called, answered)
            cc.member_answered_end(b, member, cc_agent, leg, called, answered)
            cc.agent_state(b, cc_agent, "Waiting")
            _destroy(b, customer, leg)
            return expected
        if give_up - b.t <= LEG_TIMEOUT:
            b.wait(max(0.0, give_up - b.t))
            _abandon(b, member, customer)
            sofia.hangup(b, leg, "ORIGINATOR_CANCEL", "send_cancel")
            sofia.report(b, leg)
            cc.bridge_fail(b, member, cc_agent, "ORIGINATOR_CANCEL", called)
            cc.agent_state(b, cc_agent, "Waiting")
            sofia.destroy(b, leg)
            return call.expect(b, None, "abandoned", "customer", None, give_up)
        b.wait(LEG_TIMEOUT)
        sofia.hangup(b, leg, "NO_ANSWER", "send_cancel")
        sofia.report(b, leg)
        cc.bridge_fail(b, member, cc_agent, "NO_ANSWER", called)
        cc.agent_state(b, cc_agent, "Waiting")
        sofia.destroy(b, leg)
    b.wait(max(0.0, give_up - b.t))
    _abandon(b, member, customer)
    return call.expect(b, None, "abandoned", "customer", None)


def converse(
    b: CallBuilder, call: Outcome, talk: Talk, answer: Answer, agent: str, close: bool = True
) -> ExpectedCall:
    """Talk, then the party that hangs up sends BYE; the other leg follows (hangup_after_bridge)."""
    answered_at = b.t
    if answer.talk is None:
        return call.expect(b, agent, None, None, None, answered_at, ended=False)
    b.wait(answer.talk)
    spoken = b.t - answered_at
    customer, agent_leg = (talk.a, talk.b) if talk.customer_is_a else (talk.b, talk.a)
    first = agent_leg if answer.agent_hangs_up else customer
    sofia.hangup(b, first, "NORMAL_CLEARING", "recv_bye")
    if first is talk.a:
        sofia.hangup(b, talk.b, "NORMAL_CLEARING", "send_bye")
    sofia.report(b, talk.b)
    sofia.unbridge(b, talk.a, talk.b)
    if call.recording:
        _record(b, customer, "RECORD_STOP", call.recording)
    if first is talk.b:
        sofia.hangup(b, talk.a, "NORMAL_CLEARING", "send_bye")
    talk.a.var("bridge_hangup_cause", "NORMAL_CLEARING")
    if talk.app[0] == "bridge":
        _dial_result(talk.a, "NORMAL_CLEARING")
        b.complete(talk.a, *talk.app)
    sofia.report(b, talk.a)
    if close:
        _destroy(b, talk.a, talk.b)
    return call.expect(b, agent, None, "agent" if first is agent_leg else "customer", spoken, answered_at)


def refused(
    b: CallBuilder, bridging: Leg, dialled: Leg | None, app: tuple[str, str, str], cause: str
) -> None:
    """The phone `bridging` bridges to refused (486), never answered, or could not be reached at all
    (no `dialled` leg): the bridge fails, and `bridging` is ended."""
    if dialled is not None:
        sofia.hangup(b, dialled, cause, "recv_refuse" if cause == "USER_BUSY" else "send_cancel")
        sofia.report(b, dialled)
    _dial_result(bridging, cause)
    b.complete(bridging, *app)
    # a busy bridge ends the call with its cause; otherwise the dialplan runs out (NORMAL_CLEARING)
    sofia.hangup(b, bridging, cause if cause == "USER_BUSY" else "NORMAL_CLEARING", "send_refuse")
    sofia.report(b, bridging)
    _destroy(b, bridging, *([dialled] if dialled else []))


def _abandon(b: CallBuilder, member: cc.Member, customer: Leg) -> None:
    """The caller hangs up while waiting in the queue."""
    customer.var("cc_cause", "cancel")
    customer.var("cc_cancel_reason", "BREAK_OUT")
    sofia.hangup(b, customer, "NORMAL_CLEARING", "recv_bye")
    cc.member_cancel_end(b, member)
    cc.members_count(b, member.queue, 0)
    sofia.report(b, customer)
    sofia.destroy(b, customer)


def _dial_result(leg: Leg, cause: str) -> None:
    leg.var("originate_disposition", "SUCCESS" if cause == "NORMAL_CLEARING" else cause)
    leg.var("DIALSTATUS", _DIAL_STATUS[cause])
    leg.var("last_bridge_hangup_cause", cause)


def _record(b: CallBuilder, leg: Leg, name: str, path: str) -> None:
    """record_session on the customer leg: RECORD_START at answer, RECORD_STOP at the end."""
    after: list[tuple[str, str]] = [("Record-File-Path", path)]
    if name == "RECORD_STOP":
        after.append(("Record-Completion-Cause", "success"))
        leg.var("record_completion_cause", "success")
    b.fire(name, leg, after=after)


def _destroy(b: CallBuilder, *legs: Leg) -> None:
    for leg in legs:
        sofia.destroy(b, leg)
