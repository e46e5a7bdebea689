"""Generated calls as both simulators play them: timelines of events with their expected outcome."""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

E = TypeVar("E")  # one event as the simulator's wire layer holds it (AMI headers, an EslEvent)


@dataclass(frozen=True)
class ExpectedCall:
    """What a tracker must derive from a generated call (names as in pbxlink.domain.calls.CallRecord)."""

    call_id: str
    direction: str
    caller: str | None
    caller_name: str | None
    callee: str | None
    agent: str | None
    agents: list[str]
    queue: str | None
    disposition: str  # answered / missed
    miss_reason: str | None  # no_answer / busy / abandoned
    hangup_by: str | None  # customer / agent / system; None while the call is up
    wait_seconds: float
    talk_seconds: float | None  # None while the call is up
    recording: str | None
    started_at: float
    ended: bool = True
    origin: str | None = None  # the tag of the pbxlink originate that placed the call
    amd: str | None = None  # what answering-machine detection made of the answering party

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallTimeline(Generic[E]):
    """One call: `events` are (seconds since `start`, event); `expected` is its outcome."""

    start: float
    events: list[tuple[float, E]]
    expected: ExpectedCall
    uuids: frozenset[str] = frozenset()  # every channel of the call, so a hangup from outside can stop it

    @property
    def call_id(self) -> str:
        return self.expected.call_id


@dataclass(frozen=True)
class BulkStream:
    blob: bytes
    events: int
    calls: list[ExpectedCall]


def merge(timelines: Iterable[CallTimeline[E]]) -> list[tuple[float, E]]:
    """Every event of overlapping calls in time order, with absolute (epoch) times."""
    return list(heapq.merge(*map(_absolute, timelines), key=lambda item: item[0]))


def _absolute(timeline: CallTimeline[E]) -> Iterator[tuple[float, E]]:
    return ((timeline.start + offset, event) for offset, event in timeline.events)


def split_chunks(blob: bytes, max_chunk: int = 65536, seed: int = 0) -> list[bytes]:
    """Cut `blob` at arbitrary byte positions, and on purpose inside multibyte UTF-8 characters and `%XX`.

    A reader that decodes each chunk on its own loses those characters: the test of that. AMI and
    ESL json frames carry them raw; ESL plain frames url-encode them, so there the cuts land inside
    the escapes.
    """
    rng = random.Random(seed)
    cuts = {len(blob)}
    position = 0
    while position < len(blob):
        position += rng.randint(1, max_chunk)
        cuts.add(min(position, len(blob)))
    for n, lead in enumerate(re.finditer(rb"[\xc2-\xf4]|%[0-9A-F]{2}", blob)):
        if n % 7 == 0:
            cuts.add(lead.start() + 1)
    bounds = sorted(cuts)
    return [blob[a:b] for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]
