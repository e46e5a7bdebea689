"""One ESL connection: greenswitch's InboundESL, with what it lacks to be trusted for months.

greenswitch 0.0.19 reads a frame line by line and url-decodes it whole, dispatches events
to one handler list per name (its `*` handler only sees events nobody else handles), waits
forever for a reply once the link is gone (`send()` has no timeout), and folds a
BACKGROUND_JOB's body into a header. This subclass keeps its connect and authentication
and replaces the rest: a reader on pbxlink's FrameParser that hands every event to one
callback, a timeout on every command, every pending command and background job failed at
once when the link drops, and `bgapi` results matched to their job by Job-UUID.

Everything here runs on the gevent hub of the ESL thread (pbxlink.esl.client); the job
futures are `concurrent.futures.Future`s so that other threads may wait on them.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

import gevent
import gevent.event
import gevent.lock
from greenswitch.esl import InboundESL

from pbxlink.esl.frames import Event, Frame, FrameParser

log = logging.getLogger(__name__)

RECV_SIZE = 256 * 1024
#: bytes read without waiting after which the reader lets the other greenlets run
YIELD_EVERY = 1024 * 1024
#: BACKGROUND_JOB results that came before their job was registered (another client's jobs too)
_UNCLAIMED = 64


class EslError(Exception):
    """FreeSWITCH answered a command with an error (its reply is the message)."""


class AuthError(EslError):
    pass


class EslLink(InboundESL):
    """Connect with `connect()` (greenswitch: TCP, auth/request, `auth`), then `command()`/`bgapi()`.

    `closed` is set once the link is gone, for whatever reason (`reason`); nothing is re-sent.
    """

    _commands_sent: list[gevent.event.AsyncResult]  # greenswitch's: one result per command, in order

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        where: str,
        on_event: Callable[[Event], None],
        timeout: float,
        command_timeout: float,
    ) -> None:
        super().__init__(host, port, password, timeout=timeout)
        self.where = where
        self.on_event = on_event
        self.command_timeout = command_timeout
        self.parser = FrameParser(where)
        self.closed = gevent.event.Event()
        self.reason: str | None = None
        self.last_rx = time.monotonic()
        self.jobs: dict[str, Future[str]] = {}
        self._unclaimed: OrderedDict[str, str] = OrderedDict()
        self._sending = gevent.lock.Semaphore()

    # -- greenswitch's hooks ------------------------------------------------------------------

    def start_event_handlers(self) -> None:
        """Only our reader: greenswitch's event queue and dispatcher greenlet stay unused."""
        self._receive_events_greenlet = gevent.spawn(self.receive_events)

    def authenticate(self) -> None:
        reply = self.command(f"auth {self.password}")
        if reply.headers.get("Reply-Text", "").startswith("+OK"):
            return
        raise AuthError(
            f"FreeSWITCH refused the password ({reply.headers.get('Reply-Text', 'no reason given')})"
        )

    def send(self, data: str) -> Frame:  # greenswitch's signature, with the timeout it lacks
        return self.command(data)

    def receive_events(self) -> None:
        """Read until the link ends; every event to `on_event`, every reply to its command."""
        sock, feed = self.sock, self.parser.feed
        reason = "closed by FreeSWITCH"
        unyielded = 0
        try:
            while True:
                data = sock.recv(RECV_SIZE)
                if not data:
                    break
                self.last_rx = time.monotonic()
                unyielded += len(data)
                for item in feed(data):
                    if isinstance(item, dict):
                        if item.get("Event-Name") == "BACKGROUND_JOB":
                            self._job_done(item)
                        self.on_event(item)
                    else:
                        self._frame(item)
                if unyielded > YIELD_EVERY:  # a burst must not starve the commands and the watchdog
                    unyielded = 0
                    gevent.sleep(0)
        except OSError as exc:
            reason = f"socket error: {exc.strerror or exc}"
        except Exception as exc:  # a bug must end the link (and so reconnect), not leave it deaf
            log.exception("%s: the ESL reader failed; dropping the link to reconnect", self.where)
            reason = f"reader failed: {exc!r}"
        self.abort(self.reason or reason)

    # -- commands -----------------------------------------------------------------------------

    def command(self, text: str, timeout: float | None = None) -> Frame:
        """Send one command and wait for its reply (command/reply or api/response).

        Raises ConnectionError if the link is or goes down first, TimeoutError after
        `timeout` (default `command_timeout`). A late reply is matched to its command and
        dropped, so later replies stay in step.
        """
        result = self._submit(text)
        try:
            reply: Frame = result.get(timeout=timeout or self.command_timeout)
        except gevent.Timeout:
            raise TimeoutError(f"{self.where}: no reply to `{text.split(' ', 1)[0]}` in time") from None
        return reply

    def api(self, text: str, timeout: float | None = None) -> str:
        """`api <text>`: the response body (FreeSWITCH's `-ERR …` is content here, not an exception)."""
        return self.command(f"api {text}", timeout).text

    def bgapi(self, text: str, job_uuid: str, timeout: float) -> Future[str]:
        """`bgapi <text>` as job `job_uuid`; the future gets the BACKGROUND_JOB's body.

        Raises EslError when FreeSWITCH does not accept the job. The future fails with
        TimeoutError after `timeout`, or ConnectionError if the link drops first.
        """
        job: Future[str] = Future()
        self.jobs[job_uuid] = job
        try:
            reply = self.command(f"bgapi {text}\nJob-UUID: {job_uuid}")
        except BaseException:
            self.jobs.pop(job_uuid, None)
            raise
        answer = reply.headers.get("Reply-Text", "")
        if not answer.startswith("+OK"):
            self.jobs.pop(job_uuid, None)
            raise EslError(f"{self.where}: bgapi {text.split(' ', 1)[0]} refused: {answer}")
        given = reply.headers.get("Job-UUID", job_uuid)
        if given != job_uuid and self.jobs.pop(job_uuid, None) is job:  # the server named the job itself
            self.jobs[given] = job
        if given in self._unclaimed:
            self._resolve(given, self._unclaimed.pop(given))
        elif given in self.jobs:
            gevent.spawn_later(timeout, self._expire, given, timeout)
        return job

    def probe(self) -> None:
        """A cheap command whose reply only has to arrive (the watchdog counts any bytes as life)."""
        self._submit("api status")

    def _submit(self, text: str) -> gevent.event.AsyncResult:
        if "\r" in text or "\0" in text or "\n\n" in text or text.endswith("\n"):
            raise ValueError(f"{self.where}: a command may not contain CR, NUL or an empty line")
        if self.closed.is_set() or not self.connected:
            raise ConnectionError(f"{self.where}: not connected ({self.reason or 'connecting'})")
        result = gevent.event.AsyncResult()
        with self._sending:  # one command's bytes at a time, queued in the order they are sent
            self._commands_sent.append(result)
            try:
                self.sock.sendall(f"{text}\n\n".encode())
            except OSError as exc:
                self.abort(f"send failed: {exc.strerror or exc}")
                raise ConnectionError(f"{self.where}: link lost while sending ({exc})") from None
        return result

    # -- frames and jobs ----------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        kind = frame.content_type
        if kind in ("command/reply", "api/response"):
            if self._commands_sent:
                self._commands_sent.pop(0).set(frame)
            else:
                log.warning("%s: a %s nobody asked for; ignored", self.where, kind)
        elif kind == "auth/request":
            self._auth_request_event.set()
        elif kind == "text/rude-rejection":
            self.reason = f"FreeSWITCH turned pbxlink's address away ({frame.text.strip()})"
        elif kind == "text/disconnect-notice":
            if frame.headers.get("Content-Disposition") != "linger":
                self.reason = self.reason or f"FreeSWITCH disconnected: {frame.text.strip().splitlines()[0]}"
        elif kind != "log/data":
            log.debug("%s: ignored a %s frame", self.where, kind)

    def _job_done(self, event: Event) -> None:
        uuid = event.get("Job-UUID")
        body = event.get("_body", "")
        if not isinstance(uuid, str) or not isinstance(body, str):
            return
        if uuid in self.jobs:
            self._resolve(uuid, body)
        else:
            self._unclaimed[uuid] = body
            if len(self._unclaimed) > _UNCLAIMED:
                self._unclaimed.popitem(last=False)

    def _resolve(self, uuid: str, body: str) -> None:
        job = self.jobs.pop(uuid, None)
        if job is not None and not job.done():
            job.set_result(body)

    def _expire(self, uuid: str, timeout: float) -> None:
        job = self.jobs.pop(uuid, None)
        if job is not None and not job.done():
            job.set_exception(TimeoutError(f"{self.where}: no BACKGROUND_JOB for job {uuid} in {timeout:g}s"))

    def abort(self, reason: str) -> None:
        """End the link now: close the socket, fail whatever waits on it, set `closed`."""
        if self.closed.is_set():
            return
        self.reason = self.reason or reason
        self.connected = False
        lost = f"{self.where}: link lost ({self.reason}) before the answer"
        pending, self._commands_sent = self._commands_sent, []
        for result in pending:
            result.set_exception(ConnectionError(lost))
        jobs, self.jobs = self.jobs, {}
        for uuid, job in jobs.items():
            if not job.done():
                job.set_exception(
                    ConnectionError(f"{lost} of job {uuid}; the command may still have run on FreeSWITCH")
                )
        self._auth_request_event.set()  # a connect() waiting for auth/request gives up now
        for stream in (getattr(self, "sock_file", None), getattr(self, "sock", None)):
            if stream is not None:
                stream.close()  # greenswitch's file first: the socket stays open while it is
        self.closed.set()
