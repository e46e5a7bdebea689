"""Loading a real ESL capture for replay: `<name>.esl` (or `.json.esl`) bytes and its `.io.jsonl` timing.

The captures (tests/fixtures/freeswitch/) are byte-exact recordings of what a FreeSWITCH 1.10.12
sent one inbound ESL client. The receive time of each frame comes from the timing sidecar (the
`recv()` chunk its last byte arrived in), so a replay keeps the recorded pace, and the event
format (plain or json) from the frames themselves.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path

from pbxlink.esl.simulator.event import EslEvent
from pbxlink.esl.simulator.wire import Frame, FrameReader

#: What a replay leaves out: the capture client's own session, not the PBX's events.
SESSION_TYPES = frozenset({"auth/request", "command/reply", "api/response", "text/disconnect-notice"})


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    recv_ts: float
    event: EslEvent


@dataclass(frozen=True)
class Capture:
    name: str
    fmt: str  # plain / json: what the capture client subscribed to
    frames: tuple[tuple[float, Frame], ...]

    @classmethod
    def load(cls, path: str | Path) -> Capture:
        """Load from the `.esl` path (its `.io.jsonl` sidecar sits beside it)."""
        esl = Path(path)
        if esl.suffix != ".esl":
            raise ValueError(f"{esl}: not an .esl capture")
        raw = esl.read_bytes()
        reader = FrameReader()
        frames = reader.feed(raw)
        if reader.pending:
            raise ValueError(f"{esl}: {reader.pending} trailing bytes are not a whole frame")
        ends, times = _recv_chunks(esl.with_name(esl.name + ".io.jsonl"), len(raw))
        timed, position = [], 0
        for frame in frames:
            position += frame.size
            timed.append((times[bisect.bisect_left(ends, position)], frame))
        types = {frame.content_type for frame in frames}
        fmt = "json" if "text/event-json" in types else "plain"
        return cls(esl.name.removesuffix(".esl").removesuffix(".json"), fmt, tuple(timed))

    def events(self) -> list[CapturedEvent]:
        """The PBX's events in the order received: what a replay emits.

        Replies to the capture client's commands, its auth/request and its disconnect notice are
        left out; the simulator writes its own to each of its clients.
        """
        out = []
        for recv_ts, frame in self.frames:
            if frame.content_type in SESSION_TYPES:
                continue
            event = frame.event()
            if event is None:
                raise ValueError(f"{self.name}: unexpected frame {frame.content_type!r}")
            out.append(CapturedEvent(recv_ts, event))
        return out

    def is_inbound(self) -> bool:
        """Whether this is an inbound-ESL capture (outbound_socket*.esl is the socket app's side)."""
        return bool(self.frames) and self.frames[0][1].content_type == "auth/request"


def _recv_chunks(path: Path, size: int) -> tuple[list[int], list[float]]:
    """End offsets and receive times of the capture's recv() chunks, which must cover the file."""
    ends, times, position = [], [], 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("dir") != "recv":
                continue
            if row["offset"] != position:
                raise ValueError(f"{path}: chunk at {row['offset']} does not follow {position}")
            position += row["len"]
            ends.append(position)
            times.append(row["t"])
    if position != size:
        raise ValueError(f"{path}: chunks cover {position} bytes of {size}")
    return ends, times
