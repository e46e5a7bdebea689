"""The AMI actions the simulator answers, each as Asterisk 22's manager.c answers it.

Dispatch follows process_message: a missing Action, an action before Login, an unknown
action and a lack of write permission each get Asterisk's own error text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pbxlink.ami.simulator.commands import command_output
from pbxlink.ami.simulator.lists import core_show_channels, queue_status, queue_summary, status
from pbxlink.ami.simulator.wire import ActionRequest, encode, event_mask, format_timestamp, is_true

if TYPE_CHECKING:
    from pbxlink.ami.simulator.server import AmiSimulator
    from pbxlink.ami.simulator.session import Session

Handler = Callable[["AmiSimulator", "Session", ActionRequest], Awaitable[bool]]
_PRE_LOGIN = {"login", "logoff", "challenge"}


async def dispatch(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    """Answer one action; False when the session must end (Logoff, failed Login)."""
    name = req.action
    if not name:
        return _error(session, req, "Missing action in request")
    if not session.authenticated and name.lower() not in _PRE_LOGIN:
        return _error(session, req, "Permission denied")
    entry = ACTIONS.get(name.lower())
    if entry is None:
        return _error(
            session,
            req,
            f"Invalid/unknown command: {name}. Use Action: ListCommands to show available commands.",
        )
    required, handler = entry
    if required and not required & sim.write_perms:
        return _error(session, req, "Permission denied")
    return await handler(sim, session, req)


def _error(session: Session, req: ActionRequest, message: str) -> bool:
    session.send(req.respond("Error", [("Message", message)]))
    return True


def _ack(session: Session, req: ActionRequest, message: str) -> bool:
    session.send(req.respond("Success", [("Message", message)]))
    return True


async def _login(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    if session.authenticated:
        return _ack(session, req, "Already authenticated")
    if req.get("Username").lower() != sim.username.lower() or req.get("Secret") != sim.secret:
        await asyncio.sleep(sim.auth_fail_delay)  # manager.c sleeps 1 s, answers, then hangs up
        _error(session, req, "Authentication failed")
        return False
    session.login(sim.username, event_mask(req.get("Events")))
    _ack(session, req, "Authentication accepted")
    if "system" in session.events and "system" in sim.read_perms:
        uptime = str(sim.uptime())
        booted = [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime)]
        session.send(encode([*booted, ("LastReload", uptime), ("Status", "Fully Booted")]))
    sim.logged_in(session)
    return True


async def _logoff(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    session.send(req.respond("Goodbye", [("Message", "Thanks for all the fish.")]))
    return False


async def _ping(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    session.send(req.respond("Success", [("Ping", "Pong"), ("Timestamp", format_timestamp(time.time()))]))
    return True


async def _events(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    """EventMask on/off/list. An empty mask gets no answer at all, as in manager.c."""
    mask = event_mask(req.get("EventMask"))
    if mask is not None:
        session.events = mask
        session.send(req.respond("Success", [("Events", "On" if mask else "Off")]))
    return True


async def _core_settings(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    settings = [("AMIversion", "11.0.0"), ("AsteriskVersion", "22.10.1"), ("SystemName", "")]
    settings += [("CoreMaxCalls", "0"), ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", "root")]
    settings += [("CoreRunGroup", "root"), ("CoreMaxFilehandles", "0"), ("CoreRealTimeEnabled", "No")]
    settings += [("CoreCDRenabled", "Yes"), ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No")]
    session.send(req.respond("Success", settings))
    return True


async def _core_status(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    started = time.localtime(sim.started)
    date, clock = time.strftime("%Y-%m-%d", started), time.strftime("%H:%M:%S", started)
    status = [("CoreStartupDate", date), ("CoreStartupTime", clock), ("CoreReloadDate", date)]
    status += [("CoreReloadTime", clock), ("CoreCurrentCalls", str(sim.channels.current_calls()))]
    session.send(req.respond("Success", [*status, ("CoreProcessedCalls", str(sim.channels.processed_calls))]))
    return True


async def _command(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    ok, output = command_output(sim, req.get("Command"))
    lines = [("Output", line) for line in output.removesuffix("\n").split("\n")]
    session.send(req.respond("Success" if ok else "Error", [("Message", "Command output follows"), *lines]))
    return True


async def _originate(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    """Generates a click-to-call or a callback; a non-Async Originate answers once the first party
    answered, as Asterisk does. `Variable` headers (each `name=value`, or several split by `,`) are
    set on the originated channel; `Timeout` (ms) is how long its first party may ring."""
    channel, exten = req.get("Channel"), req.get("Exten")
    if not channel:
        return _error(session, req, "Channel not specified")
    if not exten:
        return _error(session, req, "Exten not specified")
    context = req.get("Context") or "default"
    variables = [
        (name.strip(), value)
        for header in req.get_all("Variable")
        for item in header.split(",")
        for name, sep, value in [item.partition("=")]
        if sep and name.strip()
    ]
    timeout = req.get("Timeout")
    answered = sim.originate(
        channel,
        exten,
        context=context,
        callerid=req.get("CallerID"),
        action_id=req.action_id,
        variables=variables,
        timeout=int(timeout) / 1000 if timeout.isdigit() and int(timeout) > 0 else 30.0,
    )
    if not is_true(req.get("Async")):
        await answered
    return _ack(session, req, "Originate successfully queued")


async def _hangup(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    """The response goes first: Asterisk's channel threads emit the hangup events after it."""
    channel, cause = req.get("Channel"), req.get("Cause")
    if not channel:
        return _error(session, req, "No channel specified")
    if not sim.channels.find(channel):
        return _error(session, req, "No such channel")
    _ack(session, req, "Channel Hungup")
    sim.hangup(channel, int(cause) if cause.isdigit() else 16)
    return True


async def _setvar(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    channel, variable = req.get("Channel"), req.get("Variable")
    if not variable:
        return _error(session, req, "No variable specified")
    if channel and not sim.channels.find(channel):
        return _error(session, req, "No such channel")
    _ack(session, req, "Variable Set")  # before the VarSet event, as with Asterisk's async events
    sim.set_variable(channel, variable, req.get("Value"))
    return True


async def _getvar(sim: AmiSimulator, session: Session, req: ActionRequest) -> bool:
    channel, variable = req.get("Channel"), req.get("Variable")
    if not variable:
        return _error(session, req, "No variable specified")
    if channel and not sim.channels.find(channel):
        return _error(session, req, "No such channel")
    value = sim.variables.get((channel, variable), "")
    session.send(req.respond("Success", [("Variable", variable), ("Value", value)]))
    return True


#: action (lower case) → (write classes that allow it, none = anyone logged in; handler)
ACTIONS: dict[str, tuple[frozenset[str], Handler]] = {
    "login": (frozenset(), _login),
    "logoff": (frozenset(), _logoff),
    "ping": (frozenset(), _ping),
    "events": (frozenset(), _events),
    "coresettings": (frozenset({"system", "reporting"}), _core_settings),
    "corestatus": (frozenset({"system", "reporting"}), _core_status),
    "coreshowchannels": (frozenset({"system", "reporting"}), core_show_channels),
    "status": (frozenset({"system", "call", "reporting"}), status),
    "queuesummary": (frozenset(), queue_summary),
    "queuestatus": (frozenset(), queue_status),
    "command": (frozenset({"command"}), _command),
    "originate": (frozenset({"originate"}), _originate),
    "hangup": (frozenset({"system", "call"}), _hangup),
    "setvar": (frozenset({"call"}), _setvar),
    "getvar": (frozenset({"call", "reporting"}), _getvar),
}
