"""FreeSWITCH events as the simulator keeps them, and the three shapes FreeSWITCH writes them in.

An event is its headers in FreeSWITCH's order (duplicates allowed: CHANNEL_HANGUP_COMPLETE carries
Hangup-Cause twice) plus an optional body. `plain()` follows switch_event_serialize (url-encoded
values, `_undef_` for an empty one, `ARRAY::a|:b` for an array, the body after its own
Content-Length), `json()` follows switch_event_serialize_json (cJSON: duplicate keys kept, arrays
as lists, `Content-Length` and `_body` last) and `xml()` switch_event_xmlize. Both the plain and
the json captures re-render byte for byte from what `parse_plain`/`parse_json` read.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote
from xml.sax.saxutils import escape

Value = str | tuple[str, ...]
Headers = list[tuple[str, Value]]

#: switch_url_encode: control and non-ASCII bytes, SWITCH_URL_UNSAFE, and `%` unless it already
#: starts a `%XX` escape (FreeSWITCH does not double-encode).
_UNSAFE = re.compile(rb'%(?![0-9A-F]{2})|[^\x20-\x7e]|[\r\n #&+:;<=>?@\[\\\]^`{|}"]')
_MAYBE_UNSAFE = re.compile(r'[^\x21-\x7e]|[#%&+:;<=>?@\[\\\]^`{|}"]')
_ARRAY = "ARRAY::"


def url_encode(value: str) -> str:
    if _MAYBE_UNSAFE.search(value) is None:
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return _UNSAFE.sub(lambda m: b"%%%02X" % m.group()[0], raw).decode("ascii")


def url_decode(value: str) -> str:
    return unquote(value, errors="surrogateescape") if "%" in value else value


def _joined(value: Value) -> str:
    return value if isinstance(value, str) else _ARRAY + "|:".join(value)


def _split(value: str) -> Value:
    return tuple(value[len(_ARRAY) :].split("|:")) if value.startswith(_ARRAY) else value


def _dumps(value: Value) -> str:
    return json.dumps(
        value if isinstance(value, str) else list(value), ensure_ascii=False, separators=(",", ":")
    )


class EslEvent:
    """One event: `headers` in order (values decoded) and `body` (BACKGROUND_JOB's result, say)."""

    __slots__ = ("_index", "body", "headers")

    def __init__(self, headers: Headers, body: str | None = None) -> None:
        self.headers = headers
        self.body = body
        self._index: dict[str, Value] | None = None

    def get(self, name: str) -> str | None:
        """The first value of `name`, matched case-insensitively as switch_event_get_header does."""
        if self._index is None:
            index: dict[str, Value] = {}
            for key, value in self.headers:
                index.setdefault(key.lower(), value)
            self._index = index
        found = self._index.get(name.lower())
        return None if found is None else _joined(found)

    @property
    def name(self) -> str:
        return self.get("Event-Name") or ""

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    def __repr__(self) -> str:
        return f"EslEvent({self.name} {self.subclass or ''} {self.unique_id or ''})"

    def plain(self) -> bytes:
        lines = [f"{key}: {url_encode(_joined(value)) or '_undef_'}\n" for key, value in self.headers]
        if self.body:
            lines.append(f"Content-Length: {len(self.body.encode())}\n\n{self.body}")
        else:
            lines.append("\n")
        return "".join(lines).encode("utf-8", "surrogateescape")

    def json(self) -> bytes:
        items = [f"{_dumps(key)}:{_dumps(value)}" for key, value in self.headers]
        if self.body is not None:
            items.append(f'"Content-Length":"{len(self.body.encode())}"')
            items.append(f'"_body":{_dumps(self.body)}')
        return ("{" + ",".join(items) + "}").encode("utf-8", "surrogateescape")

    def xml(self) -> bytes:
        lines = ["<event>", "  <headers>"]
        for key, value in self.headers:
            for item in (value,) if isinstance(value, str) else value:
                lines.append(f"    <{key}>{escape(url_encode(item))}</{key}>")
        lines.append("  </headers>")
        if self.body:
            lines.append(f"  <Content-Length>{len(self.body.encode())}</Content-Length>")
            lines.append(f"  <body>{escape(self.body)}</body>")
        lines.append("</event>")
        return "\n".join(lines).encode("utf-8", "surrogateescape")

    def render(self, fmt: str) -> bytes:
        """The event as one frame on the wire, in `fmt` (plain, json or xml)."""
        text = self.json() if fmt == "json" else self.xml() if fmt == "xml" else self.plain()
        return b"Content-Length: %d\nContent-Type: text/event-%s\n\n" % (len(text), fmt.encode()) + text


def parse_plain(text: bytes) -> EslEvent:
    """A text/event-plain body: url-encoded `Name: value` lines, then the body after its Content-Length."""
    head, _, rest = text.partition(b"\n\n")
    headers: Headers = []
    body = None
    for line in head.decode("utf-8", "surrogateescape").split("\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        if key == "Content-Length":
            body = rest[: int(value)].decode("utf-8", "surrogateescape")
        else:
            headers.append((key, _split(url_decode(value))))
    return EslEvent(headers, body)


def parse_json(text: bytes) -> EslEvent:
    """A text/event-json body: one object, duplicate keys kept, body under `_body`."""
    pairs = json.loads(text.decode("utf-8", "surrogateescape"), object_pairs_hook=list)
    headers: Headers = []
    body = None
    for key, value in pairs:
        if key == "_body":
            body = value
        elif key == "Content-Length" and any(k == "_body" for k, _ in pairs):
            continue
        else:
            headers.append((key, value if isinstance(value, str) else tuple(value)))
    return EslEvent(headers, body)
