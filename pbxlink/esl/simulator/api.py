"""The API commands the simulator runs (`api …` and `bgapi …`), with mod_commands' output formats.

Each run also fires an API event (API-Command, API-Command-Argument) as switch_api_execute does,
stamped when the command started and sent when it finished. An unknown command is
`-ERR <cmd> Command not found!`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pbxlink.esl.simulator.event import EslEvent
from pbxlink.esl.simulator.stamp import base_headers

if TYPE_CHECKING:
    from pbxlink.esl.simulator.server import EslSimulator

VERSION = "1.10.12-release~64bit"
NO_CHANNEL = "-ERR No such channel!\n"
SHOW_USAGE = (
    "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like "
    "<match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|"
    "management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n"
)
_UPTIME_SCALES = {
    **dict.fromkeys(("", "s", "seconds"), 1.0),
    **dict.fromkeys(("us", "microseconds"), 1e-6),
    **dict.fromkeys(("ms", "milliseconds"), 1e-3),
    **dict.fromkeys(("m", "minutes"), 60.0),
    **dict.fromkeys(("h", "hours"), 3600.0),
    **dict.fromkeys(("d", "days"), 86400.0),
}
Handler = Callable[["EslSimulator", str], "str | Awaitable[str]"]


async def execute(sim: EslSimulator, name: str, argument: str | None) -> str:
    """Run one API command; returns its output."""
    started = time.time()
    handler = COMMANDS.get(name)
    if handler is None:
        result = f"-ERR {name} Command not found!\n"
    else:
        output = handler(sim, argument or "")
        result = await output if inspect.isawaitable(output) else output
    headers = base_headers(sim.switch, "API", started)
    headers.append(("API-Command", name))
    if argument:
        headers.append(("API-Command-Argument", argument))
    sim.emit(EslEvent(headers))
    return result


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def up_time(seconds: float) -> str:
    """`0 years, 0 days, 0 hours, 10 minutes, 40 seconds, 134 milliseconds, 355 microseconds`."""
    micros = int(seconds * 1e6)
    parts = []
    for unit, size in (("year", 31_536_000), ("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        count, micros = divmod(micros, size * 1_000_000)
        parts.append(_plural(count, unit))
    parts += [_plural(micros // 1000, "millisecond"), _plural(micros % 1000, "microsecond")]
    return ", ".join(parts)


def _status(sim: EslSimulator, argument: str) -> str:
    table = sim.channels
    return (
        f"UP {up_time(sim.uptime())}\n"
        "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
        f"{table.created} session(s) since startup\n"
        f"{len(table.channels)} session(s) - peak {table.peak}, last 5min {table.peak} \n"
        "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
        f"{sim.max_sessions} session(s) max\n"
        "min idle cpu 0.00/99.00\n"
        "Current Stack Size/Max 240K/8192K\n"
    )


def _version(sim: EslSimulator, argument: str) -> str:
    if "short" in argument.lower():
        return "1.10.12\n"
    return f"FreeSWITCH Version {VERSION} ( 64bit)\n"


def _uptime(sim: EslSimulator, argument: str) -> str:
    scale = _UPTIME_SCALES.get(argument.strip().lower())
    if scale is None:
        return "-USAGE: [us|ms|s|m|h|d|microseconds|milliseconds|seconds|minutes|hours|days]\n"
    return f"{int(sim.uptime() / scale)}\n"


def _show(sim: EslSimulator, argument: str) -> str:
    words = argument.split()
    as_json = len(words) >= 3 and words[1].lower() == "as" and words[2].lower() == "json"
    what = words[0].lower() if words else ""
    if what == "channels":
        return sim.channels.show_channels(as_json)
    if what == "calls":
        return sim.channels.show_calls(as_json)
    return SHOW_USAGE


def _uuid_kill(sim: EslSimulator, argument: str) -> str:
    target, _, cause = argument.partition(" ")
    if not sim.channels.find(target):
        return NO_CHANNEL
    sim.hangup([target], cause.strip() or "NORMAL_CLEARING")
    return "+OK\n"


def _uuid_transfer(sim: EslSimulator, argument: str) -> str:
    words = argument.split()
    leg = words[1].lower() if len(words) > 1 and words[1].lower() in ("-bleg", "-both") else ""
    rest = words[2:] if leg else words[1:]
    if not words or not rest:
        return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    if not sim.channels.find(words[0]):
        return NO_CHANNEL
    return "+OK\n" if sim.transfer(words[0], rest[0], leg) else "-ERR\n"


def _uuid_record(sim: EslSimulator, argument: str) -> str:
    words = argument.split()
    if len(words) < 3 or words[1].lower() not in ("start", "stop"):
        return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
    if not sim.channels.find(words[0]):
        return "-ERR Cannot locate session!\n"
    if not sim.record(words[0], words[1].lower(), words[2]):
        return "-ERR Cannot stop record session!\n"
    return "+OK Success\n"


def _uuid_setvar(sim: EslSimulator, argument: str) -> str:
    words = argument.split(" ", 2)
    if len(words) < 2:
        return "-USAGE: <uuid> <var> [value]\n"
    channel = sim.channels.find(words[0])
    if channel is None:
        return NO_CHANNEL
    if len(words) > 2 and words[2]:
        channel.variables["variable_" + words[1]] = words[2]
    else:
        channel.variables.pop("variable_" + words[1], None)
    return "+OK\n"


def _uuid_getvar(sim: EslSimulator, argument: str) -> str:
    words = argument.split()
    if len(words) < 2:
        return "-USAGE: <uuid> <var>\n"
    channel = sim.channels.find(words[0])
    if channel is None:
        return NO_CHANNEL
    return channel.variable(words[1]) or "_undef_"


def _uuid_exists(sim: EslSimulator, argument: str) -> str:
    return "true" if sim.channels.find(argument.strip()) else "false"


def _hupall(sim: EslSimulator, argument: str) -> str:
    words = argument.split()
    cause = words[0] if words else "MANAGER_REQUEST"
    if len(words) >= 3:
        name, value = words[1], words[2]
        targets = [c.uuid for c in list(sim.channels.channels.values()) if c.variable(name) == value]
        sim.hangup(targets, cause, cause)
        return f"+OK hangup all channels matching [{name}]=[{value}] with cause: {cause}\n"
    sim.hangup(list(sim.channels.channels), cause, cause)
    return f"+OK hangup all channels with cause {cause}\n"


def _global_getvar(sim: EslSimulator, argument: str) -> str:
    name = argument.strip()
    if not name:
        return "".join(f"{key}={value}\n" for key, value in sim.globals.items())
    return sim.globals.get(name, "")


def _global_setvar(sim: EslSimulator, argument: str) -> str:
    name, sep, value = argument.partition("=")
    if not sep or not name.strip():
        return "-USAGE: <var>=<value>\n"
    sim.globals[name.strip()] = value
    return "+OK\n"


async def _originate(sim: EslSimulator, argument: str) -> str:
    return await sim.originate(argument)


COMMANDS: dict[str, Handler] = {
    "status": _status,
    "version": _version,
    "uptime": _uptime,
    "show": _show,
    "originate": _originate,
    "uuid_kill": _uuid_kill,
    "uuid_transfer": _uuid_transfer,
    "uuid_record": _uuid_record,
    "uuid_setvar": _uuid_setvar,
    "uuid_getvar": _uuid_getvar,
    "uuid_exists": _uuid_exists,
    "hupall": _hupall,
    "global_getvar": _global_getvar,
    "global_setvar": _global_setvar,
}
