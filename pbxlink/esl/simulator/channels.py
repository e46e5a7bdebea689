"""The simulated switch's live channels, kept from the events it emits (replays and generated calls alike).

State is server-wide, as FreeSWITCH's core database is: CHANNEL_CREATE adds a row, CHANNEL_DESTROY
removes it, the channel events in between update it the way switch_core_sqldb.c's event handler
does, and CHANNEL_BRIDGE/UNBRIDGE keep the calls table. `show channels` and `show calls` answer
from here with FreeSWITCH's columns; each channel also keeps its latest channel data and
variables, so the switch can hang it up (uuid_kill, hupall, a restart) with realistic events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from pbxlink.esl.simulator.event import EslEvent, Headers, Value

#: The channels table of FreeSWITCH 1.10, in its column order.
CHANNEL_COLUMNS = (
    *("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num"),
    *("ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec"),
    *("read_rate", "read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure"),
    *("hostname", "presence_id", "presence_data", "accountcode", "callstate", "callee_name"),
    *("callee_num", "callee_direction", "call_uuid", "sent_callee_name", "sent_callee_num"),
    *("initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest", "initial_dialplan"),
    "initial_context",
)
#: The basic_calls view `show calls` reads: each a-leg with the leg it is bridged to.
_CALL_SIDE = (
    *("uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num"),
    *("ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate", "callee_name"),
    "callee_num",
    "callee_direction",
)
_CALL_TAIL = ("sent_callee_name", "sent_callee_num")
CALL_COLUMNS = (
    *_CALL_SIDE,
    "call_uuid",
    "hostname",
    *_CALL_TAIL,
    *(f"b_{c}" for c in (*_CALL_SIDE, *_CALL_TAIL)),
    "call_created_epoch",
)
#: The channel data switch_channel_event_set_data puts on every channel event.
_CHANNEL_DATA_PREFIXES = ("Channel-", "Caller-", "Other-Leg-", "channel-")
_CHANNEL_DATA = frozenset(
    {"Unique-ID", "Call-Direction", "Presence-Call-Direction", "Answer-State", "Hangup-Cause", "Other-Type"}
)
_CODECS = (
    ("read_codec", "Channel-Read-Codec-Name"),
    ("read_rate", "Channel-Read-Codec-Rate"),
    ("read_bit_rate", "Channel-Read-Codec-Bit-Rate"),
    ("write_codec", "Channel-Write-Codec-Name"),
    ("write_rate", "Channel-Write-Codec-Rate"),
    ("write_bit_rate", "Channel-Write-Codec-Bit-Rate"),
)
_PROFILE = (
    ("cid_name", "Caller-Caller-ID-Name"),
    ("cid_num", "Caller-Caller-ID-Number"),
    ("ip_addr", "Caller-Network-Addr"),
    ("dest", "Caller-Destination-Number"),
    ("dialplan", "Caller-Dialplan"),
    ("context", "Caller-Context"),
)


@dataclass
class LiveChannel:
    row: dict[str, str]
    data: Headers  # the latest channel data (Channel-State … Other-Leg-*), variables apart
    variables: dict[str, Value] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return self.row["uuid"]

    def variable(self, name: str) -> str | None:
        value = self.variables.get("variable_" + name)
        return value if value is None or isinstance(value, str) else "ARRAY::" + "|:".join(value)


@dataclass
class ChannelTable:
    hostname: str = "vm"
    channels: dict[str, LiveChannel] = field(default_factory=dict)
    calls: dict[str, tuple[str, str]] = field(default_factory=dict)  # caller uuid -> (callee, epoch)
    created: int = 0  # sessions since startup
    peak: int = 0

    def feed(self, event: EslEvent) -> None:
        """Apply one emitted event."""
        name, uuid = event.name, event.unique_id
        if name == "CHANNEL_CREATE" and uuid:
            self._create(uuid, event)
            return
        channel = self.channels.get(uuid or "")
        if channel is None:
            return
        if name == "CHANNEL_DESTROY":
            del self.channels[channel.uuid]
            self.calls = {a: c for a, c in self.calls.items() if channel.uuid not in (a, c[0])}
            return
        _remember(channel, event)
        row = channel.row
        if name == "CHANNEL_STATE" and event.get("Channel-State") not in (
            *("CS_NEW", "CS_HANGUP", "CS_REPORTING", "CS_DESTROY"),
        ):
            row["state"] = event.get("Channel-State") or ""
            if row["state"] == "CS_ROUTING":
                _copy(row, event, _PROFILE)
        elif name == "CHANNEL_CALLSTATE" and event.get("Channel-Call-State") not in ("DOWN", "HANGUP"):
            row["callstate"] = event.get("Channel-Call-State") or ""
        elif name == "CHANNEL_EXECUTE":
            row["application"] = event.get("Application") or ""
            row["application_data"] = event.get("Application-Data") or ""
        elif name in ("CALL_UPDATE", "CHANNEL_ORIGINATE"):
            _copy(
                row,
                event,
                (("callee_name", "Caller-Callee-ID-Name"), ("callee_num", "Caller-Callee-ID-Number")),
            )
            _copy(
                row,
                event,
                (("sent_callee_name", "Sent-Callee-ID-Name"), ("sent_callee_num", "Sent-Callee-ID-Number")),
            )
            _copy(row, event, (("callee_direction", "Direction"), *_PROFILE[:2]))
        elif name == "CHANNEL_BRIDGE":
            self._bridge(event)
        elif name == "CHANNEL_UNBRIDGE":
            self._unbridge(event)
        _copy(row, event, _CODECS)

    def clear(self) -> None:
        """Forget everything, as a restart does."""
        self.channels.clear()
        self.calls.clear()
        self.created = self.peak = 0

    def find(self, uuid: str) -> LiveChannel | None:
        return self.channels.get(uuid)

    def partners(self, uuid: str) -> list[str]:
        """The channels bridged to `uuid` (either side of a calls row)."""
        return [b if a == uuid else a for a, (b, _) in self.calls.items() if uuid in (a, b)]

    def show_channels(self, as_json: bool) -> str:
        rows = sorted(self.channels.values(), key=lambda c: int(c.row["created_epoch"] or 0))
        return _table([[c.row[k] for k in CHANNEL_COLUMNS] for c in rows], CHANNEL_COLUMNS, as_json)

    def show_calls(self, as_json: bool) -> str:
        callees = {b for b, _ in self.calls.values()}
        rows = []
        for channel in sorted(self.channels.values(), key=lambda c: int(c.row["created_epoch"] or 0)):
            if channel.uuid in callees:
                continue
            callee, epoch = self.calls.get(channel.uuid, ("", ""))
            other = self.channels.get(callee)
            row = channel.row
            b = [other.row[k] if other else "" for k in (*_CALL_SIDE, *_CALL_TAIL)]
            values = [row[k] for k in _CALL_SIDE] + [row["call_uuid"], row["hostname"]]
            rows.append(values + [row[k] for k in _CALL_TAIL] + b + [epoch])
        return _table(rows, CALL_COLUMNS, as_json)

    def _create(self, uuid: str, event: EslEvent) -> None:
        row = dict.fromkeys(CHANNEL_COLUMNS, "")
        stamp = event.get("Event-Date-Timestamp") or "0"
        row.update(
            uuid=uuid,
            direction=event.get("Call-Direction") or "",
            created=event.get("Event-Date-Local") or "",
            created_epoch=str(int(stamp) // 1_000_000),
            name=event.get("Channel-Name") or "",
            state=event.get("Channel-State") or "",
            callstate=event.get("Channel-Call-State") or "",
            hostname=self.hostname,
            call_uuid=event.get("Channel-Call-UUID") or uuid,
            presence_id=event.get("Channel-Presence-ID") or "",
            accountcode=event.get("variable_accountcode") or "",
        )
        _copy(row, event, _PROFILE)
        _copy(
            row, event, (("callee_name", "Caller-Callee-ID-Name"), ("callee_num", "Caller-Callee-ID-Number"))
        )
        for column, _ in _PROFILE:
            row["initial_" + column] = row[column]
        channel = LiveChannel(row, [])
        _remember(channel, event)
        self.channels[uuid] = channel
        self.created += 1
        self.peak = max(self.peak, len(self.channels))

    def _bridge(self, event: EslEvent) -> None:
        a = event.get("Bridge-A-Unique-ID") or event.get("Caller-Unique-ID") or ""
        b = event.get("Bridge-B-Unique-ID") or event.get("Other-Leg-Unique-ID") or ""
        call_uuid = event.get("Channel-Call-UUID") or a
        for uuid in (a, b):
            if uuid in self.channels:
                self.channels[uuid].row["call_uuid"] = call_uuid
        stamp = event.get("Event-Date-Timestamp") or "0"
        self.calls[a] = (b, str(int(stamp) // 1_000_000))

    def _unbridge(self, event: EslEvent) -> None:
        call_uuid = event.get("Channel-Call-UUID")
        for channel in self.channels.values():
            if channel.row["call_uuid"] == call_uuid:
                channel.row["call_uuid"] = channel.uuid
        caller = event.get("Caller-Unique-ID") or ""
        self.calls = {a: c for a, c in self.calls.items() if caller not in (a, c[0])}


def _copy(row: dict[str, str], event: EslEvent, pairs: Iterable[tuple[str, str]]) -> None:
    for column, header in pairs:
        value = event.get(header)
        if value is not None:
            row[column] = value


def _remember(channel: LiveChannel, event: EslEvent) -> None:
    """Keep the event's channel data (when it carries it) and its variables."""
    data: Headers = []
    started = False
    for key, value in event.headers:
        if key == "Channel-State":
            started = True
        if key.startswith("variable_"):
            channel.variables[key] = value
        elif started and (key in _CHANNEL_DATA or key.startswith(_CHANNEL_DATA_PREFIXES)):
            data.append((key, value))
        elif started:
            break
    if data:
        channel.data = [(k, v) for k, v in data if k != "Hangup-Cause"]


def _table(rows: list[list[str]], columns: tuple[str, ...], as_json: bool) -> str:
    """mod_commands' show output: `{"row_count":N,"rows":[…]}` as json, else comma-separated lines."""
    if as_json:
        if not rows:
            return '{"row_count":0}'
        objects = [dict(zip(columns, row, strict=True)) for row in rows]
        return json.dumps(
            {"row_count": len(rows), "rows": objects}, ensure_ascii=False, separators=(",", ":")
        )
    lines = [",".join(columns), *(",".join(row) for row in rows)]
    return "\n".join(lines) + f"\n\n{len(rows)} total.\n"
