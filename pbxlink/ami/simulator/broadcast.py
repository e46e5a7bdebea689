"""A campaign's voice broadcast on the AMI simulator: `Local/<contact>@<dial context>` into `*-broadcast`.

`;2` dials the contact through the trunk as for a customer-first callback; once they answer,
`;1` runs the broadcast context (dialplans/asterisk/campaigns.conf): Answer, AMD() when
PBXLINK_AMD is 1 (its verdict in AMDSTATUS and AMDCAUSE, set by VarSet as app_amd does), then
Playback(PBXLINK_MESSAGE), or with PBXLINK_QUEUE set Background() and WaitExten(), a `press1`
contact's 1 leaving for extension 1, which queues the call there. A human hangs up when the
message is over; on a machine the dialplan waits for the greeting's end, leaves the message and
hangs up.
"""

from __future__ import annotations

import dataclasses

from pbxlink.ami.simulator.builder import CallBuilder, Channel
from pbxlink.ami.simulator.callbacks import Callback, Originate, originated, reach_customer
from pbxlink.ami.simulator.flow import Answer, Site
from pbxlink.ami.simulator.scenarios import enter_queue, take_call
from pbxlink.simulation.callbacks import (
    AMD_SECONDS,
    GREETING_SECONDS,
    MESSAGE_SECONDS,
    PRESS_SECONDS,
    Behaviour,
)
from pbxlink.simulation.timeline import ExpectedCall

WAIT_EXTEN_SECONDS = 5.0  # WaitExten(5): how long the broadcast context waits for a key after the message
#: app_amd's AMDSTATUS and AMDCAUSE (cause-<measured ms>-<limit ms>) for a machine and for a human
_VERDICT = {True: ("MACHINE", "LONGGREETING-1550-1500"), False: ("HUMAN", "HUMAN-1000-800")}


def broadcast(
    b: CallBuilder,
    site: Site,
    o: Originate,
    customer: Behaviour,
    queue: str | None,
    agents: list[str],
    answer: Answer,
    customer_ring: float,
) -> ExpectedCall:
    """The contact (the endpoint) answers and hears the message; `press1` talks to the first of `agents`."""
    call = originated(b, site, o)
    phone = reach_customer(call, customer, customer_ring)
    if isinstance(phone, ExpectedCall):
        return phone
    near, picked_up = call.near, b.t
    variables = dict(o.variables)
    message = variables.get("PBXLINK_MESSAGE", "")
    machine = customer == "machine"
    b.exten(near, "Answer", "")
    amd = None
    if variables.get("PBXLINK_AMD") == "1":
        b.exten(near, "AMD", "")
        b.wait(GREETING_SECONDS if machine else AMD_SECONDS)
        status, cause = _VERDICT[machine]
        b.var(near, "AMDSTATUS", status)
        b.var(near, "AMDCAUSE", cause)
        amd = status.lower()
    if machine and amd:
        b.exten(near, "WaitForSilence", "2500,1,20")  # the greeting's end: the message goes on the recording
        b.wait(0.5)
    b.exten(near, "Background" if queue and amd != "machine" else "Playback", message)
    if customer != "press1" or queue is None or not agents:
        b.wait(MESSAGE_SECONDS)
        if machine:  # nobody presses 1 nor hangs up: the dialplan does
            if queue and not amd:
                b.exten(near, "WaitExten", "5")
                b.wait(WAIT_EXTEN_SECONDS)
            b.exten(near, "Hangup", "")
            call.end(near, False, 16, [])
            return _answered(call, picked_up, None, None, "system", amd)
        call.end(phone, True, 16, [])
        return _answered(call, picked_up, None, None, "customer", amd)
    b.wait(PRESS_SECONDS)
    _press(b, near, "1")
    legs = enter_queue(b, site, near, queue, agents)
    b.wait(answer.ring)
    agent, agent_phone, _, _ = take_call(b, site, near, queue, legs, answer.ring)
    call.channels.append(agent_phone)
    by = call.converse(b.t, answer, agent_phone, near)
    call.end(agent_phone if by == "agent" else phone, True, 16, [agent])
    return _answered(call, picked_up, agent, queue, by, amd)


def _press(b: CallBuilder, near: Channel, digit: str) -> None:
    """The contact presses `digit` during Background(): it ends, and the call goes to that extension."""
    for event, extra in (("DTMFBegin", []), ("DTMFEnd", [("DurationMs", "120")])):
        b.emit(event, "dtmf", *near.snapshot(), ("Digit", digit), *extra, ("Direction", "Received"))
        b.wait(0.12)
    near.exten, near.next_priority = digit, 1


def _answered(
    call: Callback, picked_up: float, agent: str | None, queue: str | None, by: str, amd: str | None
) -> ExpectedCall:
    """Answered when the contact picked up, talking until the end, whoever else joined."""
    call.answered_at = picked_up
    expected = call.expect(None, call.o.endpoint, agent, queue, None, by)
    return dataclasses.replace(expected, talk_seconds=round(call.b.t - picked_up, 3), amd=amd)
