"""Calls the switch places itself: click-to-call (`originate`), a refused originate, a transferred leg.

They share the inbound calls' endings (`scenarios.converse`): the party that hangs up sends the
BYE, the other leg follows.
"""

from __future__ import annotations

from pbxlink.esl.control import TAG_VARIABLE
from pbxlink.esl.simulator import scenarios, sofia
from pbxlink.esl.simulator.channels import LiveChannel
from pbxlink.esl.simulator.flow import Answer, Site
from pbxlink.esl.simulator.legs import CallBuilder, Leg
from pbxlink.simulation.callbacks import MESSAGE_SECONDS, Behaviour
from pbxlink.simulation.timeline import ExpectedCall

#: Hangup-Cause and sip_hangup_disposition of a customer's phone that does not answer
_UNREACHED = {"busy": ("USER_BUSY", "recv_refuse"), "no_answer": ("NO_ANSWER", "send_cancel")}
ABANDON_NEVER = 3600.0  # a customer who asked for the call waits in the queue until an agent answers


def click_to_call(
    b: CallBuilder,
    site: Site,
    agents: list[str],
    number: str | None,
    shown: tuple[str, str],
    sent: tuple[str, str],
    answer: Answer,
    remote_ring: float,
    customer: Behaviour = "answer",
    variables: tuple[tuple[str, str], ...] = (),
) -> tuple[ExpectedCall, Leg]:
    """originate (agent first): the agents' phones ring (showing `shown`; a queue's members all at once)
    and the first answers, the others losing the race; then `number` is called (showing `sent`) and,
    if the customer answers, bridged. Returns the outcome and the leg whose answer completes the originate.
    """
    legs = [sofia.to_agent(b, site, agent, shown, None, variables) for agent in agents]
    leg, agent = legs[0], agents[0]
    call = scenarios.Outcome(leg.uuid, "outbound", agent, None, number, origin=_tag(variables))
    for each in legs:
        for name, value in zip(
            ("origination_caller_id_number", "origination_caller_id_name"), shown, strict=True
        ):
            each.var(name, value)
        for name, value in zip(("effective_caller_id_number", "effective_caller_id_name"), sent, strict=True):
            each.var(name, value)
        sofia.ring(b, each, None)
    b.wait(answer.ring)
    sofia.answer(b, leg)
    for loser in legs[1:]:
        sofia.hangup(b, loser, "LOSE_RACE", "send_cancel")
        sofia.report(b, loser)
        sofia.destroy(b, loser)
    if number is None:  # an app other than bridge (park, playback…): the agent ends it
        b.wait(answer.talk or 0.0)
        sofia.hangup(b, leg, "NORMAL_CLEARING", "recv_bye")
        sofia.report(b, leg)
        sofia.destroy(b, leg)
        return call.expect(b, agent, None, "agent", answer.talk, b.t - (answer.talk or 0.0)), leg
    target = f"sofia/gateway/trunk/{number}"
    app = ("bridge", target, b.execute(leg, "bridge", target, complete=False))
    if customer == "fail":  # the gateway cannot place it: no leg, nobody was offered the call
        scenarios.refused(b, leg, None, app, "NORMAL_TEMPORARY_FAILURE")
        call.callee = None
        return call.expect(b, None, "failed", "system", None), leg
    call.reached = b.t
    far = sofia.to_trunk(b, site, number, sent, leg)
    if customer == "busy":
        b.wait(0.02)
        scenarios.refused(b, leg, far, app, "USER_BUSY")
        return call.expect(b, None, "busy", "customer", None), leg
    sofia.ring(b, far, leg)
    if customer == "no_answer":
        b.wait(scenarios.NO_ANSWER_TIMEOUT)
        scenarios.refused(b, leg, far, app, "NO_ANSWER")
        return call.expect(b, None, "no_answer", "system", None), leg
    b.wait(remote_ring)
    sofia.answer(b, far)
    sofia.bridge(b, leg, far)
    return scenarios.converse(b, call, scenarios.Talk(leg, far, app, False), answer, agent), leg


def customer_first(
    b: CallBuilder,
    site: Site,
    number: str,
    shown: tuple[str, str],
    queue: str,
    agents: list[str],
    customer: Behaviour,
    answer: Answer,
    customer_ring: float,
    timeout: float,
    variables: tuple[tuple[str, str], ...],
) -> tuple[ExpectedCall, Leg]:
    """originate (customer first): the customer's phone rings (showing `shown`); once answered, the leg
    plays a message and waits in `queue`, where the last of `agents` answers. Returns the outcome and
    the customer's leg, whose answer completes the originate."""
    call, leg, missed = reach_customer(b, site, number, shown, customer, customer_ring, timeout, variables)
    if missed is not None:
        return missed, leg
    call.queue = queue
    intro = "ivr/pbxlink-callback.wav"
    playback = b.execute(leg, "playback", intro, complete=False)
    b.wait(MESSAGE_SECONDS)
    b.complete(leg, "playback", intro, playback, "FILE PLAYED")
    expected = scenarios.in_queue(b, site, call, leg, (number, ""), agents, answer, ABANDON_NEVER)
    return expected, leg


def reach_customer(
    b: CallBuilder,
    site: Site,
    number: str,
    shown: tuple[str, str],
    customer: Behaviour,
    ring: float,
    timeout: float,
    variables: tuple[tuple[str, str], ...],
) -> tuple[scenarios.Outcome, Leg, ExpectedCall | None]:
    """The originate's leg to the customer through the trunk rings (showing `shown`): answered, or the
    missed call's outcome (busy, no answer) as the third item."""
    leg = sofia.to_trunk(b, site, number, shown, None, variables)
    call = scenarios.Outcome(leg.uuid, "outbound", None, None, number, origin=_tag(variables))
    sofia.ring(b, leg, None)
    if customer in ("busy", "no_answer"):
        b.wait(0.02 if customer == "busy" else timeout)
        sofia.hangup(b, leg, *_UNREACHED[customer])
        sofia.report(b, leg)
        sofia.destroy(b, leg)
        return call, leg, call.expect(b, None, customer, "customer" if customer == "busy" else "system", None)
    b.wait(ring)
    sofia.answer(b, leg)
    return call, leg, None


def refused_originate(
    b: CallBuilder,
    site: Site,
    agent: str,
    shown: tuple[str, str],
    variables: tuple[tuple[str, str], ...] = (),
) -> tuple[ExpectedCall, Leg]:
    """originate to an agent already on a call: the phone answers 486, the originate fails USER_BUSY."""
    leg = sofia.to_agent(b, site, agent, shown, None, variables)
    b.wait(0.02)
    sofia.hangup(b, leg, "USER_BUSY", "recv_refuse")
    sofia.report(b, leg)
    sofia.destroy(b, leg)
    outcome = scenarios.Outcome(leg.uuid, "outbound", agent, None, None, origin=_tag(variables))
    return outcome.expect(b, None, "busy", "system", None), leg


def _tag(variables: tuple[tuple[str, str], ...]) -> str | None:
    return dict(variables).get(TAG_VARIABLE)


def transferred(
    b: CallBuilder, site: Site, channel: LiveChannel, dest: str, answer: Answer, agents: list[str]
) -> ExpectedCall:
    """uuid_transfer: the channel runs extension `dest`; an agent's is rung and bridged, else it ends."""
    leg = sofia.resume(channel)
    leg.other = None
    leg.profile["Destination-Number"] = dest
    leg.profile["Channel-Transfer-Time"] = b.micros()
    customer_side = leg.direction == "inbound"
    call = scenarios.Outcome(leg.uuid, leg.direction, leg.profile.get("Caller-ID-Number", ""), None, dest)
    b.state(leg, "CS_ROUTING")
    b.state(leg, "CS_EXECUTE")
    if dest not in agents:
        b.execute(leg, "hangup", "NO_ROUTE_DESTINATION")
        sofia.hangup(b, leg, "NO_ROUTE_DESTINATION", "send_bye")
        sofia.report(b, leg)
        sofia.destroy(b, leg)
        return call.expect(b, None, "failed", "system", None)
    ip, port = site.agent_contact(dest)
    target = f"sofia/{site.agent_profile}/{dest}@{ip}:{port}"
    call.reached = b.t
    app = ("bridge", target, b.execute(leg, "bridge", target, complete=False))
    cid = (leg.profile.get("Caller-ID-Number", ""), leg.profile.get("Caller-ID-Name", ""))
    agent_leg = sofia.to_agent(b, site, dest, cid, leg)
    sofia.ring(b, agent_leg, leg)
    b.wait(answer.ring)
    sofia.answer(b, agent_leg)
    sofia.bridge(b, leg, agent_leg)
    return scenarios.converse(b, call, scenarios.Talk(leg, agent_leg, app, customer_side), answer, dest)
