"""The commands an inbound ESL connection accepts, answered as mod_event_socket.c's parse_command does.

`exit` works before auth; anything but `auth` before it is `-ERR command not found` (the
connection stays), a wrong password is `-ERR invalid` and ends it. Once authenticated: event
subscriptions, api (blocking: the connection's events wait for its response), bgapi (the reply
at once with its Job-UUID, the result later as a BACKGROUND_JOB event to whoever subscribed),
sendmsg/sendevent, log and linger, with FreeSWITCH's reply texts.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

from pbxlink.esl.simulator.api import execute
from pbxlink.esl.simulator.event import EslEvent, Headers
from pbxlink.esl.simulator.stamp import base_headers
from pbxlink.esl.simulator.subscription import event_name
from pbxlink.esl.simulator.wire import Command, api_response

if TYPE_CHECKING:
    from pbxlink.esl.simulator.server import EslSimulator
    from pbxlink.esl.simulator.session import Session

log = logging.getLogger("pbxlink.esl.simulator")
#: switch_log_str2level
LOG_LEVELS = {
    **{"console": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4, "notice": 5},
    **{"info": 6, "debug": 7},
}


async def dispatch(sim: EslSimulator, session: Session, command: Command) -> None:
    line = command.line
    lower = line.lower()
    if lower.startswith("exit") or line.startswith("..."):
        session.reply("+OK bye")
        session.running = False
    elif not session.authenticated:
        _auth(sim, session, line)
    elif lower.startswith("filter "):
        session.reply(session.subscription.filter(line[7:]))
    elif lower.startswith("myevents "):
        _myevents(sim, session, line[9:])
    elif lower.startswith("sendmsg"):
        session.reply(_sendmsg(sim, session, line[7:].strip(" ") or command.get("session-id"), command))
    elif lower.startswith("sendevent"):
        session.reply(_sendevent(sim, line[9:].strip(" \t"), command))
    elif lower.startswith("api "):
        name, _, argument = line[4:].partition(" ")
        session.send(api_response(await execute(sim, name, argument or None)))
    elif lower.startswith("bgapi "):
        _bgapi(sim, session, line[6:], command.get("Job-UUID"))
    else:
        session.reply(_local(sim, session, line, lower))


def _auth(sim: EslSimulator, session: Session, line: str) -> None:
    if line.lower().startswith("userauth "):  # no directory users here: as a failed lookup
        session.reply("-ERR invalid")
        session.running = False
    elif not line.lower().startswith("auth "):
        session.reply("-ERR command not found")
    elif line[5:] == sim.password:
        session.authenticated = True
        session.reply("+OK accepted")
        log.info("%s:%d authenticated", *session.peer)
    else:
        session.reply("-ERR invalid")
        session.running = False
        log.info("%s:%d: wrong password", *session.peer)


def _local(sim: EslSimulator, session: Session, line: str, lower: str) -> str:
    """The commands that only touch the connection itself."""
    sub = session.subscription
    if lower.startswith("log"):
        level = line[4:]
        number = LOG_LEVELS.get(level.lower(), int(level) if level.isdigit() and int(level) < 8 else None)
        if level and number is None:
            return "-ERR invalid log level"
        session.logging = True  # the simulator writes no log lines, but remembers it was asked to
        return f"+OK log level {level} [{7 if number is None else number}]"
    if lower.startswith("linger"):
        return "+OK will linger" if sub.session_uuid else "-ERR not controlling a session"
    if lower.startswith("nolinger"):
        return "+OK will not linger" if sub.session_uuid else "-ERR not controlling a session"
    if lower.startswith("nolog"):
        was, session.logging = session.logging, False
        return "+OK no longer logging" if was else "-ERR not loging"
    if lower.startswith("event"):
        was_enabled = sub.enabled
        text = sub.subscribe(line.split(" ")[1:])
        if sub.enabled and not was_enabled:
            sim.subscribed(session)
        return text
    if lower.startswith("nixevent"):
        return sub.unsubscribe(line.split(" ")[1:])
    if lower.startswith("noevents"):
        return sub.clear()
    if lower.startswith("divert_events"):
        return "-ERR not controlling a session."
    if sub.session_uuid and lower.startswith("resume"):
        return "+OK"
    if sub.session_uuid and lower.startswith("getvar"):
        channel = sim.channels.find(sub.session_uuid)
        return (channel.variable(line[7:]) if channel else None) or ""
    return "-ERR command not found"


def _myevents(sim: EslSimulator, session: Session, argument: str) -> None:
    """`myevents <uuid> [plain|json|xml]`: only that channel's channel events from now on."""
    sub = session.subscription
    if sub.myevents:
        session.reply("-ERR aready enabled.")
        return
    target, _, fmt = argument.partition(" ")
    live = sim.channels.find(target) is not None
    if not live and fmt:
        session.reply("-ERR invalid uuid")
        return
    if fmt.lower() in ("plain", "json", "xml"):
        sub.fmt = fmt.lower()
    was_enabled = sub.enabled
    sub.narrow(target if live else None)
    if not was_enabled:
        sim.subscribed(session)
    session.reply("+OK Events Enabled")


def _sendmsg(sim: EslSimulator, session: Session, target: str | None, command: Command) -> str:
    """`sendmsg <uuid>`: hangup (and `execute hangup`) end the channel; other messages are accepted."""
    target = target or session.subscription.session_uuid
    if not target or sim.channels.find(target) is None:
        return f"-ERR invalid session id [{target or ''}]"
    call = (command.get("call-command") or "").lower()
    app = (command.get("execute-app-name") or "").lower()
    if call == "hangup" or (call == "execute" and app == "hangup"):
        cause = command.get("hangup-cause") or command.get("execute-app-arg") or "NORMAL_CLEARING"
        sim.hangup([target], cause)
    return "+OK"


def _sendevent(sim: EslSimulator, argument: str, command: Command) -> str:
    """`sendevent NAME` with headers (and a body): fired to every subscriber, as if the switch had."""
    event_uuid = str(uuid.uuid4())
    name = event_name(argument.split(" ")[0]) if argument else None
    subclass = (command.get("Event-Subclass") or "") if name == "CUSTOM" else ""
    where = ("mod_event_socket.c", "parse_command", 2301)
    headers: Headers = base_headers(sim.switch, name or "CLONE", time.time(), where, subclass)
    skip = ("content-length", "event-subclass")
    headers += [(key, value) for key, value in command.headers if key.lower() not in skip]
    headers.append(("Event-UUID", event_uuid))
    sim.emit(EslEvent(headers, command.body))
    return f"+OK {event_uuid}"


def _bgapi(sim: EslSimulator, session: Session, text: str, job_uuid: str | None) -> None:
    """The reply now; the result as BACKGROUND_JOB (its body) once the command has run."""
    name, _, argument = text.partition(" ")
    job = job_uuid or str(uuid.uuid4())
    session.reply(f"+OK Job-UUID: {job}", ("Job-UUID", job))
    sim.spawn(_background(sim, job, name, argument or None))


async def _background(sim: EslSimulator, job: str, name: str, argument: str | None) -> None:
    result = await execute(sim, name, argument)
    headers = base_headers(sim.switch, "BACKGROUND_JOB", time.time())
    headers += [("Job-UUID", job), ("Job-Command", name)]
    if argument:
        headers.append(("Job-Command-Arg", argument))
    sim.emit(EslEvent(headers, result))
