"""One call handed over by FreeSWITCH's dialplan `socket` app: look the caller up, set, resume.

The exchange, as captured in tests/fixtures/freeswitch/outbound_socket.esl: pbxlink sends
`connect`; FreeSWITCH answers with a `command/reply` whose own headers carry the channel
data, url-encoded (`Reply-Text: %2BOK%0A`, `Caller-Caller-ID-Number: %2B15551234567`).
pbxlink then sends one `sendmsg … execute set` per variable (event-lock, so they run in
order), `resume` (the dialplan carries on after the socket closes, as `socket_resume=true`
does) and `exit`, and waits for FreeSWITCH to close.

A live call is parked while this runs, so everything before `exit` fits in one time budget;
when it runs out the call goes on regardless, with `pbxlink_lookup=timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque

from pbxlink.domain.ports import CallerInfo
from pbxlink.esl.frames import Frame, FrameParser
from pbxlink.lookup_server import CONTROL, BudgetedLookup, Status, clean_number, clean_text, found

log = logging.getLogger(__name__)

# FreeSWITCH expands ${var} and ${api(args)} in an app's argument, and `set` expands again.
# Backslashes go first: "$\{" must not become "${" once the backslash is gone.
_BACKSLASH = re.compile(r"\\")
_EXPANSION = re.compile(r"\$+(?=\{)")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_UUID = re.compile(r"[0-9A-Za-z-]{1,64}")


def clean_name(value: object) -> str | None:
    """A caller name safe to hand FreeSWITCH: one line, no control characters, no ${…}, capped."""
    if not isinstance(value, str):
        return None
    return clean_text(_EXPANSION.sub("", _BACKSLASH.sub("", value)))


def set_command(variable: str, value: str) -> bytes:
    """`sendmsg` running `set variable=value` on the socket's own channel, in order (event-lock)."""
    if not _VARIABLE.fullmatch(variable) or CONTROL.search(value):
        raise ValueError(f"unsafe variable for FreeSWITCH: {variable!r}={value!r}")  # last line of defence
    return (
        "sendmsg\ncall-command: execute\nexecute-app-name: set\n"
        f"execute-app-arg: {variable}={value}\nevent-lock: true\n\n"
    ).encode()


def variables(status: Status, info: CallerInfo | None, call: str) -> list[tuple[str, str]]:
    """The channel variables for a lookup's outcome (see lookup_server.found)."""
    outcome = found(status, info, call, clean_name)
    named = [
        ("effective_caller_id_name", outcome.name),
        ("pbxlink_caller_name", outcome.name),
        ("pbxlink_route", outcome.route),
        ("pbxlink_contact_id", outcome.contact_id),
        ("pbxlink_owner", outcome.owner),
    ]
    return [*((k, v) for k, v in named if v), ("pbxlink_lookup", outcome.status)]


class CallSession:
    """Serves one connection from the `socket` app; never raises, never outlives budget + grace."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        lookup: BudgetedLookup,
        budget: float,
        grace: float,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.lookup, self.budget, self.grace = lookup, budget, grace
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        self.call = "?"  # the channel's Unique-ID once known: what every log line names
        self._parser = FrameParser(f"outbound socket from {self.peer}")
        self._frames: deque[Frame] = deque()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.budget
        try:
            await self._serve(deadline)
        except ConnectionError as exc:
            log.info(
                "call %s (outbound socket from %s): FreeSWITCH closed the socket early (%s); "
                "nothing to do, the caller probably hung up",
                self.call,
                self.peer,
                type(exc).__name__,
            )
        except Exception:
            log.exception("call %s (outbound socket from %s): unexpected error; closed", self.call, self.peer)
        finally:
            transport = self.writer.transport
            if transport.get_write_buffer_size():
                transport.abort()  # FreeSWITCH stopped reading: do not wait for a flush that never comes
            else:
                transport.close()

    async def _serve(self, deadline: float) -> None:
        self.writer.write(b"connect\n\n")
        try:
            reply = await asyncio.wait_for(self._connect_reply(), self._left(deadline))
        except TimeoutError:
            log.warning(
                "outbound socket from %s: no reply to connect within the %.1f s budget; the call goes on "
                "without a lookup. Is FreeSWITCH overloaded?",
                self.peer,
                self.budget,
            )
            self.writer.write(b"resume\n\nexit\n\n")
            await self._drain()
            return
        self.call = _uuid(reply.headers)
        answer = reply.headers.get("Reply-Text", "")
        if not answer.startswith("+OK"):
            log.warning("call %s: FreeSWITCH refused connect (%.80r); closed", self.call, answer)
            return
        status, info = await self._lookup(reply.headers, deadline)
        found = variables(status, info, self.call)
        log.debug("call %s: %s after %.0f ms", self.call, found, (self.budget - self._left(deadline)) * 1000)
        commands = [set_command(k, v) for k, v in found]
        self.writer.write(b"".join(commands) + b"resume\n\nexit\n\n")
        await self._drain()
        await self._await_close(len(commands))

    async def _next_frame(self) -> Frame:
        """The next reply or notice (events are not subscribed to: any that come are passed over)."""
        while not self._frames:
            data = await self.reader.read(1 << 16)
            if not data:
                raise ConnectionResetError("closed by FreeSWITCH")
            self._frames.extend(f for f in self._parser.feed(data) if isinstance(f, Frame))
        return self._frames.popleft()

    async def _connect_reply(self) -> Frame:
        while True:
            frame = await self._next_frame()
            if frame.content_type == "command/reply":
                return frame
            if frame.content_type == "text/disconnect-notice":
                raise ConnectionResetError("disconnect notice")

    async def _lookup(self, channel: dict[str, str], deadline: float) -> tuple[Status, CallerInfo | None]:
        number = clean_number(
            channel.get("Caller-Caller-ID-Number") or channel.get("Channel-Caller-ID-Number")
        )
        return await self.lookup(number, self.call, within=self._left(deadline))

    async def _drain(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), self.grace)
        except TimeoutError:
            log.warning("call %s: FreeSWITCH does not read the outbound socket; closed", self.call)

    async def _await_close(self, sets: int) -> None:
        """Read FreeSWITCH's replies until it closes, so nothing is cut off; log the refusals."""
        refused: list[str] = []
        try:
            async with asyncio.timeout(self.grace):
                while True:
                    frame = await self._next_frame()
                    reply = frame.headers.get("Reply-Text", "")
                    if frame.content_type == "command/reply" and reply.startswith("-ERR"):
                        refused.append(reply[:80])
        except ConnectionError:
            pass  # FreeSWITCH closed after `exit`: the normal end
        except TimeoutError:
            log.debug("call %s: FreeSWITCH kept the outbound socket open after exit; closed", self.call)
        if refused:
            log.warning(
                "call %s: FreeSWITCH refused %d of %d commands (%s); the dialplan goes on",
                self.call,
                len(refused),
                sets + 2,
                "; ".join(refused),
            )

    def _left(self, deadline: float) -> float:
        return max(0.0, deadline - asyncio.get_running_loop().time())


def _uuid(channel: dict[str, str]) -> str:
    value = channel.get("Unique-ID") or channel.get("Channel-Unique-ID") or ""
    return value if _UUID.fullmatch(value) else "?"
