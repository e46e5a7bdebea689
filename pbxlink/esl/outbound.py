"""The outbound socket server: FreeSWITCH's dialplan `socket` app hands pbxlink each call at its start.

The ESL equivalent of FastAGI: pbxlink looks the caller up (`CallerLookup`, in a worker
thread) and sets `effective_caller_id_name`, `pbxlink_caller_name`, `pbxlink_route` and
`pbxlink_lookup` on the channel, then lets the dialplan resume (see outbound_session.py).

It runs on asyncio in a thread of its own with its own loop, so many calls are served at
once and nothing else in pbxlink can hold one up. greenswitch's OutboundESLServer is not
used: it calls sys.exit() when it cannot bind. Here a bind failure is an OutboundBindError
raised by start(), with what to do about it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import ipaddress
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from pbxlink.config import ConfigError, PbxConfig
from pbxlink.domain.ports import CallerInfo, CallerLookup
from pbxlink.esl.outbound_session import CallSession

log = logging.getLogger(__name__)

_REASONS = {
    errno.EADDRINUSE: "address already in use (another pbxlink?)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "no such address on this host",
}


class OutboundBindError(ConfigError):
    """The outbound socket server cannot listen; the message says where, why and what to change.

    A ConfigError: `pbxlink run` ends with this one line, as for a mistake in the config file.
    """


class OutboundServer:
    """Serves the `socket` app of one FreeSWITCH on host:port (port 0: a free port, for tests).

    `budget` is the most a call waits for pbxlink (connect reply, lookup, sets); `grace` is
    how long pbxlink then waits for FreeSWITCH to close the socket (the call is no longer held).
    """

    def __init__(
        self,
        lookup: CallerLookup,
        host: str = "127.0.0.1",
        port: int = 8084,
        budget: float = 1.0,
        *,
        pbx: str = "",
        lookup_threads: int = 8,
        grace: float = 2.0,
    ) -> None:
        self.lookup = lookup
        self.host, self.port, self.budget, self.grace = host, port, budget, grace
        self.pbx = pbx
        self.lookup_threads = lookup_threads
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    def start(self, timeout: float = 10.0) -> tuple[str, int]:
        """Listen and serve in a thread of its own; the address bound. Raises OutboundBindError."""
        if self._thread is not None:
            raise RuntimeError("the outbound socket server is already started")
        self._executor = ThreadPoolExecutor(self.lookup_threads, thread_name_prefix="pbxlink-lookup")
        ready: concurrent.futures.Future[tuple[str, int]] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"pbxlink-outbound-{self.pbx or self.port}", daemon=True
        )
        self._thread.start()
        try:
            address = ready.result(timeout)
        except OSError as exc:
            self._thread.join()
            self._thread = None
            self._executor.shutdown(wait=False)
            raise OutboundBindError(self._bind_message(exc)) from None
        where = f"{address[0]}:{address[1]}"
        log.info("FreeSWITCH outbound socket: listening on %s (budget %.1f s a call)", where, self.budget)
        if not _loopback(address[0]):
            log.warning(
                "FreeSWITCH outbound socket: %s is reachable from other hosts; allow only FreeSWITCH "
                "there (firewall), or anyone can ask it who a number belongs to",
                where,
            )
        return address

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening; calls in progress get their budget to finish, then the thread ends."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("FreeSWITCH outbound socket: did not stop within %.0f s", timeout)
        self._thread = self._loop = self._stopping = None

    def _run(self, ready: concurrent.futures.Future[tuple[str, int]]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # whatever it is, start() must hear of it
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.exception("FreeSWITCH outbound socket: the server thread failed")
        finally:
            loop.close()

    async def _serve(self, ready: concurrent.futures.Future[tuple[str, int]]) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, self.host, self.port)
        bound = server.sockets[0].getsockname()
        ready.set_result((bound[0], bound[1]))
        await self._stopping.wait()
        server.close()
        if self._sessions:
            await asyncio.wait(self._sessions, timeout=self.budget + self.grace)
        for task in self._sessions:
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await CallSession(reader, writer, self._lookup, self.budget, self.grace).run()
        finally:
            self._sessions.discard(task)

    async def _lookup(self, number: str) -> CallerInfo | None:
        """The port's (blocking) lookup in a worker thread: the loop serves other calls meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.lookup.lookup, number)

    def _bind_message(self, exc: OSError) -> str:
        reason = _REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        key = f'outbound_listen in [[pbx]] "{self.pbx}"' if self.pbx else "the address"
        return (
            f"cannot listen on {self.host}:{self.port} for the FreeSWITCH outbound socket: {reason} — "
            f"change {key} (and the socket app's address in the dialplan to match)"
        )


def outbound_server(pbx: PbxConfig, lookup: CallerLookup) -> OutboundServer | None:
    """The outbound socket server a `[[pbx]]` entry asks for, or None without `outbound_listen`."""
    if pbx.outbound_listen is None:
        return None
    host, port = pbx.outbound_listen
    return OutboundServer(lookup, host, port, pbx.outbound_budget, pbx=pbx.name)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
