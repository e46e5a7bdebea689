"""One AMI connection of the simulator: reading actions, its login and event mask, its writes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pbxlink.ami.simulator.actions import dispatch
from pbxlink.ami.simulator.wire import ALL_CLASSES, ActionRequest, Headers, WireEvent, parse_request

if TYPE_CHECKING:
    from pbxlink.ami.simulator.server import AmiSimulator

log = logging.getLogger("pbxlink.ami.simulator")
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
#: A client this far behind is dropped, as Asterisk drops one whose writes time out.
MAX_BUFFERED = 64 * 1024 * 1024


class Session:
    def __init__(self, sim: AmiSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sim, self.reader, self.writer = sim, reader, writer
        self.authenticated = False
        self.username = ""
        self.events: frozenset[str] = ALL_CLASSES
        self.connected_at = time.time()
        self.peer: tuple[str, int] = writer.get_extra_info("peername")[:2]
        self.local: tuple[str, int] = writer.get_extra_info("sockname")[:2]
        self._held: list[bytes] | None = None  # set while a bulk blast owns the socket

    def login(self, username: str, events: frozenset[str] | None) -> None:
        """Authenticated; `events` is the Login's Events mask (None: not given, every class)."""
        self.authenticated, self.username = True, username
        if events is not None:
            self.events = events

    def wants(self, event: WireEvent) -> bool:
        """manager.c's test: every class of the event must be readable and in the session's mask."""
        return self.authenticated and event.classes <= self.events and event.classes <= self.sim.read_perms

    def send(self, data: bytes) -> None:
        """A response or event; dropped while the PBX plays dead (go_silent)."""
        if self.sim.silent:
            return
        if self._held is not None:
            self._held.append(data)
        else:
            self.write_raw(data)

    def write_raw(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning("%s:%d reads too slowly, dropping it", *self.peer)
            self.abort()

    def close(self) -> None:
        """Close after what was written has gone out (Logoff, Shutdown)."""
        self.writer.close()

    def abort(self) -> None:
        """Close abruptly, without flushing: a crash or a cut cable, not a goodbye."""
        self.writer.transport.abort()

    def successful_auth(self) -> Headers:
        """The security event Asterisk broadcasts for this login."""

        def tv(ts: float) -> str:
            clock = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts))
            return f"{clock}.{int(ts % 1 * 1000):03d}{time.strftime('%z')}"

        return [
            *[("Event", "SuccessfulAuth"), ("Privilege", "security,all"), ("EventTV", tv(time.time()))],
            *[("Severity", "Informational"), ("Service", "AMI"), ("EventVersion", "1")],
            *[("AccountID", self.username), ("SessionID", f"0x{id(self):x}")],
            ("LocalAddress", "IPV4/TCP/{}/{}".format(*self.local)),
            ("RemoteAddress", "IPV4/TCP/{}/{}".format(*self.peer)),
            *[("UsingPassword", "0"), ("SessionTV", tv(self.connected_at))],
        ]

    async def run(self) -> None:
        """Banner, then actions one at a time until Logoff, a failed Login or the peer goes away."""
        self.send(BANNER)
        try:
            while (request := await self._read_request()) is not None:
                log.debug("%s:%d → %s", *self.peer, request.action)
                if not await dispatch(self.sim, self, request):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self.close()

    async def blast(self, chunks: Iterable[bytes]) -> None:
        """Write `chunks` as fast as the socket takes them; other writes wait so no frame is split."""
        self._held = []
        try:
            for chunk in chunks:
                self.writer.write(chunk)
                await self.writer.drain()
        except ConnectionError:
            return
        finally:
            held, self._held = self._held, None
            for data in held:
                self.write_raw(data)

    async def _read_request(self) -> ActionRequest | None:
        """The next action: header lines up to a blank line (CRLF or LF); None at end of stream."""
        lines: list[str] = []
        while True:
            raw = await self.reader.readline()
            if not raw:
                return None
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line:
                lines.append(line)
            elif lines:
                return parse_request(lines)
