"""What one ESL connection listens to: `event`, `nixevent`, `noevents`, `filter` and `myevents`.

The rules are mod_event_socket.c's: event names match case-insensitively (a `SWITCH_EVENT_` prefix
is allowed), every word after CUSTOM is a subclass (even one that looks like an event name),
`ALL` takes every event and every subclass, unknown names are skipped, filters keep an event when
one of its headers matches (`-` vetoes, `/…/` is a regex) and `myevents` narrows to one channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pbxlink.esl.simulator.event import EslEvent

#: switch_event_types_t, in order: the names `event` accepts.
_EVENT_TYPES = """CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE CHANNEL_ANSWER
    CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD
    CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA
    CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID
    API LOG INBOUND_CHAN OUTBOUND_CHAN STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH
    MODULE_LOAD MODULE_UNLOAD DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE
    MESSAGE_WAITING MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE
    PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML
    NOTIFY PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS
    CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED SEND_INFO
    RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START RECORD_STOP
    PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START MEDIA_BUG_STOP
    CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT CALL_DETAIL DEVICE_STATE
    TEXT SHUTDOWN_REQUESTED ALL"""
EVENT_NAMES = frozenset(_EVENT_TYPES.split())
#: What `myevents` turns on (besides narrowing to the one channel).
_MYEVENTS = """CHANNEL_ANSWER CHANNEL_APPLICATION CHANNEL_BRIDGE CHANNEL_CREATE CHANNEL_DATA CHANNEL_DESTROY
    CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_ORIGINATE
    CHANNEL_UUID CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_STATE
    CHANNEL_UNBRIDGE CHANNEL_UNPARK DETECTED_SPEECH DTMF NOTALK TALK"""
MYEVENTS = frozenset(_MYEVENTS.split())
FORMATS = ("plain", "json", "xml")


def event_name(word: str) -> str | None:
    """switch_name_event: the canonical name of `word`, or None if it names no event."""
    name = word.upper()
    if len(name) > 13 and name.startswith("SWITCH_EVENT_"):
        name = name[13:]
    return name if name in EVENT_NAMES else None


@dataclass
class Subscription:
    fmt: str = "plain"
    enabled: bool = False  # LFLAG_EVENTS
    all: bool = False
    names: set[str] = field(default_factory=set)
    all_custom: bool = False
    subclasses: set[str] = field(default_factory=set)
    dropped_subclasses: set[str] = field(default_factory=set)
    filters: list[tuple[str, str]] = field(default_factory=list)
    myevents: bool = False
    session_uuid: str | None = None

    def subscribe(self, words: list[str]) -> str:
        """`event [plain|json|xml] NAME…`: the reply text."""
        custom = False
        keys = 0
        for n, word in enumerate(words):
            if n == 0 and word.lower() in FORMATS:
                self.fmt = word.lower()
                continue
            if custom:
                self.subclasses.add(word)
                self.dropped_subclasses.discard(word)
                continue
            name = event_name(word)
            if name is None:
                continue
            keys += 1
            if name == "ALL":
                self.all = self.all_custom = True
                self.names |= EVENT_NAMES - {"ALL"}
            else:
                self.names.add(name)
            custom = name == "CUSTOM"
        if not keys:
            return "-ERR no keywords supplied"
        self.enabled = True
        return f"+OK event listener enabled {self.fmt}"

    def unsubscribe(self, words: list[str]) -> str:
        """`nixevent NAME…`: the reply text."""
        custom = False
        keys = 0
        for word in words:
            if custom:
                self.subclasses.discard(word)
                self.dropped_subclasses.add(word)
                continue
            name = event_name(word)
            if name is None:
                continue
            keys += 1
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                self.all = False
                self.names.clear()
            else:
                if self.all:
                    self.all = False
                    self.names |= EVENT_NAMES - {"ALL"}
                self.names.discard(name)
        if not keys:
            return "-ERR no keywords supplied"
        self.enabled = True
        return "+OK events nixed"

    def clear(self) -> str:
        """`noevents`."""
        if not self.enabled:
            return "-ERR not listening for events"
        self.enabled = self.all = self.all_custom = False
        self.names.clear()
        self.subclasses.clear()
        self.dropped_subclasses.clear()
        return "+OK no longer listening for events"

    def filter(self, argument: str) -> str:
        """`filter [add] Header value`, `filter delete Header [value]`, `filter delete all`."""
        name, _, value = argument.strip(" ").partition(" ")
        if name.lower() == "delete" and value:
            name, _, value = value.partition(" ")
            if name.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [
                    f for f in self.filters if not (f[0] == name and (not value or f[1] == value))
                ]
            return f"+OK filter deleted. [{name}][{value}]"
        if not value:
            return "-ERR invalid syntax"
        if name.lower() == "add":
            name, _, value = value.partition(" ")
        self.filters.append((name, value))
        return f"+OK filter added. [{name}]=[{value}]"

    def narrow(self, uuid: str | None) -> None:
        """`myevents`: the channel events of one channel (or, without one, of any channel)."""
        self.myevents, self.session_uuid, self.enabled = True, uuid, True
        self.names |= MYEVENTS

    def wants(self, event: EslEvent) -> bool:
        """event_handler's test, for one event."""
        if not self.enabled:
            return False
        if not self.all:
            name = event.name
            if name not in self.names:
                return False
            subclass = event.subclass
            if name == "CUSTOM" and subclass and not self._custom(subclass):
                return False
        if self.filters and not self._filtered(event):
            return False
        if self.myevents:
            uuid = event.unique_id
            return uuid is not None and (self.session_uuid is None or uuid == self.session_uuid)
        return True

    def _custom(self, subclass: str) -> bool:
        if subclass in self.subclasses:
            return True
        return self.all_custom and subclass not in self.dropped_subclasses

    def _filtered(self, event: EslEvent) -> bool:
        send = False
        for name, spec in self.filters:
            value = event.get(name)
            if value is None:
                continue
            wanted = spec.lstrip("+- ")
            positive = not spec[: len(spec) - len(wanted)].replace(" ", "").endswith("-")
            if send and positive:
                continue
            if spec.startswith("/"):
                match = _regex(wanted).search(value) is not None
            else:
                match = value.lower() == wanted.lower()
            if match:
                if not positive:
                    return False
                send = True
        return send


def _regex(spec: str) -> re.Pattern[str]:
    """switch_regex_perform: `/pattern/flags` (i: ignore case, s: dot matches newline)."""
    body, _, flags = spec[1:].rpartition("/") if spec.count("/") > 1 else (spec.strip("/"), "", "")
    return re.compile(body, (re.IGNORECASE if "i" in flags else 0) | (re.DOTALL if "s" in flags else 0))
