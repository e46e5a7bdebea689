"""What the ESL link subscribes to, and how each event reaches the tracker.

Shared by the client, `pbxlink check` (which subscribes to the same list) and the ingest
benchmark (which measures EventFeed, the hot path).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from pbxlink.domain.calls import CallEvent
from pbxlink.domain.ports import Tracker
from pbxlink.esl.frames import Event

log = logging.getLogger(__name__)

#: what to subscribe to when the tracker does not say (`event_names`)
DEFAULT_EVENTS = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_DESTROY",
    "CHANNEL_ORIGINATE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "RECORD_START",
    "RECORD_STOP",
    "BACKGROUND_JOB",
    "HEARTBEAT",
    "SHUTDOWN",
    "CUSTOM",
    "callcenter::info",
)
_EVENT_NAME = re.compile(r"[A-Z][A-Z0-9_]*|[a-z][a-z0-9_]*::[a-z0-9_:]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventFeed:
    """Events to the tracker, each at its own `Event-Date-Timestamp` (else the receive time); call events
    out to publish.

    The hot path of the link (also what benchmarks/esl_ingest.py measures); one event the
    tracker chokes on is logged and skipped, never the end of tracking.
    """

    def __init__(self, tracker: Tracker, publish: Callable[[CallEvent], None], where: str) -> None:
        self.tracker, self.publish, self.where = tracker, publish, where

    def __call__(self, event: Event, received: datetime | None = None) -> None:
        try:
            at = _EPOCH + timedelta(microseconds=int(event["Event-Date-Timestamp"]))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, OverflowError):
            at = received or datetime.now(UTC)
        try:
            for call_event in self.tracker.feed(event, at):
                self.publish(call_event)
        except Exception:
            log.exception("%s: could not process a %s event; skipped", self.where, event.get("Event-Name"))


def subscription(names: Iterable[str] | None) -> str:
    """The `event` command's list: plain names, then `CUSTOM` and the subclasses, with what pbxlink needs.

    BACKGROUND_JOB carries `bgapi` results; callcenter::info the queue events.
    """
    plain: list[str] = []
    custom: list[str] = []
    for token in [*" ".join(names or DEFAULT_EVENTS).split(), "BACKGROUND_JOB", "callcenter::info"]:
        if token == "CUSTOM":
            continue
        if _EVENT_NAME.fullmatch(token) is None:
            raise ValueError(f"event_names: {token!r} is not a FreeSWITCH event name")
        group = custom if "::" in token else plain
        if token not in group:
            group.append(token)
    return " ".join([*plain, "CUSTOM", *custom])
