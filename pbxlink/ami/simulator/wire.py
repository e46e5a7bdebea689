"""Wire pieces the AMI simulator shares: message encoding, event frames, permission classes.

Kept apart from `protocol.py` (the client's parser) on purpose: the simulator writes what
Asterisk writes, and must not inherit the client's assumptions about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pbxlink.ami.protocol import PERMISSION_CLASSES

CRLF = b"\r\n"
Headers = list[tuple[str, str]]

ALL_CLASSES = frozenset(PERMISSION_CLASSES)
#: Q.850 cause texts of the causes the simulator emits.
CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    26: "Answered elsewhere",
    127: "Interworking, unspecified",
}
_TRUE = {"yes", "true", "y", "t", "1", "on"}
_FALSE = {"no", "false", "n", "f", "0", "off"}


def encode(headers: Iterable[tuple[str, str]]) -> bytes:
    """One AMI message: `Name: value` lines in order, each CRLF-terminated, then the blank line."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode() + CRLF


def is_true(value: str) -> bool:
    """Asterisk's ast_true: yes, true, y, t, 1, on (any case)."""
    return value.strip().lower() in _TRUE


def parse_classes(spec: str) -> frozenset[str]:
    """A manager.conf permission list (`system,call`, `all`, `none`) as the classes it grants."""
    names = {part.strip().lower() for part in spec.split(",") if part.strip()}
    if "all" in names:
        return ALL_CLASSES
    return frozenset(names & ALL_CLASSES)


def event_mask(spec: str) -> frozenset[str] | None:
    """An `Events:`/`EventMask:` value as Asterisk's strings_to_mask reads it; None when empty.

    Digits are a bitmask, yes/on/true mean every class, no/off/false none, else a class list.
    """
    spec = spec.strip()
    if not spec:
        return None
    if spec.isdigit():
        bits = int(spec)
        return frozenset(name for bit, name in enumerate(PERMISSION_CLASSES) if bits >> bit & 1)
    if spec.lower() in _FALSE:
        return frozenset()
    if spec.lower() in _TRUE:
        return ALL_CLASSES
    return parse_classes(spec)


def authority_text(classes: frozenset[str]) -> str:
    """How `manager show user` prints a permission set (`all` only when every class is granted)."""
    names = [name for name in PERMISSION_CLASSES if name in classes]
    if classes >= ALL_CLASSES:
        names.append("all")
    return ",".join(names) or "<none>"


def event_classes(privilege: str) -> frozenset[str]:
    """The classes an event belongs to. Asterisk appends `all` to every Privilege; it grants nothing."""
    return frozenset(p.strip().lower() for p in privilege.split(",") if p.strip().lower() != "all")


def format_timestamp(ts: float) -> str:
    """`<epoch>.<6-digit micro>`, as Asterisk prints event and Pong timestamps."""
    return f"{ts:.6f}"


def first_values(text: str) -> dict[str, str]:
    """Header → first value of one message (repeated headers such as ChanVariable keep the first)."""
    fields: dict[str, str] = {}
    for line in text.split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep and name not in fields:
            fields[name] = value
    return fields


@dataclass(frozen=True, slots=True)
class WireEvent:
    """A broadcast event split where Asterisk puts `Timestamp:` (the third line), rendered once per send.

    `head` is the `Event:` and `Privilege:` lines, `body` the rest up to and including the
    blank line; `timestamp` is the Timestamp the event came with (captures), if any.
    """

    head: bytes
    body: bytes
    timestamp: float | None
    classes: frozenset[str]
    fields: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.fields.get("Event", "")

    @classmethod
    def from_headers(cls, headers: Headers) -> WireEvent:
        """An event built by the simulator: headers start with Event and Privilege, carry no Timestamp."""
        if len(headers) < 2 or headers[0][0] != "Event" or headers[1][0] != "Privilege":
            raise ValueError(f"an event starts with Event and Privilege, not {headers[:2]!r}")
        fields: dict[str, str] = {}
        for name, value in headers:
            fields.setdefault(name, value)
        return cls(encode(headers[:2])[:-2], encode(headers[2:]), None, event_classes(headers[1][1]), fields)

    @classmethod
    def from_raw(cls, raw: bytes) -> WireEvent:
        """An event exactly as captured; its bytes are kept, only the Timestamp line is lifted out."""
        event_line, privilege_line, rest = raw.split(CRLF, 2)
        timestamp = None
        if rest.startswith(b"Timestamp: "):
            ts_line, rest = rest.split(CRLF, 1)
            timestamp = float(ts_line[len(b"Timestamp: ") :])
        head = event_line + CRLF + privilege_line + CRLF
        fields = first_values(raw.decode("utf-8", errors="replace"))
        return cls(head, rest, timestamp, event_classes(fields.get("Privilege", "")), fields)

    def render(self, timestamp: float | None) -> bytes:
        """The frame on the wire, with `Timestamp:` as third line when timestampevents is on."""
        if timestamp is None:
            return self.head + self.body
        return self.head + b"Timestamp: " + format_timestamp(timestamp).encode() + CRLF + self.body


class ActionRequest:
    """An action as a client sent it. Header names match case-insensitively, first match wins (Asterisk)."""

    __slots__ = ("headers",)

    def __init__(self, headers: Headers) -> None:
        self.headers = headers

    def get(self, name: str) -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), "")

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    @property
    def action(self) -> str:
        return self.get("Action")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def id_header(self) -> Headers:
        """`ActionID: x` when the client sent one; Asterisk omits the header otherwise."""
        return [("ActionID", self.action_id)] if self.action_id else []

    def respond(self, status: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
        """`Response:` then the client's ActionID then the rest, as astman_send_response writes them."""
        return encode([("Response", status), *self.id_header(), *headers])


def parse_request(lines: list[str]) -> ActionRequest:
    """The `Name: value` lines of one action (the colon may lack its space; other lines are ignored)."""
    headers: Headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.lstrip(" ")))
    return ActionRequest(headers)
