"""The ESL wire: an incremental frame parser, and plain and json events decoded to one shape.

FreeSWITCH writes frames as `Key: value` envelope lines, a blank line, then `Content-Length`
bytes of body. An event body is either url-encoded `Key: value` lines (`event plain`, with
its own `Content-Length` and body after a blank line, as BACKGROUND_JOB has) or a JSON
object (`event json`, the body under `_body`). Both become the same dict: url-decoded
values, a repeated header (CHANNEL_HANGUP_COMPLETE's `Hangup-Cause`) as a list in wire
order, the body under `_body`, so the tracker cannot tell which format was subscribed.

greenswitch reads line by line and url-decodes a whole event before splitting it into lines
(an SDP's `%0D%0A` comes back as `\n`, a decoded line with `: ` in it becomes a header of its
own), folds a body into the header above it, and its reader dies on a frame it cannot parse.
Here the stream is split on bytes, then each value decoded; a malformed frame (bad
Content-Length, truncated body, garbage, invalid url-encoding) is logged and skipped, never
fatal: the parser finds the next frame and goes on.
"""

from __future__ import annotations

import binascii
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote

log = logging.getLogger(__name__)

Event = dict[str, str | list[str]]

#: the largest frame accepted (`show channels as json` on a busy PBX is a few MB)
MAX_FRAME = 32 * 1024 * 1024
#: an envelope (the lines before a body) longer than this is garbage
MAX_ENVELOPE = 64 * 1024
#: where a frame starts: after garbage, the parser resumes at the first of these
_STARTS = (b"Content-Length: ", b"Content-Type: ")
_KEY = re.compile(rb"[A-Za-z0-9_.:-]{1,128}")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_EVENT_TYPES = ("text/event-plain", "text/event-json")
_EVENT_ENVELOPE = re.compile(rb"Content-Length: ([0-9]{1,9})\nContent-Type: text/event-(plain|json)\n\n")


class Malformed(ValueError):
    """A frame or event that cannot be decoded; the message says why."""


@dataclass(slots=True)
class Frame:
    """A frame that is not an event: a reply, an API response, a notice. `body` is undecoded bytes."""

    content_type: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def unquote_strict(value: str) -> str:
    """Url-decode a value; a `%` not followed by two hex digits or bytes that are not UTF-8 are malformed."""
    if _BAD_ESCAPE.search(value):
        raise Malformed(f"invalid url-encoding in {value[:60]!r}")
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise Malformed(f"url-encoded bytes that are not UTF-8 in {value[:60]!r}") from None


def decode_plain(body: bytes) -> tuple[Event, int]:
    """A `text/event-plain` body as an event, and how many bytes of `body` it took."""
    end = body.find(b"\n\n")
    if end < 0:
        raise Malformed("truncated event: its headers never end")
    block = body[:end]
    event = _fast_headers(block)
    if event is None:
        event = _headers(block)
    taken = end + 2
    length = event.get("Content-Length")
    if length is not None:
        n = _length(length)
        if len(body) < taken + n:
            raise Malformed(f"truncated event body: {len(body) - taken} of {n} bytes")
        event["_body"] = body[taken : taken + n].decode("utf-8", "replace")
        taken += n
    return event, taken


#: colon, newline, space, CR and `=` as marks, every other byte dropped: the shape of a header block
_MARKS = bytes.maketrans(b":\n \r=", b"\0\1\2\3\4")
_NOT_MARKS = bytes(b for b in range(256) if b not in b":\n \r=")
#: `Key: value` lines to `Key\0value\0…` (colon and newline become NUL, the space goes) with `%XY`
#: as quoted-printable's `=XY`, which binascii decodes in C
_FLATTEN = bytes.maketrans(b":\n%", b"\0\0=")


def _fast_headers(block: bytes) -> Event | None:
    """The headers in C-speed steps, for what FreeSWITCH writes: every line exactly `Key: value`,
    values url-encoded (no raw colon, space, CR or `=`), valid escapes.
    None for anything else: the line-by-line path takes it, and says what is wrong.
    """
    marks = block.translate(_MARKS, _NOT_MARKS)
    lines = (len(marks) + 1) // 3
    if marks != b"\0\2\1" * (lines - 1) + b"\0\2" or block.count(b": ") != lines:
        return None  # not one colon, then one space, right after it, per line
    flat = block.translate(_FLATTEN, b" ")
    escapes = flat.count(b"=")
    if escapes:
        decoded = binascii.a2b_qp(flat)
        if len(decoded) != len(flat) - 2 * escapes:  # each valid `=XY` is one byte
            return None
        flat = decoded
    try:
        fields = flat.decode("utf-8").split("\0")
    except UnicodeDecodeError:
        return None
    if len(fields) != 2 * lines:  # a NUL (`%00`) in a value
        return None
    it = iter(fields)
    event: Event = dict(zip(it, it, strict=False))
    if len(event) != lines:  # repeated headers: as lists, in wire order
        keys = fields[0::2]
        for key, count in Counter(keys).items():
            if count > 1:
                event[key] = [v for k, v in zip(keys, fields[1::2], strict=True) if k == key]
    return event


def _headers(block: bytes) -> Event:
    """Line by line: any `Key: value` (or `Key:`) lines, repeated headers as lists, strict url-decoding."""
    try:
        lines = block.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise Malformed("event headers that are not UTF-8") from None
    event: Event = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
            if not sep or not key:
                raise Malformed(f"not a header line: {line[:60]!r}")
        if "%" in line:  # names too, as the fast path does: FreeSWITCH never encodes one
            key, value = unquote_strict(key), unquote_strict(value)
        if key in event:
            prev = event[key]
            if isinstance(prev, list):
                prev.append(value)
            else:
                event[key] = [prev, value]
        else:
            event[key] = value
    return event


def _pairs(pairs: list[tuple[str, object]]) -> Event:
    """A JSON object as a plain event would give it: a repeated key as a list in wire order,
    an array (FreeSWITCH's `ARRAY::a|:b` headers) as that string; anything but text is malformed.
    """
    event: Event = {}
    for key, value in pairs:
        if type(value) is list and all(type(v) is str for v in value):
            value = "ARRAY::" + "|:".join(value)
        elif type(value) is not str:
            raise Malformed(f"{key}: a JSON event carries only strings, not {type(value).__name__}")
        if key in event:
            prev = event[key]
            event[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            event[key] = value
    return event


_JSON = json.JSONDecoder()
_JSON_PAIRS = json.JSONDecoder(object_pairs_hook=_pairs)
_TEXT = frozenset({str})


def decode_json(body: bytes) -> tuple[Event, int]:
    """A `text/event-json` body as an event, and how many bytes of `body` it took.

    json's own dict first; when a value is no string or there are fewer keys than `":"`
    separators (a repeated key, which the dict kept once), parse again keeping every pair.
    """
    try:
        text = body.decode("utf-8")
        obj, end = _JSON.raw_decode(text)
        if type(obj) is not dict:
            raise Malformed("a JSON event must be an object")
        if len(obj) != text.count('":"', 0, end) or not set(map(type, obj.values())) <= _TEXT:
            obj, end = _JSON_PAIRS.raw_decode(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"not a JSON event ({exc})") from None
    return obj, len(body) if end == len(text) else len(text[:end].encode("utf-8"))


def _length(value: object) -> int:
    if not isinstance(value, str) or not value.isdigit() or int(value) > MAX_FRAME:
        raise Malformed(f"bad Content-Length {str(value)[:20]!r}")
    return int(value)


class FrameParser:
    """Bytes in, events (dicts) and other frames (`Frame`) out, in wire order; never raises.

    An event whose declared length runs past its own end (a Content-Length too large) gives
    the bytes it did not use back to the stream, so the frames it swallowed are still read.
    """

    def __init__(self, name: str = "ESL") -> None:
        self.name = name
        self.malformed = 0  # frames skipped
        self._chunks: list[bytes] = []  # what is not parsed yet, joined only once it can complete a frame
        self._size = 0
        self._need = 0  # bytes the pending frame needs in all

    def feed(self, data: bytes) -> list[Event | Frame]:
        self._chunks.append(data)
        self._size += len(data)
        if self._size < self._need:
            return []  # a big event arriving in small reads: no re-parsing until it is all here
        buf = b"".join(self._chunks) if len(self._chunks) > 1 else data
        self._need = 0
        out: list[Event | Frame] = []
        pos, size = 0, len(buf)
        while pos < size:
            if buf[pos] == 10:  # stray newline between frames
                pos += 1
                continue
            event_envelope = _EVENT_ENVELOPE.match(buf, pos)  # the usual frame, read in one step
            if event_envelope is not None and int(event_envelope[1]) <= MAX_FRAME:
                envelope, n, start = None, int(event_envelope[1]), event_envelope.end()
                kind = _EVENT_TYPES[event_envelope[2] == b"json"]
            else:
                end = buf.find(b"\n\n", pos)
                if end < 0:
                    if size - pos > MAX_ENVELOPE:
                        pos = self._resume(buf, pos, size, "no end of envelope")
                        continue
                    break
                envelope = self._envelope(buf, pos, end)
                if envelope is None:
                    pos = self._resume(buf, pos, end + 2, "garbage instead of a frame")
                    continue
                kind = envelope.get("Content-Type", "")
                length = envelope.get("Content-Length")
                n = 0
                if length is not None:
                    try:
                        n = _length(length)
                    except Malformed as exc:
                        self._skip(str(exc), kind)
                        pos = end + 2
                        continue
                start = end + 2
            if size < start + n:
                self._need = start + n - pos  # the rest of the body is still on its way
                break
            pos = start + n
            if kind in _EVENT_TYPES:
                body = buf[start:pos]
                try:
                    event, taken = decode_plain(body) if kind == "text/event-plain" else decode_json(body)
                except Malformed as exc:
                    self._skip(str(exc), kind)
                    continue
                if taken < n and body[taken:].strip():
                    log.warning(
                        "%s: a %s frame declared %d bytes but its event ended at %d; reading the rest "
                        "as the next frames",
                        self.name,
                        event.get("Event-Name"),
                        n,
                        taken,
                    )
                    pos = start + taken
                out.append(event)
            else:
                assert envelope is not None  # only events take the one-step envelope
                out.append(Frame(kind, envelope, buf[start:pos]))
        rest = buf[pos:]
        self._chunks, self._size = [rest] if rest else [], len(rest)
        return out

    def _envelope(self, buf: bytes, pos: int, end: int) -> dict[str, str] | None:
        """The envelope's headers, or None when these lines are no envelope (no Content-Type)."""
        headers: dict[str, str] = {}
        for line in buf[pos:end].split(b"\n"):
            key, sep, value = line.partition(b": ")
            if not sep or _KEY.fullmatch(key) is None:
                return None
            text = value.decode("utf-8", "replace")
            headers[key.decode()] = unquote(text) if "%" in text else text
        return headers if "Content-Type" in headers else None

    def _resume(self, buf: bytes, pos: int, limit: int, why: str) -> int:
        """Skip garbage: to the next thing that looks like the start of a frame, else to `limit`."""
        found = [i for i in (buf.find(s, pos + 1, limit) for s in _STARTS) if i > 0]
        resume = min(found) if found else limit
        self._skip(f"{why}: {buf[pos : min(resume, pos + 60)]!r}", "")
        return resume

    def _skip(self, why: str, kind: str) -> None:
        self.malformed += 1
        log.warning("%s: skipped a malformed %s (%s)", self.name, kind or "frame", why)
