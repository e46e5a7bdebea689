"""Hanging up live channels from outside (uuid_kill, hupall, sendmsg hangup, a restart).

The events are built from what the channel table last saw of each channel: CHANNEL_HANGUP for
every channel first, CHANNEL_UNBRIDGE on the caller side of a bridge, then per channel
CHANNEL_HANGUP_COMPLETE (with the CDR variables) and CHANNEL_DESTROY — the order FreeSWITCH's
state machines produce when several channels go at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from pbxlink.esl.simulator.channels import LiveChannel
from pbxlink.esl.simulator.event import EslEvent, Headers, Value
from pbxlink.esl.simulator.legs import Q850
from pbxlink.esl.simulator.stamp import Switch, base_headers, local_time


def hangup_events(
    switch: Switch, channels: list[tuple[LiveChannel, str]], bridges: list[tuple[str, str]], at: float
) -> list[EslEvent]:
    """Events for `channels` (each with its cause) going down at `at`; `bridges` are (a, b) uuids."""
    micros = str(round(at * 1e6))
    down = {channel.uuid: (channel, cause) for channel, cause in channels}
    events = [_event(switch, "CHANNEL_HANGUP", c, cause, at, micros) for c, cause in channels]
    for a, b in bridges:
        if a in down:
            before = [("Bridge-A-Unique-ID", a), ("Bridge-B-Unique-ID", b)]
            events.append(_event(switch, "CHANNEL_UNBRIDGE", *down[a], at, micros, before))
    for channel, cause in channels:
        before = [("Hangup-Cause", cause)]
        events.append(_event(switch, "CHANNEL_HANGUP_COMPLETE", channel, cause, at, micros, before))
        events.append(_event(switch, "CHANNEL_DESTROY", channel, cause, at, micros))
    return events


def _event(
    switch: Switch,
    name: str,
    channel: LiveChannel,
    cause: str,
    at: float,
    micros: str,
    before: Sequence[tuple[str, Value]] = (),
) -> EslEvent:
    reporting = name in ("CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY")
    number = {"CHANNEL_HANGUP": "10", "CHANNEL_UNBRIDGE": "10", "CHANNEL_HANGUP_COMPLETE": "11"}.get(
        name, "12"
    )
    data: Headers = []
    for key, value in channel.data:
        if key == "Channel-State" and reporting:
            value = "CS_REPORTING"
        elif key == "Channel-State-Number":
            value = number
        elif key == "Channel-Call-State" and reporting:
            value = "HANGUP"
        elif key == "Caller-Channel-Hangup-Time":
            value = micros
        data.append((key, value))
        if key == "Answer-State":
            data[-1] = (key, "hangup")
            data.append(("Hangup-Cause", cause))
    variables = dict(channel.variables)
    if reporting:
        variables |= _cdr(channel, cause, at)
    return EslEvent([*base_headers(switch, name, at), *before, *data, *variables.items()])


def _cdr(channel: LiveChannel, cause: str, at: float) -> dict[str, str]:
    """hangup_cause and the end-of-call CDR variables."""
    start = int(channel.row["created_epoch"] or at)
    answered = int(str(dict(channel.data).get("Caller-Channel-Answered-Time") or 0)) / 1e6
    billed = at - answered if answered else 0.0
    return {
        "variable_hangup_cause": cause,
        "variable_hangup_cause_q850": str(Q850.get(cause, 16)),
        "variable_end_stamp": local_time(at),
        "variable_end_epoch": str(int(at)),
        "variable_end_uepoch": str(round(at * 1e6)),
        "variable_duration": str(int(at - start)),
        "variable_billsec": str(int(billed)),
    }
