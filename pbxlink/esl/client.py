"""The ESL link of one FreeSWITCH: greenswitch on a gevent hub of its own, in a thread of its own.

greenswitch runs on gevent, and pbxlink does not monkey-patch: the link lives in one thread
whose hub owns every ESL socket and greenlet (pbxlink.esl.hub); `api` and `bgapi` reach it
from other threads, and what the tracker derives is published from the ESL thread, as the
AMI adapter publishes from its own.

On top of pbxlink.esl.link (timeouts, failed pending commands, bgapi results): reconnect
with exponential backoff and full jitter; a probe every `ping_interval` (any bytes count
as life, silence for one more interval aborts the link, so a silent or half-open link is
noticed within two intervals); and a resync after every connect: events are held while
`show channels as json` and `status` run, the tracker adopts what is up and closes what
ended unseen, then the held events are fed in order. A FreeSWITCH restart closes the socket
without `+OK bye` after its SYSTEM_SHUTDOWN hangups: that is a drop like any other.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Literal, NoReturn

import gevent
import gevent.event
from greenswitch.esl import NotConnectedError

from pbxlink.config import PbxConfig
from pbxlink.domain.calls import CallEvent
from pbxlink.domain.ports import LinkStatus, Tracker
from pbxlink.esl.feed import EventFeed, subscription
from pbxlink.esl.frames import Event
from pbxlink.esl.hub import HubThread
from pbxlink.esl.link import AuthError, EslError, EslLink

log = logging.getLogger(__name__)

EventFormat = Literal["plain", "json"]

_JOB_UUID = re.compile(r"[A-Za-z0-9-]{1,64}")
_UPTIME = re.compile(
    r"UP (\d+) years?, (\d+) days?, (\d+) hours?, (\d+) minutes?, (\d+) seconds?, "
    r"(\d+) milliseconds?, (\d+) microseconds?"
)


class EslClient:
    """One FreeSWITCH: `start()` keeps the link up in its thread until `stop()`; `api`/`bgapi` steer it.

    `api` and `bgapi` are for other threads (the ESL thread itself would wait on itself).
    """

    def __init__(
        self,
        pbx: PbxConfig,
        tracker: Tracker,
        publish: Callable[[CallEvent], None],
        *,
        event_format: EventFormat = "plain",
        command_timeout: float = 10.0,
        job_timeout: float = 120.0,
        reconnect_base_delay: float = 0.5,
    ) -> None:
        if event_format not in ("plain", "json"):
            raise ValueError(f"event_format: {event_format!r} is neither 'plain' nor 'json'")
        self.pbx = pbx
        self.where = f"ESL {pbx.name} {pbx.host}:{pbx.port}"
        self._tracker = tracker
        self._publish = publish
        self._feed = EventFeed(tracker, publish, self.where)
        self.subscription = f"event {event_format} {subscription(getattr(tracker, 'event_names', None))}"
        self.command_timeout = command_timeout
        self.job_timeout = job_timeout
        self.reconnect_base_delay = reconnect_base_delay
        self._hub = HubThread(f"esl-{pbx.name}", self._run)
        self._link: EslLink | None = None  # the current connection, from its first byte
        self._ready: EslLink | None = None  # the same once authenticated: commands may go out
        self._live = False
        self._went_live = False  # the current or last session got as far as live
        self._held: list[tuple[Event, datetime]] = []
        self._since: datetime | None = None
        self._last_event = 0.0  # time.monotonic() of the last event
        self._connects = 0
        self._last_error: str | None = None

    # -- public, any thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._hub.start()

    def stop(self, timeout: float = 5) -> None:
        """Say `exit` to FreeSWITCH if connected, end the thread; the tracker hears the link is lost."""
        self._hub.stop(self._hang_up, timeout)

    def status(self) -> LinkStatus:
        idle = time.monotonic() - self._last_event
        return LinkStatus(
            connected=self._live,
            since=self._since,
            last_event_at=datetime.now(UTC) - timedelta(seconds=idle) if self._last_event else None,
            reconnects=max(0, self._connects - 1),
            last_error=self._last_error,
        )

    def api(self, command: str, *, timeout: float | None = None) -> str:
        """`api <command>` and its answer text. Raises ConnectionError, TimeoutError; `-ERR …` is text.

        Anything slow (originate) belongs in `bgapi`: FreeSWITCH answers nothing else on this
        connection while an api command runs, and a link silent for a `ping_interval` is dead.
        """
        _check_command(command)
        limit = timeout or self.command_timeout
        return self._hub.call(lambda: self._connected().api(command, limit), limit + 1)

    def bgapi(
        self, command: str, *, job_uuid: str | None = None, timeout: float | None = None
    ) -> Future[str]:
        """Start `bgapi <command>`; once FreeSWITCH accepted it, a future of the job's result text.

        `job_uuid` (default: a new uuid) names the job, so its BACKGROUND_JOB can be told
        apart. Raises ConnectionError, TimeoutError, EslError (refused) right away; the
        future fails with TimeoutError after `timeout` (default `job_timeout`) or
        ConnectionError if the link drops before the result.
        """
        _check_command(command)
        job = job_uuid or str(uuid.uuid4())
        if _JOB_UUID.fullmatch(job) is None:
            raise ValueError(f"job_uuid: {job!r} is not a uuid")
        limit = timeout or self.job_timeout
        return self._hub.call(lambda: self._connected().bgapi(command, job, limit), self.command_timeout + 1)

    def _connected(self) -> EslLink:
        link = self._ready
        if link is None or link.closed.is_set():
            raise ConnectionError(f"{self.where}: not connected ({self._last_error or 'connecting'})")
        return link

    # -- the ESL thread ---------------------------------------------------------------------------

    def _hang_up(self) -> None:
        link = self._link
        if link is None:
            return
        if link is self._ready and not link.closed.is_set():
            with contextlib.suppress(ConnectionError, TimeoutError):
                link.command("exit", timeout=1)
        link.abort("stopped by pbxlink")

    def _run(self, stopping: gevent.event.Event) -> None:
        """Connect, subscribe, resync, watch; on any loss wait a jittered backoff and start again."""
        attempt = 0
        while not stopping.is_set():
            try:
                self._session()
            except Exception as exc:
                error = self._cause(exc)
            if stopping.is_set():
                break
            attempt = 0 if self._went_live else attempt
            delay = random.uniform(
                0, min(self.pbx.reconnect_max_delay, self.reconnect_base_delay * 2**attempt)
            )
            attempt += 1
            self._report(error, delay)
            stopping.wait(delay)
        log.info("%s: stopped", self.where)

    def _cause(self, exc: Exception) -> str:
        """What went wrong with a session, and what to do about it, in one line."""
        if isinstance(exc, AuthError):
            return f"{exc} — check [[pbx]] secret against event_socket.conf.xml `password`"
        if isinstance(exc, ConnectionRefusedError):
            return (
                "connection refused — is FreeSWITCH running with mod_event_socket loaded, and do "
                "listen-ip/listen-port in event_socket.conf.xml match [[pbx]] host/port?"
            )
        if isinstance(exc, NotConnectedError) and "timed out" in str(exc):  # greenswitch's connect()
            return (
                f"no TCP connection within {self.pbx.connect_timeout:g}s — check [[pbx]] host/port, the "
                "firewall, and listen-ip in event_socket.conf.xml"
            )
        if isinstance(exc, NotConnectedError):  # closed before auth: rejected, or gone
            reason = self._link.reason if self._link is not None else None
            return (
                f"{reason or 'FreeSWITCH closed the connection before auth'} — allow pbxlink's address in "
                "the ACL that event_socket.conf.xml `apply-inbound-acl` names"
            )
        if isinstance(exc, TimeoutError | ConnectionError | OSError | EslError):
            return str(exc) or type(exc).__name__
        log.exception("%s: unexpected failure; reconnecting", self.where)  # a bug must not end the link
        return repr(exc)

    def _session(self) -> NoReturn:
        """One connection, until it ends, always by an exception that says why."""
        link = EslLink(
            self.pbx.host,
            self.pbx.port,
            self.pbx.secret,
            where=self.where,
            on_event=self._on_event,
            timeout=self.pbx.connect_timeout,
            command_timeout=self.command_timeout,
        )
        self._link, self._held, self._went_live = link, [], False
        watchdog: gevent.Greenlet | None = None
        try:
            timeout = self.pbx.connect_timeout
            late = TimeoutError(
                f"connected, but no auth/request within {timeout:g}s — is this FreeSWITCH's ESL port?"
            )
            with gevent.Timeout(timeout, late):
                link.connect()
            self._ready = link
            self._connects += 1
            reply = link.command(self.subscription).headers.get("Reply-Text", "")
            if not reply.startswith("+OK"):
                raise EslError(
                    f"FreeSWITCH refused the event subscription ({reply}) — the ESL user needs the events "
                    f"`{self.subscription.split(' ', 2)[2]}` (esl-allowed-events)"
                )
            self._resync(link)
            watchdog = gevent.spawn(self._watchdog, link)
            link.closed.wait()
            raise ConnectionError(f"link lost ({link.reason})")
        finally:
            if watchdog is not None:
                watchdog.kill()
            link.abort("session ended")
            self._ready = None
            if self._live:
                self._live = False
                self._since = datetime.now(UTC)
                self._tracker.link_lost(self._since)

    def _resync(self, link: EslLink) -> None:
        body = link.api("show channels as json")
        try:
            rows = json.loads(body).get("rows") or []
        except (ValueError, AttributeError):
            raise EslError(
                f"`show channels as json` gave no JSON ({body.strip()[:80]!r}) — the ESL user needs "
                "the `show` and `status` APIs (esl-allowed-api) to resync after a reconnect"
            ) from None
        started = _started(link.api("status"), datetime.now(UTC))
        now = datetime.now(UTC)
        for call_event in self._tracker.resync(rows, now, started):
            self._publish(call_event)
        held, self._held = self._held, []
        for event, received in held:  # no greenlet switch in here: nothing can overtake them
            self._feed(event, received)
        self._live = self._went_live = True
        self._since = now
        if self._last_error is not None:
            log.info("%s: connected again (%d live channels adopted)", self.where, len(rows))
            self._last_error = None
        else:
            log.info("%s: connected (%d live channels adopted)", self.where, len(rows))

    def _watchdog(self, link: EslLink) -> None:
        """Probe every interval; if nothing at all came back by the next tick, the link is dead."""
        interval = self.pbx.ping_interval
        while not link.closed.is_set():
            sent = time.monotonic()
            try:
                link.probe()
            except ConnectionError:
                return
            if link.closed.wait(interval):
                return
            if link.last_rx < sent:
                link.abort(
                    f"no answer to a probe within {interval:g}s — FreeSWITCH hung or the link is half-open"
                )

    # -- events -----------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        self._last_event = time.monotonic()
        if self._live:
            self._feed(event)
        else:
            self._held.append((event, datetime.now(UTC)))

    def _report(self, error: str, delay: float) -> None:
        """Log an error once per distinct cause, not once per retry."""
        if error != self._last_error:
            log.error("%s: %s; retrying with backoff (next in %.1fs)", self.where, error, delay)
            self._last_error = error
        else:
            log.debug("%s: still failing (%s); next try in %.1fs", self.where, error, delay)


def _check_command(command: str) -> None:
    if not isinstance(command, str) or not command or any(c in command for c in "\r\n\0"):
        raise ValueError("an ESL command is one line of text: no CR, LF or NUL")


def _started(status: str, now: datetime) -> datetime | None:
    """When FreeSWITCH started, from `status`'s `UP 0 years, 0 days, …` line."""
    m = _UPTIME.search(status)
    if m is None:
        return None
    years, days, hours, minutes, seconds, ms, us = map(int, m.groups())
    up = timedelta(
        days=365 * years + days,
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        milliseconds=ms,
        microseconds=us,
    )
    return now - up
