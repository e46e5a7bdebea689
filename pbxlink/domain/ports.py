"""The ports: what services need from the outside world, as small Protocols.

Adapters implement them; services accept them; tests hand in fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pbxlink.domain.calls import CallEvent

Handler = Callable[[CallEvent], None]


class Bus(Protocol):
    """Fans normalized call events out to the services."""

    def publish(self, event: CallEvent) -> None: ...

    def subscribe(self, name: str, handler: Handler) -> None:
        """Deliver every later event to `handler`, in order, away from the publisher's thread."""
        ...

    def unsubscribe(self, handler: Handler) -> None:
        """Stop delivering to `handler` (a browser's live stream that went away)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OriginateRequest:
    """Ring `endpoint` (an agent extension or a number) and, when it answers, send it to `context`/`exten`."""

    endpoint: str
    exten: str
    context: str
    caller_id: str | None = None
    timeout_s: int = 30
    variables: Mapping[str, str] = field(default_factory=dict)
    #: the tag to set (a UUID); None makes a new one. A campaign picks it first, so its attempt is
    #: on record before the PBX is asked and a restart can never dial the same contact again.
    tag: str | None = None

    def the_tag(self) -> str:
        """The tag to carry: `tag` if a canonical UUID (else ValueError), or a new one."""
        if self.tag is None:
            return str(uuid.uuid4())
        try:
            ok = str(uuid.UUID(self.tag)) == self.tag
        except (ValueError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise ValueError(f"tag: {self.tag!r} is not a lowercase UUID")
        return self.tag


@dataclass(frozen=True)
class OriginateHandle:
    """What to correlate the resulting call with: `tag` is set as a channel variable on the originate."""

    pbx: str
    tag: str


class PbxControl(Protocol):
    """Steering a PBX; implemented by the AMI and the ESL adapters, validated before the wire."""

    name: str

    def originate(self, req: OriginateRequest) -> OriginateHandle: ...

    def hangup(self, call_id: str) -> None: ...


@dataclass(frozen=True)
class CheckResult:
    """One line of `pbxlink check`: what was checked, whether it is fine, and what to do if not."""

    ok: bool
    what: str
    detail: str = ""
    #: fine as far as can be told, but not verified: shown, yet no reason for a non-zero exit
    warning: bool = False


@dataclass(frozen=True)
class CallerInfo:
    """What is known about a caller before the call rings anyone.

    `name` becomes the caller ID name the phones show; `hint` is a routing hint for the
    dialplan, e.g. the extension of the agent who last talked with this caller, or of the
    contact's owner in the CRM. `contact_id` and `owner` go to the dialplan as variables
    (PBXLINK_CONTACT_ID, PBXLINK_OWNER) for owner routing.
    """

    name: str | None = None
    hint: str | None = None
    contact_id: str | None = None
    owner: str | None = None


class CallerLookup(Protocol):
    """Who is calling: asked at call start (FastAGI, FreeSWITCH outbound socket), so it must be quick.

    Implemented by the caller directory (CRMs, cached) over the call log. Called from a
    worker thread; None when nothing is known about `number`. The caller of `lookup`
    bounds the wait with its own budget.
    """

    def lookup(self, number: str) -> CallerInfo | None: ...


@dataclass(frozen=True)
class LinkStatus:
    """For the panel: is the link up, since when, how lively, how often it came back."""

    connected: bool
    since: datetime | None
    last_event_at: datetime | None
    reconnects: int
    last_error: str | None


class Tracker(Protocol):
    """What a PBX client needs of its call tracker (AmiTracker, EslTracker).

    A tracker may also declare what it consumes (AMI `interest`, ESL `event_names`): every
    other event is then dropped unparsed or never subscribed to, the main saving on a busy PBX.
    """

    def feed(self, event: Mapping[str, str | list[str]], at: datetime) -> list[CallEvent]: ...

    def link_lost(self, at: datetime) -> None: ...

    def resync(
        self, channels: Sequence[Mapping[str, str]], at: datetime, pbx_started_at: datetime | None
    ) -> list[CallEvent]: ...


class Cache(Protocol):
    """A shared key/value cache with expiry: Redis when configured, in-process otherwise."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl: float) -> None: ...

    def delete(self, *keys: str) -> None: ...

    def clear(self, prefix: str) -> int:
        """Drop every key under `prefix`; return how many were dropped."""
        ...
