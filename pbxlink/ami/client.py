"""The AMI connection: panoramisk's actions, plus what panoramisk lacks to stay right for months.

panoramisk 1.4 never checks the Pong, reconnects at a fixed delay, re-sends unanswered
actions after a reconnect (an Originate could run twice) and leaves list actions cut by a
disconnect to time out. Here: a ping watchdog (any bytes count as life; silence for one
more interval after a Ping aborts the link), reconnect with exponential backoff and full
jitter, a timeout on every action, pending actions failed at once on a drop, and a resync
after every login: events are held while `CoreShowChannels` runs, the tracker adopts what
is up and closes what ended unseen, then the held events are fed in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from panoramisk.actions import Action
from panoramisk.manager import Manager

from pbxlink.ami.protocol import AmiProtocol, Frame, Interest
from pbxlink.config import PbxConfig
from pbxlink.domain.calls import CallEvent
from pbxlink.domain.ports import LinkStatus, Tracker

log = logging.getLogger(__name__)


class AmiError(Exception):
    """The PBX answered an action with an error (its message is the text)."""


class AuthError(AmiError):
    pass


class AmiClient:
    """One PBX: `await run()` keeps the link up until cancelled; `await action(...)` steers it."""

    def __init__(
        self,
        pbx: PbxConfig,
        tracker: Tracker,
        publish: Callable[[CallEvent], None],
        *,
        action_timeout: float = 10.0,
        reconnect_base_delay: float = 0.5,
    ) -> None:
        self.pbx = pbx
        self.where = f"AMI {pbx.name} {pbx.host}:{pbx.port}"
        self._tracker = tracker
        self._publish = publish
        self._interest = interest_of(tracker)
        self._feed = EventFeed(tracker, publish, self.where)
        self.action_timeout = action_timeout
        self.reconnect_base_delay = reconnect_base_delay
        self._manager = Manager(host=pbx.host, port=pbx.port, protocol_factory=AmiProtocol)
        self._proto: AmiProtocol | None = None
        self._live = False
        self._held: list[tuple[Frame, datetime]] = []
        self._since: datetime | None = None
        self._last_event_at: datetime | None = None
        self._logins = 0
        self._last_error: str | None = None
        self._live_was_reached = False
        self._hung = False

    # -- public -------------------------------------------------------------------------

    def status(self) -> LinkStatus:
        return LinkStatus(
            connected=self._live,
            since=self._since,
            last_event_at=self._last_event_at,
            reconnects=max(0, self._logins - 1),
            last_error=self._last_error,
        )

    async def run(self) -> None:
        """Connect, log in, resync, watch; on any loss wait a jittered backoff and start again."""
        attempt = 0
        while True:
            try:
                await self._session()
            except AuthError as exc:
                error = f"authentication failed ({exc}) — check [[pbx]] username/secret and manager.conf"
            except ConnectionRefusedError:
                error = (
                    "connection refused — is Asterisk running, is AMI enabled "
                    "(manager.conf [general] enabled = yes, port, bindaddr)?"
                )
            except TimeoutError as exc:
                error = str(exc) or "no answer in time — check host, port and firewall"
            except (OSError, AmiError) as exc:
                error = str(exc) or type(exc).__name__
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not end the link for good
                log.exception("%s: unexpected failure; reconnecting", self.where)
                error = repr(exc)
            if self._live_was_reached:
                attempt = 0
            delay = random.uniform(
                0, min(self.pbx.reconnect_max_delay, self.reconnect_base_delay * 2**attempt)
            )
            attempt += 1
            self._report(error, delay)
            await asyncio.sleep(delay)

    async def action(
        self,
        action: Mapping[str, str | list[str]],
        *,
        timeout: float | None = None,
        as_list: bool | None = None,
    ) -> Any:
        """Send one action; the panoramisk answer (a Message, or a list for list actions).

        Raises ConnectionError when not connected or when the link drops before the answer
        (never re-sent), TimeoutError after `timeout` (default `action_timeout`).
        """
        proto = self._proto
        if proto is None or proto.closed:
            raise ConnectionError(f"{self.where}: not connected")
        act = Action(dict(action), as_list=as_list)
        future = self._manager.send_action(act, as_list=as_list)
        try:
            return await asyncio.wait_for(future, timeout or self.action_timeout)
        except TimeoutError:
            proto.responses.pop(act.id, None)
            proto.responses.pop(act.action_id, None)
            raise TimeoutError(f"{self.where}: no answer to {act['Action']} in time") from None

    # -- one connection ---------------------------------------------------------------------

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        self._live_was_reached = self._hung = False
        self._held = []
        _, proto = await asyncio.wait_for(
            loop.create_connection(AmiProtocol, self.pbx.host, self.pbx.port), self.pbx.connect_timeout
        )
        lost: asyncio.Future[Exception | None] = loop.create_future()
        proto.name = self.where
        proto.parser.name = self.where
        proto.parser.interest = self._interest
        proto.factory = self._manager
        proto.on_events = self._on_events

        def on_lost(exc: Exception | None) -> None:
            if not lost.done():
                lost.set_result(exc)

        proto.on_lost = on_lost
        self._manager.protocol = self._proto = proto
        watchdog: asyncio.Task[None] | None = None
        try:
            await self._login()
            await self._resync()
            watchdog = loop.create_task(self._watchdog(proto))
            exc = await lost
            if self._hung:
                raise ConnectionError("link hung or half-open: no answer to a Ping within one interval")
            raise ConnectionError(f"link lost ({exc})" if exc else "link closed by the PBX")
        finally:
            if watchdog is not None:
                watchdog.cancel()
            proto.close()
            self._proto = None
            if self._live:
                self._live = False
                self._since = datetime.now(UTC)
                self._tracker.link_lost(self._since)

    async def _login(self) -> None:
        resp = await self.action(
            {"Action": "Login", "Username": self.pbx.username, "Secret": self.pbx.secret, "Events": "on"}
        )
        if not resp.success:
            raise AuthError(f"{resp.get('Message') or 'refused'} for user {self.pbx.username}")
        self._logins += 1

    async def _resync(self) -> None:
        resp = await self.action({"Action": "CoreShowChannels"})
        if not isinstance(resp, list):
            raise AmiError(
                f"CoreShowChannels refused ({resp.get('Message')}): the AMI user needs write = system or "
                "reporting to resync after a reconnect"
            )
        channels = [m.frame for m in resp if m.get("Event") == "CoreShowChannel"]
        now = datetime.now(UTC)
        started = _booted_at(self._held) or await self._core_startup()
        for ev in self._tracker.resync(channels, now, started):
            self._publish(ev)
        held, self._held = self._held, []
        self._live = self._live_was_reached = True
        self._since = now
        if self._last_error is not None:
            log.info("%s: connected again (%d live channels adopted)", self.where, len(channels))
            self._last_error = None
        else:
            log.info("%s: connected (%d live channels adopted)", self.where, len(channels))
        for frame, at in held:
            self._on_events([frame], at)

    async def _core_startup(self) -> datetime | None:
        """CoreStatus's startup time, which Asterisk gives in its local time (assumed to be ours)."""
        try:
            resp = await self.action({"Action": "CoreStatus"})
            stamp = f"{resp.get('CoreStartupDate')} {resp.get('CoreStartupTime')}"
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").astimezone(UTC)
        except (AmiError, TimeoutError, ValueError, AttributeError):
            return None

    async def _watchdog(self, proto: AmiProtocol) -> None:
        """Ping every interval; if nothing at all came back by the next tick, the link is dead."""
        interval = self.pbx.ping_interval
        n = 0
        while not proto.closed:
            n += 1
            sent = time.monotonic()
            proto.transport.write(f"Action: Ping\r\nActionID: pbxlink-ping-{n}\r\n\r\n".encode())
            await asyncio.sleep(interval)
            if proto.last_rx < sent:
                self._hung = True
                proto.transport.abort()
                return

    # -- events -------------------------------------------------------------------------------

    def _on_events(self, events: list[Frame], received: datetime) -> None:
        self._last_event_at = received
        if self._live:
            self._feed(events, received)
        else:
            self._held.extend((ev, received) for ev in events)

    def _report(self, error: str, delay: float) -> None:
        """Log an error once per distinct cause, not once per retry."""
        if error != self._last_error:
            log.error("%s: %s; retrying with backoff (next in %.1fs)", self.where, error, delay)
            self._last_error = error
        else:
            log.debug("%s: still failing (%s); next try in %.1fs", self.where, error, delay)


class EventFeed:
    """Events to the tracker, each at its own `Timestamp` (else the receive time); calls out to publish.

    The hot path of the link (also what benchmarks/ami_ingest.py measures); one event the
    tracker chokes on is logged and skipped, never the end of tracking.
    """

    def __init__(self, tracker: Tracker, publish: Callable[[CallEvent], None], where: str) -> None:
        self.tracker, self.publish, self.where = tracker, publish, where

    def __call__(self, events: list[Frame], received: datetime) -> None:
        feed, publish = self.tracker.feed, self.publish
        for ev in events:
            stamp = ev.get("Timestamp")
            at = _stamped(stamp, received) if type(stamp) is str else received
            try:
                for call_event in feed(ev, at):
                    publish(call_event)
            except Exception:
                log.exception("%s: could not process %s event; skipped", self.where, ev.get("Event"))


def interest_of(tracker: Tracker) -> Interest | None:
    """The events the tracker declares it consumes (`interest`), plus FullyBooted for the resync."""
    interest: Interest | None = getattr(tracker, "interest", None)
    return None if interest is None else {**interest, "FullyBooted": ()}


def _stamped(stamp: str, default: datetime) -> datetime:
    """The event's own `Timestamp` (epoch seconds, timestampevents = yes) as aware UTC."""
    try:
        return datetime.fromtimestamp(float(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return default


def _booted_at(held: list[tuple[Frame, datetime]]) -> datetime | None:
    """The PBX start from the login's FullyBooted `Uptime` (seconds), which needs no time zone."""
    for frame, at in held:
        if frame.get("Event") == "FullyBooted":
            uptime = frame.get("Uptime")
            if isinstance(uptime, str) and uptime.isdigit():
                return at - timedelta(seconds=int(uptime))
    return None
