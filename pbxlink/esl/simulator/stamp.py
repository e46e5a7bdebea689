"""What FreeSWITCH stamps on every event (which switch, when, fired from where) and moving those stamps.

Every event starts with the same thirteen headers (after Event-Subclass for a CUSTOM one).
Core-UUID and Event-Sequence are the emitting switch's: the simulator sets them as it sends, so
they follow its restarts and its own count. A replayed event keeps its recorded times moved by a
whole number of seconds, every time-valued header alike (µs and s epochs, local and GMT dates),
so durations derived from any of them stay exactly as recorded.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from functools import lru_cache

from pbxlink.esl.simulator.event import EslEvent, Headers

#: Event-Calling-File/Function/Line-Number, as the captures show them per event.
CALLING: dict[str, tuple[str, str, int]] = {
    "API": ("switch_loadable_module.c", "switch_api_execute", 2954),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", 1572),
    "CALL_UPDATE": ("mod_sofia.c", "sofia_receive_message", 2100),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", 3846),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1689),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", 301),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", 626),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", 1584),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", 2944),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", 2967),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", 3445),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", 943),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", 632),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", 768),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3505),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", 2408),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1879),
    "HEARTBEAT": ("switch_core.c", "send_heartbeat", 95),
    "RE_SCHEDULE": ("switch_scheduler.c", "switch_scheduler_execute", 73),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", 1481),
    "RECORD_STOP": ("switch_ivr_async.c", "send_record_stop_event", 1240),
    "SHUTDOWN": ("switch_core.c", "switch_core_destroy", 2962),
}
_TIME_NAME = re.compile(r"(Time|Timestamp|Runtime|Last-Hold|_epoch|_uepoch|_stamp|Date-Local|Date-GMT)$")
_LOCAL = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Switch:
    """The identity every event carries (the captures' VM by default)."""

    core_uuid: str
    hostname: str = "vm"
    ipv4: str = "192.0.2.2"
    ipv6: str = "fd00::2"


def local_time(at: float) -> str:
    """Event-Date-Local and the *_stamp variables; the switch runs on UTC, as the capture VM did."""
    return _dates(int(at))[0]


@lru_cache(maxsize=4096)
def _dates(second: int) -> tuple[str, str]:
    return time.strftime(_LOCAL, time.gmtime(second)), formatdate(second, usegmt=True)


def base_headers(
    switch: Switch, name: str, at: float, calling: tuple[str, str, int] | None = None, subclass: str = ""
) -> Headers:
    """The headers every event starts with; Event-Sequence is set when the event is sent."""
    file, function, line = calling or CALLING[name]
    local, gmt = _dates(int(at))
    head: Headers = [("Event-Subclass", subclass)] if subclass else []
    return [
        *head,
        *[("Event-Name", name), ("Core-UUID", switch.core_uuid), ("FreeSWITCH-Hostname", switch.hostname)],
        *[("FreeSWITCH-Switchname", switch.hostname), ("FreeSWITCH-IPv4", switch.ipv4)],
        *[("FreeSWITCH-IPv6", switch.ipv6), ("Event-Date-Local", local), ("Event-Date-GMT", gmt)],
        ("Event-Date-Timestamp", str(round(at * 1e6))),
        *[("Event-Calling-File", file), ("Event-Calling-Function", function)],
        *[("Event-Calling-Line-Number", str(line)), ("Event-Sequence", "0")],
    ]


def restamp(event: EslEvent, core_uuid: str, sequence: int) -> EslEvent:
    """The event as this switch sends it: its Core-UUID, its next Event-Sequence."""
    headers = list(event.headers)
    for i, (key, _) in enumerate(headers[:16]):
        if key == "Core-UUID":
            headers[i] = (key, core_uuid)
        elif key == "Event-Sequence":
            headers[i] = (key, str(sequence))
            break
    return EslEvent(headers, event.body)


def event_time(event: EslEvent) -> float | None:
    stamp = event.get("Event-Date-Timestamp")
    return int(stamp) / 1e6 if stamp and stamp.isdigit() else None


def shift(event: EslEvent, seconds: int) -> EslEvent:
    """The event with every time-valued header moved by `seconds` (0: the event itself)."""
    if not seconds:
        return event
    headers: Headers = []
    for key, value in event.headers:
        if isinstance(value, str) and value != "0" and _is_time(key):
            value = _shift_value(value, seconds)
        headers.append((key, value))
    return EslEvent(headers, event.body)


@lru_cache(maxsize=1024)
def _is_time(name: str) -> bool:
    return _TIME_NAME.search(name) is not None


@lru_cache(maxsize=65536)
def _shift_value(value: str, seconds: int) -> str:
    if value.isdigit():
        if len(value) == 16:
            return str(int(value) + seconds * 1_000_000)
        if len(value) == 10:
            return str(int(value) + seconds)
        return value
    if len(value) == 19 and value[4] == "-":
        moved = datetime.strptime(value, _LOCAL) + timedelta(seconds=seconds)
        return moved.strftime(_LOCAL)
    if value.endswith(" GMT"):
        return format_datetime(parsedate_to_datetime(value) + timedelta(seconds=seconds), usegmt=True)
    return value
