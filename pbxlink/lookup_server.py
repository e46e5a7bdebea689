"""What the call-start lookup servers share: FastAGI (ami/agi.py) and FreeSWITCH's outbound socket.

Both take a connection from the PBX as a call starts, look the caller up while the call
waits, set channel variables and let the dialplan go on. Shared here: the TCP server on an
asyncio loop in a thread of its own (nothing else in pbxlink can hold a call up, and a bind
failure is an error raised by start(), not a dead thread), the lookup in a bounded worker
pool under a hard budget, and the cleaning of what a CRM says before it reaches a dialplan.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, Literal

from pbxlink.config import ConfigError
from pbxlink.domain.ports import CallerInfo, CallerLookup

log = logging.getLogger(__name__)

Status = Literal["hit", "miss", "timeout", "error"]

MAX_NAME = 64  # what a phone display can show, with room to spare
MAX_NUMBER = 64

# Control characters (C0, DEL, C1), line/paragraph separators, bidi overrides, BOM and lone
# surrogates: nothing a caller name needs, and CR/LF/NUL would end a protocol line.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
# What may go into a dial string or a routing decision: no separators (`,` `&` `|` `/`), no spaces.
_TOKEN = re.compile(r"[A-Za-z0-9_.+*#@-]{1,64}")

_REASONS = {
    errno.EADDRINUSE: "address already in use (another pbxlink?)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "no such address on this host",
}


def one_line(value: str, cap: int) -> str:
    """`value` on one line: each control character a space, whitespace runs as one, at most `cap` long."""
    return " ".join(CONTROL.sub(" ", value).split())[:cap].strip()


def clean_text(value: object, cap: int = MAX_NAME) -> str | None:
    """A text from outside (a CRM) as one capped line, or None when nothing is left."""
    if not isinstance(value, str):
        return None
    return one_line(value, cap) or None


def clean_number(value: str | None) -> str | None:
    """The caller's number as the PBX reported it, fit to be looked up (it must hold a digit)."""
    text = CONTROL.sub("", value or "").strip()[:MAX_NUMBER]
    return text if any(c.isdigit() for c in text) else None


def token(value: object) -> str | None:
    """`value` if it is safe in a dial string (an extension, a login, an e-mail, an id), else None."""
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


@dataclass(frozen=True)
class Found:
    """A lookup's outcome, cleaned for a dialplan; each PBX sets it under its own variable names."""

    status: Status
    name: str | None = None
    contact_id: str | None = None
    #: whom to route the caller to: the hint when it is an extension, else the CRM owner's login
    owner: str | None = None
    #: the routing hint alone (the agent who last talked with the caller, or the owner's extension)
    route: str | None = None


def found(
    status: Status, info: CallerInfo | None, call: str, clean_name: Callable[[object], str | None]
) -> Found:
    """What to set for a lookup's outcome; `hit` only if something usable came back."""
    if info is None:
        return Found(status)
    route, contact_id = token(info.hint), token(info.contact_id)
    for what, raw, clean in (("routing hint", info.hint, route), ("contact id", info.contact_id, contact_id)):
        if raw is not None and clean is None:
            log.warning(
                "call %s: %s %.40r from the caller lookup is not a plain extension or id; it is ignored",
                call,
                what,
                raw,
            )
    outcome = Found(status, clean_name(info.name), contact_id, route or token(info.owner), route)
    if status == "hit" and not (outcome.name or outcome.contact_id or outcome.owner):
        return Found("miss")
    return outcome


class BudgetedLookup:
    """The port's blocking lookup in a bounded worker pool, waited for no longer than the budget.

    A lookup still queued when its wait ends is cancelled: a slow CRM never builds a backlog
    of answers nobody waits for.
    """

    def __init__(self, lookup: CallerLookup, pool: ThreadPoolExecutor, budget: float, variable: str) -> None:
        self.lookup, self.pool, self.budget, self.variable = lookup, pool, budget, variable

    async def __call__(
        self, number: str | None, call: str, within: float | None = None
    ) -> tuple[Status, CallerInfo | None]:
        """Look `number` up within `within` seconds (default: the budget); never raises."""
        if number is None:
            return "miss", None
        work = asyncio.get_running_loop().run_in_executor(self.pool, self.lookup.lookup, number)
        try:
            info = await asyncio.wait_for(work, self.budget if within is None else within)
        except TimeoutError:
            log.warning(
                "call %s: the caller lookup took longer than the %g s budget; the call goes on without "
                "a name (%s=timeout). Is the CRM or the database slow?",
                call,
                self.budget,
                self.variable,
            )
            return "timeout", None
        except Exception as exc:
            log.warning(
                "call %s: the caller lookup failed (%s: %s); the call goes on without a name (%s=error)",
                call,
                type(exc).__name__,
                error_text(exc),
                self.variable,
            )
            return "error", None
        return ("hit" if info is not None else "miss"), info


class LookupServer(ABC):
    """A PBX's call-start connections served on host:port (port 0: a free port, for tests).

    Subclasses speak the protocol (`session`) and say what to change when binding fails.
    """

    label: ClassVar[str]  # for log lines: "FastAGI"
    slug: ClassVar[str]  # for thread names: "agi"
    peer: ClassVar[str]  # who should be the only one to connect: "Asterisk"
    variable: ClassVar[str]  # the status variable, named in log lines: "PBXLINK_LOOKUP"
    line_limit: ClassVar[int] = 64 * 1024  # the longest line a StreamReader buffers

    def __init__(
        self, lookup: CallerLookup, host: str, port: int, budget: float, *, pbx: str, lookup_threads: int
    ) -> None:
        self.lookup = lookup
        self.host, self.port, self.budget = host, port, budget
        self.pbx = pbx
        self.lookup_threads = lookup_threads
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    @abstractmethod
    async def session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lookup: BudgetedLookup
    ) -> None:
        """Serve one connection to its end; never raises."""

    @abstractmethod
    def bind_error(self, reason: str) -> ConfigError:
        """The error start() raises when it cannot listen: where, why (`reason`), what to change."""

    @property
    @abstractmethod
    def linger(self) -> float:
        """How long stop() lets sessions in progress finish."""

    @property
    def address(self) -> tuple[str, int]:
        """The address listened on (with the port chosen when 0 was asked)."""
        if self._address is None:
            raise RuntimeError(f"the {self.label} server is not started")
        return self._address

    def start(self, timeout: float = 10.0) -> tuple[str, int]:
        """Listen and serve in a thread of its own; the address bound. Raises `bind_error(…)`."""
        if self._thread is not None:
            raise RuntimeError(f"the {self.label} server is already started")
        pool = ThreadPoolExecutor(self.lookup_threads, thread_name_prefix="pbxlink-lookup")
        ready: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run,
            args=(ready, pool),
            name=f"pbxlink-{self.slug}-{self.pbx or self.port}",
            daemon=True,
        )
        self._thread.start()
        try:
            self._address = ready.result(timeout)
        except OSError as exc:
            self._thread.join()
            self._thread = None
            pool.shutdown(wait=False)
            raise self.bind_error(_REASONS.get(exc.errno or 0) or exc.strerror or str(exc)) from None
        where = _where(*self._address)
        log.info("%s: listening on %s (budget %g s a call)", self.label, where, self.budget)
        if not _loopback(self._address[0]):
            log.warning(
                "%s: %s is reachable from other hosts; allow only %s there (firewall), or anyone can ask "
                "it who a number belongs to",
                self.label,
                where,
                self.peer,
            )
        return self._address

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening; calls in progress get `linger` seconds to finish, then the thread ends."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s: did not stop within %.0f s", self.label, timeout)
        self._thread = self._loop = self._stopping = None

    def where(self) -> str:
        """host:port as configured, for messages."""
        return _where(self.host, self.port)

    def _run(self, ready: concurrent.futures.Future[tuple[str, int]], pool: ThreadPoolExecutor) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, pool))
        except BaseException as exc:  # whatever it is, start() must hear of it
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.exception("%s: the server thread failed", self.label)
        finally:
            loop.close()

    async def _serve(
        self, ready: concurrent.futures.Future[tuple[str, int]], pool: ThreadPoolExecutor
    ) -> None:
        self._stopping = asyncio.Event()
        lookup = BudgetedLookup(self.lookup, pool, self.budget, self.variable)

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._sessions.add(task)
            try:
                await self.session(reader, writer, lookup)
            finally:
                self._sessions.discard(task)

        # a PBX opens one connection per call: a burst of calls must not overflow the backlog
        server = await asyncio.start_server(accept, self.host, self.port, limit=self.line_limit, backlog=1024)
        bound = server.sockets[0].getsockname()
        ready.set_result((bound[0], bound[1]))
        await self._stopping.wait()
        server.close()
        if self._sessions:
            await asyncio.wait(self._sessions, timeout=self.linger)
        for task in self._sessions:
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        pool.shutdown(wait=False, cancel_futures=True)


def error_text(exc: BaseException) -> str:
    """An error's message on one line, for a log line."""
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
