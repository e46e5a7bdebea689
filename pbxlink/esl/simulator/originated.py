"""Calls the switch places itself: click-to-call (`originate`), a refused originate, a transferred leg.

They share the inbound calls' endings (`scenarios.converse`): the party that hangs up sends the
BYE, the other leg follows.
"""

from __future__ import annotations

from pbxlink.esl.simulator import scenarios, sofia
from pbxlink.esl.simulator.channels import LiveChannel
from pbxlink.esl.simulator.flow import Answer, Site
from pbxlink.esl.simulator.legs import CallBuilder, Leg
from pbxlink.simulation.timeline import ExpectedCall


def click_to_call(
    b: CallBuilder,
    site: Site,
    agent: str,
    number: str | None,
    shown: tuple[str, str],
    sent: tuple[str, str],
    answer: Answer,
    remote_ring: float,
) -> tuple[ExpectedCall, Leg]:
    """originate: the agent's phone rings (showing `shown`) and answers, then `number` is called (showing
    `sent`) and bridged. Returns the outcome and the agent leg, whose answer completes the originate."""
    leg = sofia.to_agent(b, site, agent, shown, None)
    call = scenarios.Outcome(leg.uuid, "outbound", agent, None, number)
    for name, value in zip(
        ("origination_caller_id_number", "origination_caller_id_name"), shown, strict=True
    ):
        leg.var(name, value)
    for name, value in zip(("effective_caller_id_number", "effective_caller_id_name"), sent, strict=True):
        leg.var(name, value)
    sofia.ring(b, leg, None)
    b.wait(answer.ring)
    sofia.answer(b, leg)
    if number is None:  # an app other than bridge (park, playback…): the agent ends it
        b.wait(answer.talk or 0.0)
        sofia.hangup(b, leg, "NORMAL_CLEARING", "recv_bye")
        sofia.report(b, leg)
        sofia.destroy(b, leg)
        return call.expect(b, agent, None, "agent", answer.talk, b.t - (answer.talk or 0.0)), leg
    target = f"sofia/gateway/trunk/{number}"
    app = ("bridge", target, b.execute(leg, "bridge", target, complete=False))
    customer = sofia.to_trunk(b, site, number, sent, leg)
    sofia.ring(b, customer, leg)
    b.wait(remote_ring)
    sofia.answer(b, customer)
    sofia.bridge(b, leg, customer)
    return scenarios.converse(b, call, scenarios.Talk(leg, customer, app, False), answer, agent), leg


def refused_originate(
    b: CallBuilder, site: Site, agent: str, shown: tuple[str, str]
) -> tuple[ExpectedCall, Leg]:
    """originate to an agent already on a call: the phone answers 486, the originate fails USER_BUSY."""
    leg = sofia.to_agent(b, site, agent, shown, None)
    b.wait(0.02)
    sofia.hangup(b, leg, "USER_BUSY", "recv_refuse")
    sofia.report(b, leg)
    sofia.destroy(b, leg)
    return scenarios.Outcome(leg.uuid, "outbound", agent, None, None).expect(
        b, None, "busy", "system", None
    ), leg


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
