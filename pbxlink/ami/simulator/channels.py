"""The simulated PBX's live channels, kept from the events it emits (replays and synthetic alike).

State is server-wide, like a real PBX's: a client that reconnects has missed events and
must ask CoreShowChannels/Status, which answer from this table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pbxlink.ami.simulator.wire import CAUSE_TEXT, Headers

#: The channel snapshot every channel event carries, in Asterisk's order.
SNAPSHOT_KEYS: tuple[str, ...] = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)


@dataclass
class LiveChannel:
    snapshot: dict[str, str]
    created: float
    application: str = ""
    app_data: str = ""
    bridge: str = ""

    @property
    def name(self) -> str:
        return self.snapshot["Channel"]

    @property
    def uniqueid(self) -> str:
        return self.snapshot["Uniqueid"]

    @property
    def linkedid(self) -> str:
        return self.snapshot["Linkedid"]

    def snapshot_headers(self) -> Headers:
        return [(key, self.snapshot.get(key, "")) for key in SNAPSHOT_KEYS]

    def duration(self, now: float) -> int:
        return max(0, int(now - self.created))


@dataclass
class ChannelTable:
    """Live channels by Uniqueid, waiting queue callers, and the call counters CoreStatus reports."""

    channels: dict[str, LiveChannel] = field(default_factory=dict)
    queue_callers: dict[str, dict[str, float]] = field(default_factory=dict)
    processed_calls: int = 0

    def feed(self, fields: Mapping[str, str]) -> None:
        """Apply one emitted event: Newchannel adds, Hangup removes, snapshots update the rest."""
        name, uniqueid = fields.get("Event", ""), fields.get("Uniqueid", "")
        if name == "Newchannel":
            self._add(fields)
            return
        channel = self.channels.get(uniqueid)
        if name.startswith("QueueCaller"):
            self._queue_caller(name, fields)
        if channel is None:
            return
        if name == "Hangup":
            del self.channels[uniqueid]
            return
        if "ChannelState" in fields:
            channel.snapshot.update((k, fields[k]) for k in SNAPSHOT_KEYS if k in fields)
        if name == "Newexten":
            channel.application, channel.app_data = fields.get("Application", ""), fields.get("AppData", "")
        elif name == "BridgeEnter":
            channel.bridge = fields.get("BridgeUniqueid", "")
        elif name == "BridgeLeave":
            channel.bridge = ""

    def clear(self) -> None:
        """Forget everything, as a PBX restart does (no Hangup events)."""
        self.channels.clear()
        self.queue_callers.clear()
        self.processed_calls = 0

    def find(self, channel_name: str) -> LiveChannel | None:
        return next((c for c in self.channels.values() if c.name == channel_name), None)

    def linked(self, linkedid: str) -> list[LiveChannel]:
        return [c for c in self.channels.values() if c.linkedid == linkedid]

    def current_calls(self) -> int:
        return len({c.linkedid for c in self.channels.values()})

    def endpoint_in_use(self, endpoint: str) -> bool:
        """Whether a channel of `PJSIP/201` (any `PJSIP/201-…`) is up: the queue member's status."""
        return any(c.name.startswith(endpoint + "-") for c in self.channels.values())

    def _add(self, fields: Mapping[str, str]) -> None:
        snapshot = {k: fields.get(k, "") for k in SNAPSHOT_KEYS}
        self.channels[snapshot["Uniqueid"]] = LiveChannel(snapshot, time.time())
        if snapshot["Uniqueid"] == snapshot["Linkedid"]:
            self.processed_calls += 1

    def _queue_caller(self, name: str, fields: Mapping[str, str]) -> None:
        waiting = self.queue_callers.setdefault(fields.get("Queue", ""), {})
        if name == "QueueCallerJoin":
            waiting[fields.get("Uniqueid", "")] = time.time()
        else:  # QueueCallerLeave / QueueCallerAbandon
            waiting.pop(fields.get("Uniqueid", ""), None)


def hangup_events(channels: list[LiveChannel], target: LiveChannel, cause: int) -> list[Headers]:
    """What Asterisk emits when an AMI Hangup kills `target`: it and the channels linked to it go."""
    events: list[Headers] = []
    bridges = {c.bridge for c in channels if c.bridge}
    for channel in [target, *(c for c in channels if c is not target)]:
        this_cause = cause if channel is target else 16
        snapshot = channel.snapshot_headers()
        events.append(
            [("Event", "SoftHangupRequest"), ("Privilege", "call,all"), *snapshot, _cause(this_cause)]
        )
        if channel.bridge:
            events.append(
                [("Event", "BridgeLeave"), ("Privilege", "call,all"), *_bridge(channel.bridge), *snapshot]
            )
        events.append(
            [
                ("Event", "Hangup"),
                ("Privilege", "call,all"),
                *snapshot,
                _cause(this_cause),
                ("Cause-txt", CAUSE_TEXT.get(this_cause, "Unknown")),
            ]
        )
    events.extend(
        [("Event", "BridgeDestroy"), ("Privilege", "call,all"), *_bridge(b)] for b in sorted(bridges)
    )
    return events


def _cause(cause: int) -> tuple[str, str]:
    return ("Cause", str(cause))


def _bridge(bridge_id: str) -> Headers:
    return [
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", "0"),
        ("BridgeVideoSourceMode", "none"),
    ]
