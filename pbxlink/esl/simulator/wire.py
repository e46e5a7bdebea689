"""The ESL envelope: the frames mod_event_socket writes around events, and the commands it reads.

Replies and notices are byte for byte what mod_event_socket.c formats. `FrameReader` splits a byte
stream back into frames (to load captures, and for the tests' clients); `read_command` reads one
command the way read_packet does: blank lines skipped, the first line is the command, then
`Name: value` lines up to a blank line, then a body if one of them is Content-Length.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pbxlink.esl.simulator.event import EslEvent, parse_json, parse_plain

AUTH_REQUEST = b"Content-Type: auth/request\n\n"
GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
SHUTTING_DOWN = "The system is being shut down.\n"
#: read_packet's limit: a command this long is cut and parsed as it stands
MAX_COMMAND = 10 * 1024 * 1024


def command_reply(text: str, *extra: tuple[str, str]) -> bytes:
    """`Content-Type: command/reply` with Reply-Text (and, for bgapi, Job-UUID)."""
    lines = "".join(f"{name}: {value}\n" for name, value in (("Reply-Text", text), *extra))
    return f"Content-Type: command/reply\n{lines}\n".encode()


def api_response(body: str) -> bytes:
    """An api/response; an empty result is `-ERR no reply`, as api_exec writes it."""
    data = (body or "-ERR no reply\n").encode("utf-8", "surrogateescape")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(data) + data


def disconnect_notice(message: str) -> bytes:
    data = message.encode()
    return b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(data) + data


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: its envelope headers (as sent, not url-decoded) and the Content-Length body."""

    headers: dict[str, str]
    body: bytes
    size: int  # bytes on the wire, envelope included

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def event(self) -> EslEvent | None:
        if self.content_type == "text/event-plain":
            return parse_plain(self.body)
        if self.content_type == "text/event-json":
            return parse_json(self.body)
        return None


class FrameReader:
    """Splits a byte stream into frames, whatever the chunking (a UTF-8 character may be cut)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: tuple[dict[str, str], int] | None = None

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while True:
            if self._head is None:
                end = self._buffer.find(b"\n\n")
                if end < 0:
                    return frames
                lines = self._buffer[:end].decode("utf-8", "replace").split("\n")
                del self._buffer[: end + 2]
                headers: dict[str, str] = {}
                for line in lines:
                    name, _, value = line.partition(": ")
                    headers.setdefault(name, value)
                self._head = (headers, end + 2)
            headers, head_size = self._head
            length = int(headers.get("Content-Length", "0") or 0)
            if len(self._buffer) < length:
                return frames
            body = bytes(self._buffer[:length])
            del self._buffer[:length]
            self._head = None
            frames.append(Frame(headers, body, head_size + length))

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buffer) + (self._head[1] if self._head else 0)


@dataclass(frozen=True, slots=True)
class Command:
    """A command as a client sent it: its first line, its `Name: value` lines, its body."""

    line: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def get(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


async def read_command(reader: asyncio.StreamReader) -> Command | None:
    """The next command, or None once the client has gone (end of stream, even mid-command)."""
    line = ""
    while not line:
        raw = await reader.readline()
        if not raw:
            return None
        line = raw.decode("utf-8", "replace").split("\r", 1)[0].rstrip("\n")
    headers: list[tuple[str, str]] = []
    while True:
        raw = await reader.readline()
        if not raw:
            return None
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not text:
            break
        name, sep, value = text.partition(":")
        if sep:
            headers.append((name, value.lstrip(" ")))
    command = Command(line, tuple(headers))
    length = command.get("Content-Length")
    if length and length.strip().isdigit() and 0 < int(length) <= MAX_COMMAND:
        body = await reader.readexactly(int(length))
        command = Command(line, tuple(headers), body.decode("utf-8", "replace"))
    return command
