"""A campaign's voice broadcast on the ESL simulator: `originate {…}<contact> s XML <*-broadcast>`.

The contact's leg rings through the trunk as for a customer-first callback; once answered, the
originate sends it to extension `s` of the broadcast context (dialplans/freeswitch/campaigns.xml),
which updates its caller profile (Caller-Context, Caller-Destination-Number) as
switch_ivr_session_transfer does. With PBXLINK_AMD=1 mod_avmd listens: a machine's beep fires
`CUSTOM avmd::beep` (no channel data, as mod_avmd fires it) and sets avmd_detect=TRUE, and the
message restarts for the recording; a human hears it to the end, then `avmd_stop` fires
`avmd::stop` with Beep-Status NOTDETECTED. A `press1` contact's 1 puts the leg in PBXLINK_QUEUE.
"""

from __future__ import annotations

import dataclasses

from pbxlink.esl.simulator import scenarios, sofia
from pbxlink.esl.simulator.flow import Answer, Site
from pbxlink.esl.simulator.legs import CallBuilder, Leg
from pbxlink.esl.simulator.originated import ABANDON_NEVER, reach_customer
from pbxlink.simulation.callbacks import GREETING_SECONDS, MESSAGE_SECONDS, PRESS_SECONDS, Behaviour
from pbxlink.simulation.timeline import ExpectedCall

#: what mod_avmd measured of the beep (Frequency, its variance, Amplitude, its variance, ms to detect)
_BEEP = (("Frequency", "1000.212891"), ("Frequency-variance", "0.000017"), ("Amplitude", "1387.519531"))
_BEEP += (("Amplitude-variance", "0.004112"), ("Detection-time", "1310"), ("Detector-resolution", "12"))
_BEEP += (("Detector-offset", "4"), ("Detector-index", "17"))
_AVMD_CALLING = ("mod_avmd.c", "avmd_fire_event", 718)
_INVALID = "silence_stream://250"  # play_and_get_digits' invalid-input prompt: none


def broadcast(
    b: CallBuilder,
    site: Site,
    number: str,
    shown: tuple[str, str],
    context: str,
    customer: Behaviour,
    queue: str | None,
    agents: list[str],
    answer: Answer,
    timing: tuple[float, float],
    variables: tuple[tuple[str, str], ...],
) -> tuple[ExpectedCall, Leg]:
    """The contact answers and hears the message; `press1` talks with the first of `agents` in `queue`.

    `timing` is (how long the contact's phone rings before they answer, the originate's timeout).
    Returns the outcome and the contact's leg, whose answer completes the originate.
    """
    call, leg, missed = reach_customer(b, site, number, shown, customer, *timing, variables)
    if missed is not None:
        return missed, leg
    picked_up = b.t
    leg.profile |= {"Destination-Number": "s", "Context": context, "Channel-Transfer-Time": b.micros()}
    b.state(leg, "CS_ROUTING")
    b.state(leg, "CS_EXECUTE")
    settings = dict(variables)
    message, amd_on = settings.get("PBXLINK_MESSAGE", ""), settings.get("PBXLINK_AMD") == "1"
    if amd_on:
        b.execute(leg, "set", f"execute_on_avmd_beep=transfer machine XML {context}")
        b.execute(leg, "avmd_start", "")
    app, data = "playback", message
    if queue:
        app, data = (
            "play_and_get_digits",
            f"1 1 1 5000 # {message} {_INVALID} pbxlink_pressed ^1$ 3000 done XML {context}",
        )
    playing = b.execute(leg, app, data, complete=False)
    if customer == "machine":
        b.wait(GREETING_SECONDS if amd_on else MESSAGE_SECONDS)
        if amd_on:  # the beep: the message starts again on the recording
            leg.var("avmd_detect", "TRUE")
            after = _avmd(leg, "DETECTED") + list(_BEEP)
            b.fire("CUSTOM", subclass="avmd::beep", after=after, calling=_AVMD_CALLING)
            b.complete(leg, app, data, playing, "PLAYBACK_INTERRUPTED")
            app, data = "playback", message
            playing = b.execute(leg, app, data, complete=False)
            b.wait(MESSAGE_SECONDS)
        b.complete(leg, app, data, playing, "FILE PLAYED")
        b.execute(leg, "hangup", "NORMAL_CLEARING")
        return _hung_up(b, call, leg, "send_bye", picked_up, "machine" if amd_on else None), leg
    pressed = customer == "press1" and queue is not None and bool(agents)
    b.wait(PRESS_SECONDS if pressed else MESSAGE_SECONDS)
    if pressed:
        digit = [("DTMF-Digit", "1"), ("DTMF-Duration", "960"), ("DTMF-Source", "RTP")]
        b.fire("DTMF", leg, after=digit, calling=("switch_channel.c", "switch_channel_dequeue_dtmf", 653))
    b.complete(leg, app, data, playing, "1" if pressed else "FILE PLAYED")
    if amd_on:
        b.execute(leg, "avmd_stop", "")
        after = [*_avmd(leg, "NOTDETECTED"), ("Total-time", "3000000")]
        b.fire("CUSTOM", subclass="avmd::stop", after=after, calling=_AVMD_CALLING)
    amd = "human" if amd_on else None
    if not pressed:
        return _hung_up(b, call, leg, "recv_bye", picked_up, amd), leg
    call.queue = queue
    expected = scenarios.in_queue(b, site, call, leg, (number, ""), agents, answer, ABANDON_NEVER)
    return _answered(expected, b, picked_up, amd), leg


def _avmd(leg: Leg, status: str) -> list[tuple[str, str]]:
    return [("Unique-ID", leg.uuid), ("Call-command", "avmd"), ("Beep-Status", status)]


def _hung_up(
    b: CallBuilder, call: scenarios.Outcome, leg: Leg, disposition: str, picked_up: float, amd: str | None
) -> ExpectedCall:
    """The contact's leg ends: they hung up (`recv_bye`) or the dialplan did (`send_bye`)."""
    sofia.hangup(b, leg, "NORMAL_CLEARING", disposition)
    sofia.report(b, leg)
    sofia.destroy(b, leg)
    by = "customer" if disposition.startswith("recv_") else "system"
    return _answered(call.expect(b, None, None, by, 0.0), b, picked_up, amd)


def _answered(expected: ExpectedCall, b: CallBuilder, picked_up: float, amd: str | None) -> ExpectedCall:
    """Answered when the contact picked up, talking until the end, whoever else joined."""
    talk, wait = round(b.t - picked_up, 3), round(picked_up, 3)
    return dataclasses.replace(expected, wait_seconds=wait, talk_seconds=talk, amd=amd)
