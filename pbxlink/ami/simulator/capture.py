"""Loading a real AMI capture for replay: `<name>.ami` bytes, `.jsonl` message index, `.timing.jsonl`.

The captures (tests/fixtures/asterisk/) are byte-exact recordings of a real Asterisk 22;
the simulator replays their events so the client and tracker meet the real thing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Events Asterisk sends to the session that just logged in; a replay's own login makes its own.
LOGIN_EVENTS = frozenset({"FullyBooted", "SuccessfulAuth"})


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    """One message as received: its bytes, its receive time, its parsed headers from the index."""

    seq: int
    kind: str  # banner / response / event
    recv_ts: float
    raw: bytes
    fields: Mapping[str, str | list[str]]

    @property
    def event(self) -> str | None:
        value = self.fields.get("Event")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Chunk:
    """One recv() of the capture client: the byte-accurate delivery timeline."""

    recv_ts: float
    offset: int
    length: int
    eof: bool


@dataclass(frozen=True)
class Capture:
    name: str
    messages: tuple[CapturedMessage, ...]
    chunks: tuple[Chunk, ...]

    @classmethod
    def load(cls, path: str | Path) -> Capture:
        """Load a capture from its `.ami` path (or the path without suffix, or its `.jsonl`)."""
        ami = _ami_path(Path(path))
        stem = ami.with_suffix("")
        raw = ami.read_bytes()
        index = _read_jsonl(stem.with_name(stem.name + ".jsonl"))
        timing = _read_jsonl(stem.with_name(stem.name + ".timing.jsonl"))
        messages = tuple(_message(row, raw) for row in index)
        chunks = tuple(
            Chunk(row["recv_ts"], row["offset"], row["len"], bool(row.get("eof"))) for row in timing
        )
        _check_coverage(ami, raw, [(m["offset"], m["length"]) for m in index])
        _check_coverage(ami, raw, [(c.offset, c.length) for c in chunks])
        return cls(stem.name, messages, chunks)

    def replay_events(self) -> list[CapturedMessage]:
        """The PBX's broadcast events in order: what a replay emits.

        Left out: the banner and responses (they answered the capture client's actions), list
        items (no Privilege: they answered its list actions too) and the FullyBooted and
        SuccessfulAuth of its own login, which the simulator produces for each of its clients.
        """
        events: list[CapturedMessage] = []
        for message in self.messages:
            if message.kind != "event" or "Privilege" not in message.fields:
                continue
            if not events and message.event in LOGIN_EVENTS:
                continue
            events.append(message)
        return events


def _ami_path(path: Path) -> Path:
    if path.suffix == ".ami":
        return path
    name = path.name.removesuffix(".jsonl").removesuffix(".timing")
    return path.with_name(name + ".ami")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _message(row: Mapping[str, Any], raw: bytes) -> CapturedMessage:
    start, length = row["offset"], row["length"]
    return CapturedMessage(
        row["seq"], row["kind"], row["recv_ts"], raw[start : start + length], row["fields"]
    )


def _check_coverage(ami: Path, raw: bytes, ranges: list[tuple[int, int]]) -> None:
    """The index's byte ranges must be contiguous and cover the file: otherwise it is not this capture."""
    position = 0
    for offset, length in ranges:
        if offset != position:
            raise ValueError(f"{ami}: byte range at {offset} does not follow {position}")
        position += length
    if position != len(raw):
        raise ValueError(f"{ami}: index covers {position} bytes of {len(raw)}")
