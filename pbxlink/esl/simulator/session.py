"""One inbound ESL connection of the simulator: its commands, its subscription, its writes.

As in mod_event_socket, commands run one at a time and events reach the connection only between
commands: while a blocking `api` (an originate waiting for the agent to answer) runs, the
connection's events wait and follow its api/response. The first command must come within
`auth_timeout` seconds; whatever ends the connection, it ends with a disconnect notice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pbxlink.esl.simulator.commands import dispatch
from pbxlink.esl.simulator.subscription import Subscription
from pbxlink.esl.simulator.wire import (
    AUTH_REQUEST,
    GOODBYE,
    SHUTTING_DOWN,
    command_reply,
    disconnect_notice,
    read_command,
)

if TYPE_CHECKING:
    from pbxlink.esl.simulator.server import EslSimulator

log = logging.getLogger("pbxlink.esl.simulator")
#: A client this far behind is dropped, as mod_event_socket kills a listener whose queue overflows.
MAX_BUFFERED = 64 * 1024 * 1024


class Session:
    def __init__(self, sim: EslSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sim, self.reader, self.writer = sim, reader, writer
        self.authenticated = False
        self.running = True
        self.logging = False  # `log` was asked for
        self.subscription = Subscription()
        self.peer: tuple[str, int] = writer.get_extra_info("peername")[:2]
        self._held: list[bytes] = []  # what waits while a command runs (events) or a blast runs (all)
        self._busy = self._blasting = False
        self._closed = False

    def send(self, data: bytes, event: bool = False) -> None:
        """A reply, or an `event` frame; dropped while the switch plays dead (go_silent)."""
        if self.sim.silent or self._closed:
            return
        if self._blasting or (event and self._busy):
            self._held.append(data)
        else:
            self.write_raw(data)

    def reply(self, text: str, *extra: tuple[str, str]) -> None:
        self.send(command_reply(text, *extra))

    def write_raw(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning("%s:%d reads too slowly, dropping it", *self.peer)
            self.abort()

    def _release(self) -> None:
        if self._busy or self._blasting:
            return
        held, self._held = self._held, []
        for data in held:
            self.send(data)

    def abort(self) -> None:
        """Close abruptly, without a word: a crash or a cut cable."""
        self._closed = True
        self.writer.transport.abort()

    def shut_down(self) -> None:
        """The switch is going down: `The system is being shut down.`, no `+OK bye`."""
        self.close(SHUTTING_DOWN)

    def close(self, message: str = GOODBYE) -> None:
        """The disconnect notice (unless the switch plays dead), then close once it has gone out."""
        if self._closed:
            return
        if not self.sim.silent:
            self.write_raw(disconnect_notice(message))
        self._closed = True
        self.writer.close()

    async def run(self) -> None:
        """auth/request, then commands one at a time until exit, a failed auth or the peer goes away."""
        self.send(AUTH_REQUEST)
        try:
            first = True
            while self.running and not self._closed:
                reading = read_command(self.reader)
                try:
                    command = await (asyncio.wait_for(reading, self.sim.auth_timeout) if first else reading)
                except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                    break  # no auth in time, the peer went away, or a line beyond any limit
                first = False
                if command is None:
                    break
                log.debug("%s:%d → %s", *self.peer, command.line)
                self._busy = True
                try:
                    await dispatch(self.sim, self, command)
                finally:
                    self._busy = False
                    self._release()
        finally:
            self.close()

    async def blast(self, chunks: Iterable[bytes]) -> None:
        """Write `chunks` as fast as the socket takes them; other writes wait so no frame is split."""
        self._blasting = True
        try:
            for chunk in chunks:
                if self._closed:
                    return
                self.writer.write(chunk)
                await self.writer.drain()
        except ConnectionError:
            return
        finally:
            self._blasting = False
            self._release()
