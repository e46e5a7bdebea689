"""The fast AMI wire path: an incremental frame parser and a panoramisk protocol built on it.

panoramisk 1.4 decodes each TCP chunk alone (a UTF-8 character split across reads is
lost), keeps no bound on a frame, and builds a case-insensitive `Message` per event and
matches it against fnmatch patterns: most of its time goes there. Here a chunk is
decoded incrementally, split once, and each event becomes a plain dict handed straight
to a callback; only responses and list items of pending actions become panoramisk
`Message`s, so its action futures keep working.
"""

from __future__ import annotations

import codecs
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

log = logging.getLogger(__name__)

Frame = dict[str, str | list[str]]
#: Event name -> substrings one of which the frame must contain (empty: any frame of that name).
#: Events outside it are counted and dropped unparsed: most of a PBX's events (Cdr, RTCP,
#: device states, most VarSets) say nothing about calls, and parsing is the dominant cost.
Interest = Mapping[str, tuple[str, ...]]
#: receives the events of one TCP chunk, in wire order, with the chunk's receive time
EventSink = Callable[[list[Frame], datetime], None]

MAX_FRAME = 256 * 1024
SLICE = 32 * 1024
BANNER_MARK = "Call Manager/"
#: where a line without ": " goes (old-style Command output, stray text): kept, never fatal
RAW_KEY = "Output"
#: manager.conf permission classes in Asterisk's bit order (EVENT_FLAG_SYSTEM = bit 0 ...).
PERMISSION_CLASSES: tuple[str, ...] = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
)
_EOL = re.compile(r"\r?\n")


class FrameParser:
    """Bytes in, one dict per AMI frame out; survives any input (logs and skips, never raises).

    A repeated header becomes a list in wire order. A frame larger than `max_frame`
    characters is dropped up to its end, so one huge event cannot exhaust memory or stop
    the stream.
    """

    def __init__(
        self, max_frame: int = MAX_FRAME, name: str = "AMI", interest: Interest | None = None
    ) -> None:
        self.max_frame = max_frame
        self.name = name
        self.interest = interest
        self.skipped = 0  # events left unparsed because nobody is interested in them
        self.banner: str | None = None
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._buf = ""
        self._at_start = True
        self._discarding: tuple[str, int] | None = None  # (Event of the dropped frame, chars so far)
        self._bad_utf8 = 0
        self._shapes: dict[tuple[str, ...], list[tuple[str, list[int]]]] = {}

    def feed(self, data: bytes | memoryview) -> list[Frame]:
        text = self._decode(data)
        if "\ufffd" in text:
            self._note_bad_utf8()
        buf = self._buf + text
        if self._at_start:
            buf = self._take_banner(buf)
            if self._at_start:
                self._buf = buf
                return []
        if self._discarding is not None:
            buf = self._skip_discarded(buf)
            if self._discarding is not None:
                return []
        # AMI ends lines with CRLF; tolerate bare LF (costs a normalizing pass only then).
        if "\n\n" in buf:
            buf = buf.replace("\r\n", "\n")
            eol = "\n"
        else:
            eol = "\r\n"
        frames = buf.split(eol + eol)
        rest = frames.pop()
        if len(rest) > self.max_frame:
            self._discarding = (_event_name(rest), len(rest))
            rest = ""
        self._buf = rest
        out: list[Frame] = []
        interest = self.interest
        for frame in frames:
            if interest is not None and frame.startswith("Event: "):
                end = frame.find(eol)
                needles = interest.get(frame[7:end] if end > 0 else frame[7:])
                unwanted = needles is None or (needles and not any(n in frame for n in needles))
                if unwanted and "ActionID: " not in frame:  # list items answer our actions: keep them
                    self.skipped += 1
                    continue
            if len(frame) > self.max_frame:
                self._warn_big(_event_name(frame), len(frame))
                continue
            # Fast path, all in C: when every line holds exactly one ": ", turning line ends into
            # ": " and splitting once yields key, value, key, value ... (responses, which may
            # carry free-form Command output, always take the careful path).
            lines = frame.count("\n") + 1
            parts = frame.replace(eol, ": ").split(": ")
            if len(parts) == lines + lines and frame[:7] == "Event: ":
                pairs = iter(parts)
                msg: Frame = dict(zip(pairs, pairs, strict=False))
                if len(msg) != lines:
                    self._fold_repeats(msg, parts[0::2], parts[1::2])
            elif frame.strip():
                msg = _parse_lines(frame)
            else:
                continue
            if "Event" in msg or "Response" in msg:
                out.append(msg)
            else:
                log.warning("%s: skipped a malformed frame (no Event/Response): %.120r", self.name, frame)
        return out

    def _fold_repeats(self, msg: Frame, keys: list[str], values: list[str]) -> None:
        """Turn each repeated header into the list of its values, in wire order."""
        shape = tuple(keys)
        repeats = self._shapes.get(shape)
        if repeats is None:
            where: dict[str, list[int]] = {}
            for i, key in enumerate(keys):
                where.setdefault(key, []).append(i)
            repeats = [(key, idx) for key, idx in where.items() if len(idx) > 1]
            if len(self._shapes) >= 1024:  # event layouts are few; garbage must not grow this
                self._shapes.clear()
            self._shapes[shape] = repeats
        for key, idx in repeats:
            msg[key] = [values[i] for i in idx]

    def pending(self) -> int:
        """Characters of an unfinished frame held back (a truncated frame when the link drops)."""
        return len(self._buf.strip())

    def _take_banner(self, buf: str) -> str:
        line, sep, rest = buf.partition("\n")
        if not sep:
            if len(buf) > 1024:  # no line end in 1 KiB: not a banner, parse as frames
                self._at_start = False
            return buf
        self._at_start = False
        if BANNER_MARK in line and ": " not in line:
            self.banner = line.rstrip("\r")
            return rest
        return buf

    def _skip_discarded(self, buf: str) -> str:
        assert self._discarding is not None
        event, size = self._discarding
        ends = [i for i in (buf.find("\r\n\r\n"), buf.find("\n\n")) if i >= 0]
        if not ends:
            keep = buf[-3:]
            self._discarding = (event, size + len(buf) - len(keep))
            self._buf = keep
            return ""
        end = min(ends)
        self._discarding = None
        self._warn_big(event, size + end)
        return buf[end:].lstrip("\r\n")

    def _warn_big(self, event: str, size: int) -> None:
        log.warning(
            "%s: dropped an oversized frame of %d characters (Event: %s); limit %d, continuing with the next",
            self.name,
            size,
            event,
            self.max_frame,
        )

    def _note_bad_utf8(self) -> None:
        self._bad_utf8 += 1
        if self._bad_utf8 == 1:
            log.warning(
                "%s: received bytes that are not valid UTF-8; replaced by U+FFFD (more of them: debug log)",
                self.name,
            )
        else:
            log.debug("%s: invalid UTF-8 again (%d chunks so far)", self.name, self._bad_utf8)


def _parse_lines(frame: str) -> Frame:
    """The careful path: line by line, for responses and anything irregular."""
    msg: Frame = {}
    for line in _EOL.split(frame):
        key, sep, value = line.partition(": ")
        if not sep:
            if not line:
                continue
            key, value = (line[:-1], "") if line.endswith(":") else (RAW_KEY, line)
        old = msg.get(key)
        if old is None:
            msg[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            msg[key] = [old, value]
    return msg


def _str(value: str | list[str] | None) -> str | None:
    return value if isinstance(value, str) else None


def _event_name(frame: str) -> str:
    head = frame[:200]
    start = head.find("Event: ")
    if start < 0:
        return "?"
    return head[start + 7 :].split("\n", 1)[0].strip() or "?"


class AmiProtocol(AMIProtocol):
    """panoramisk's protocol with the fast path: events bypass Message and fnmatch dispatch.

    The owner sets `on_events` and `on_lost`. Pending actions are failed, never re-queued,
    when the link drops (panoramisk would re-send them: an Originate could run twice).
    """

    on_events: EventSink | None = None
    on_lost: Callable[[Exception | None], None] | None = None
    name = "AMI"

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self.parser = FrameParser(name=self.name)
        self.last_rx = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        if len(data) <= SLICE:
            self._received(data)
            return
        # Big reads (asyncio reads up to 256 KiB) go in slices: each slice is parsed and
        # tracked while it is still in the CPU cache, which is markedly faster.
        view = memoryview(data)
        for start in range(0, len(data), SLICE):
            self._received(view[start : start + SLICE])

    def _received(self, data: bytes | memoryview) -> None:
        events: list[Frame] = []
        responses = self.responses
        for msg in self.parser.feed(data):
            if "Event" in msg and not (responses and _str(msg.get("ActionID")) in responses):
                events.append(msg)
                continue
            message = Message(msg)
            message.frame = msg  # the wire-exact dict, for callers that want plain data
            try:
                self.handle_message(message)
            except Exception:  # a malformed answer must not take the link down
                log.exception("%s: could not match an answer to its action: %.200r", self.name, msg)
        if events and self.on_events is not None:
            self.on_events(events, datetime.now(UTC))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.parser.pending():
            log.warning(
                "%s: link closed inside a frame; dropped %d characters", self.name, self.parser.pending()
            )
        self._fail_pending(exc)
        self.closed = True
        if self.on_lost is not None:
            self.on_lost(exc)

    def close(self) -> None:
        self._fail_pending(None)
        if not self.closed:
            self.closed = True
            self.transport.close()

    def _fail_pending(self, exc: Exception | None) -> None:
        pending = {id(a): a for a in self.responses.values()}.values()
        self.responses.clear()
        for action in pending:
            if not action.future.done():
                err = ConnectionError(f"AMI link lost before the answer to {action['Action']}; not re-sent")
                err.__cause__ = exc
                action.future.set_exception(err)
