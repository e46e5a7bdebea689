"""The call record and the normalized call events: the one vocabulary after the adapters.

Adapters (AMI, ESL) turn their PBX's event stream into these; everything else
(storage, web, CRM sync, callbacks, campaigns) consumes only these.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

Direction = Literal["inbound", "outbound", "internal"]
Disposition = Literal["answered", "missed"]
MissReason = Literal["no_answer", "busy", "abandoned", "queue_timeout", "not_offered", "failed"]
HangupBy = Literal["customer", "agent", "system"]
TransferKind = Literal["blind", "attended", "redirect"]
#: what answering-machine detection (Asterisk AMD(), FreeSWITCH mod_avmd) made of the answering party
Amd = Literal["human", "machine", "notsure"]

#: The fields of a call record, in the order the API and the export emit them.
RECORD_FIELDS: tuple[str, ...] = (
    "pbx",
    "call_id",
    "direction",
    "caller",
    "caller_name",
    "callee",
    "agent",
    "agents",
    "queue",
    "started_at",
    "answered_at",
    "ended_at",
    "wait_seconds",
    "talk_seconds",
    "disposition",
    "miss_reason",
    "hangup_by",
    "transfers",
    "recording",
    "end_seen",
    "origin",
    "amd",
)


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 in UTC with millisecond precision and a `Z`, the one time format we emit."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def seconds(delta: timedelta) -> float:
    """A duration as the record carries it: never negative, millisecond precision."""
    return round(max(0.0, delta.total_seconds()), 3)


@dataclass(frozen=True)
class Transfer:
    from_: str | None
    to: str | None
    kind: TransferKind

    def to_dict(self) -> dict[str, str | None]:
        return {"from": self.from_, "to": self.to, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transfer:
        return cls(from_=d.get("from"), to=d.get("to"), kind=d["kind"])


@dataclass
class CallRecord:
    """One call as the business sees it: one per PBX call id (Asterisk Linkedid, FreeSWITCH call UUID).

    While the call is up the record is partial (no `ended_at`, no disposition); the
    final record is the one carried by `CallEnded`.
    """

    pbx: str
    call_id: str
    direction: Direction
    started_at: datetime
    caller: str | None = None
    caller_name: str | None = None
    callee: str | None = None
    agent: str | None = None
    agents: list[str] = field(default_factory=list)
    queue: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    disposition: Disposition | None = None
    miss_reason: MissReason | None = None
    hangup_by: HangupBy | None = None
    transfers: list[Transfer] = field(default_factory=list)
    recording: str | None = None
    end_seen: bool = True
    #: until an agent answered (or the call ended unanswered), from when the call reached a queue or
    #: an agent (an IVR or announcement before that is not waiting for an agent); set by the tracker
    wait_seconds: float | None = None
    #: the sum of the talk segments (a transferee's ring time is not talk; a hold is)
    talk_seconds: float | None = None
    #: the tag pbxlink set on the originate that made this call (OriginateHandle.tag); None for
    #: calls pbxlink did not place. Callbacks and campaigns learn their outcome by it.
    origin: str | None = None
    #: what answering-machine detection said, when the dialplan ran it (a campaign's broadcast)
    amd: Amd | None = None

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    def copy(self) -> CallRecord:
        return dataclasses.replace(self, agents=list(self.agents), transfers=list(self.transfers))

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of a call: every field of RECORD_FIELDS, JSON-ready."""
        return {
            "pbx": self.pbx,
            "call_id": self.call_id,
            "direction": self.direction,
            "caller": self.caller,
            "caller_name": self.caller_name,
            "callee": self.callee,
            "agent": self.agent,
            "agents": list(self.agents),
            "queue": self.queue,
            "started_at": iso(self.started_at),
            "answered_at": iso(self.answered_at),
            "ended_at": iso(self.ended_at),
            "wait_seconds": self.wait_seconds,
            "talk_seconds": self.talk_seconds,
            "disposition": self.disposition,
            "miss_reason": self.miss_reason,
            "hangup_by": self.hangup_by,
            "transfers": [t.to_dict() for t in self.transfers],
            "recording": self.recording,
            "end_seen": self.end_seen,
            "origin": self.origin,
            "amd": self.amd,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallRecord:
        started = parse_iso(d["started_at"])
        assert started is not None
        return cls(
            pbx=d["pbx"],
            call_id=d["call_id"],
            direction=d["direction"],
            started_at=started,
            caller=d.get("caller"),
            caller_name=d.get("caller_name"),
            callee=d.get("callee"),
            agent=d.get("agent"),
            agents=list(d.get("agents") or []),
            queue=d.get("queue"),
            answered_at=parse_iso(d.get("answered_at")),
            ended_at=parse_iso(d.get("ended_at")),
            disposition=d.get("disposition"),
            miss_reason=d.get("miss_reason"),
            hangup_by=d.get("hangup_by"),
            transfers=[Transfer.from_dict(t) for t in d.get("transfers") or []],
            recording=d.get("recording"),
            end_seen=bool(d.get("end_seen", True)),
            wait_seconds=d.get("wait_seconds"),
            talk_seconds=d.get("talk_seconds"),
            origin=d.get("origin"),
            amd=d.get("amd"),
        )


@dataclass(frozen=True, kw_only=True)
class CallEvent:
    """Something that happened to a call; `call` is a snapshot of the record right after it."""

    kind: ClassVar[str] = "event"
    at: datetime
    call: CallRecord

    def to_dict(self) -> dict[str, Any]:
        extra = {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in ("at", "call")
        }
        return {"kind": self.kind, "at": iso(self.at), "call": self.call.to_dict(), **extra}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> CallEvent:
        cls = EVENT_TYPES[d["kind"]]
        at = parse_iso(d["at"])
        assert at is not None
        kwargs: dict[str, Any] = {"at": at, "call": CallRecord.from_dict(d["call"])}
        for f in dataclasses.fields(cls):
            if f.name in ("at", "call"):
                continue
            value = d.get(f.name)
            kwargs[f.name] = Transfer.from_dict(value) if f.name == "transfer" and value else value
        return cls(**kwargs)


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Transfer) else value


@dataclass(frozen=True, kw_only=True)
class CallStarted(CallEvent):
    kind: ClassVar[str] = "started"


@dataclass(frozen=True, kw_only=True)
class CallUpdated(CallEvent):
    """The caller's number or name changed (dialplan rewrite, AGI lookup) before an agent answered."""

    kind: ClassVar[str] = "updated"


@dataclass(frozen=True, kw_only=True)
class CallRinging(CallEvent):
    """One agent's phone rings for this call: the moment for a screen-pop."""

    kind: ClassVar[str] = "ringing"
    agent: str


@dataclass(frozen=True, kw_only=True)
class CallRingEnded(CallEvent):
    """An agent stopped ringing without answering (`outcome`: no_answer, busy, cancelled)."""

    kind: ClassVar[str] = "ring_ended"
    agent: str
    outcome: str


@dataclass(frozen=True, kw_only=True)
class CallAnswered(CallEvent):
    """An agent (or, outbound, the remote party) started talking; comes again after a transfer."""

    kind: ClassVar[str] = "answered"
    agent: str | None


@dataclass(frozen=True, kw_only=True)
class CallTransferred(CallEvent):
    kind: ClassVar[str] = "transferred"
    transfer: Transfer


@dataclass(frozen=True, kw_only=True)
class CallEnded(CallEvent):
    """The final record: exactly one per call."""

    kind: ClassVar[str] = "ended"


@dataclass(frozen=True, kw_only=True)
class RecordingReady(CallEvent):
    """The call ended and its recording file is complete."""

    kind: ClassVar[str] = "recording"
    path: str


EVENT_TYPES: dict[str, type[CallEvent]] = {
    cls.kind: cls
    for cls in (
        CallStarted,
        CallUpdated,
        CallRinging,
        CallRingEnded,
        CallAnswered,
        CallTransferred,
        CallEnded,
        RecordingReady,
    )
}
