"""Channels of generated calls, and the builder that turns their changes into FreeSWITCH events.

A `Leg` holds what switch_channel_event_set_data writes on a channel event, in its order: the
channel block (running state name, state number, call state, answer state…), the codecs once
set, the caller profile (`Caller-*`), the other leg's profile once there is one (`Other-Type`,
`Other-Leg-*`) and, on the events that carry them, the channel variables. As in the captures,
Channel-State is the running state while Channel-State-Number can already be the next one.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pbxlink.esl.simulator.event import EslEvent, Headers, Value
from pbxlink.esl.simulator.stamp import Switch, base_headers

_STATES = """CS_NEW CS_INIT CS_ROUTING CS_SOFT_EXECUTE CS_EXECUTE CS_EXCHANGE_MEDIA CS_PARK CS_CONSUME_MEDIA
    CS_HIBERNATE CS_RESET CS_HANGUP CS_REPORTING CS_DESTROY CS_NONE"""
_CALLSTATES = "DOWN DIALING RINGING EARLY ACTIVE HELD RING_WAIT HANGUP UNHELD"
_VERBOSE = """CHANNEL_CREATE CHANNEL_ORIGINATE CHANNEL_ANSWER CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA
    CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE
    CHANNEL_EXECUTE_COMPLETE CHANNEL_DESTROY CALL_UPDATE RECORD_START RECORD_STOP CUSTOM"""
STATE_NUMBERS = {name: n for n, name in enumerate(_STATES.split())}
CALLSTATE_NUMBERS = {name: n for n, name in enumerate(_CALLSTATES.split())}
#: Events that carry the channel variables (the others stop after the caller profile).
VERBOSE = frozenset(_VERBOSE.split())
#: Q.850 codes of the causes generated calls end with (FreeSWITCH's own causes map to 16).
Q850 = {"NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_ANSWER": 19}
_STEP = 0.0001  # between events of one burst, so a call's events keep their order when merged


@dataclass
class Leg:
    uuid: str
    name: str
    direction: str
    profile: dict[str, str]  # Caller-* without the prefix, in FreeSWITCH's order
    variables: dict[str, Value]  # with the variable_ prefix, in the order they were set
    hit_dialplan: bool
    call_uuid: str
    state: str = "CS_NEW"
    state_number: int = 0
    callstate: str = "DOWN"
    answer_state: str = "ringing"
    hangup_cause: str | None = None
    codec: tuple[str, str, str] | None = None
    other: tuple[str, dict[str, str]] | None = None  # (Other-Type, the other leg's profile as copied)
    profiled: bool = True  # a brand-new inbound leg fires its first event before it has a caller profile

    def data(self, verbose: bool) -> Headers:
        """The channel data of one event on this leg."""
        headers: Headers = [
            *[("Channel-State", self.state), ("Channel-Call-State", self.callstate)],
            *[("Channel-State-Number", str(self.state_number)), ("Channel-Name", self.name)],
            *[("Unique-ID", self.uuid), ("Call-Direction", self.direction)],
            *[
                ("Presence-Call-Direction", self.direction),
                ("Channel-HIT-Dialplan", _bool(self.hit_dialplan)),
            ],
            *[("Channel-Call-UUID", self.call_uuid), ("Answer-State", self.answer_state)],
        ]
        if self.hangup_cause:
            headers.append(("Hangup-Cause", self.hangup_cause))
        if self.codec:
            for side in ("Read", "Write"):
                name, rate, bits = self.codec
                headers += [(f"Channel-{side}-Codec-Name", name), (f"Channel-{side}-Codec-Rate", rate)]
                headers.append((f"Channel-{side}-Codec-Bit-Rate", bits))
        if self.profiled:
            headers += [("Caller-" + key, value) for key, value in self.profile.items()]
        if self.other:
            kind, profile = self.other
            headers.append(("Other-Type", kind))
            headers += [("Other-Leg-" + k, v) for k, v in profile.items() if k != "Profile-Index"]
        if verbose:
            headers += self.variables.items()
        return headers

    def var(self, name: str, value: str) -> None:
        self.variables.pop("variable_" + name, None)
        self.variables["variable_" + name] = value


@dataclass
class Ids:
    """Server-wide counters: FreeSWITCH numbers its sessions from startup."""

    session: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def session_id(self) -> str:
        self.session += 1
        return str(self.session)


class CallBuilder:
    """Accumulates one call's events; `t` is the current time in seconds since the call started."""

    def __init__(self, switch: Switch, ids: Ids, start: float) -> None:
        self.switch, self.ids, self.start = switch, ids, start
        self.events: list[tuple[float, EslEvent]] = []
        self.legs: list[Leg] = []
        self.t = 0.0

    @property
    def now(self) -> float:
        return self.start + self.t

    def micros(self) -> str:
        return str(round(self.now * 1e6))

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def fire(
        self,
        name: str,
        leg: Leg | None = None,
        *,
        before: Sequence[tuple[str, Value]] = (),
        after: Sequence[tuple[str, Value]] = (),
        subclass: str = "",
        calling: tuple[str, str, int] | None = None,
        body: str | None = None,
    ) -> None:
        headers = base_headers(self.switch, name, self.now, calling, subclass)
        headers += before
        if leg is not None:
            headers += leg.data(name in VERBOSE)
        headers += after
        self.events.append((self.t, EslEvent(headers, body)))
        self.t += _STEP

    def state(self, leg: Leg, state: str, number: int | None = None) -> None:
        """CHANNEL_STATE: the leg's running state moves on."""
        leg.state, leg.state_number = state, STATE_NUMBERS[state] if number is None else number
        self.fire("CHANNEL_STATE", leg)

    def callstate(self, leg: Leg, callstate: str) -> None:
        original, leg.callstate = leg.callstate, callstate
        before = [("Original-Channel-Call-State", original)]
        before.append(("Channel-Call-State-Number", str(CALLSTATE_NUMBERS[callstate])))
        self.fire("CHANNEL_CALLSTATE", leg, before=before)

    def execute(self, leg: Leg, app: str, data: str, complete: bool = True) -> str:
        """CHANNEL_EXECUTE (and, unless the app keeps running, CHANNEL_EXECUTE_COMPLETE)."""
        app_uuid = self.ids.uuid()
        leg.var("current_application_data", data)
        leg.var("current_application", app)
        self.fire("CHANNEL_EXECUTE", leg, after=_app(app, data, app_uuid))
        if app == "set":
            name, _, value = data.partition("=")
            leg.var(name, value)
        if complete:
            self.complete(leg, app, data, app_uuid)
        return app_uuid

    def complete(self, leg: Leg, app: str, data: str, app_uuid: str, response: str = "_none_") -> None:
        after = [*_app(app, data, app_uuid)[:2], ("Application-Response", response)]
        self.fire("CHANNEL_EXECUTE_COMPLETE", leg, after=[*after, ("Application-UUID", app_uuid)])


def _app(app: str, data: str, app_uuid: str) -> Headers:
    return [("Application", app), ("Application-Data", data), ("Application-UUID", app_uuid)]


def _bool(flag: bool) -> str:
    return "true" if flag else "false"
