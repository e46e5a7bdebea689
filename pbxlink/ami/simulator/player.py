"""Playing event timelines onto the simulator: captures at their recorded pace, generated calls.

Timestamps keep the original spacing, shifted to now, so durations derived from them stay
exact even when the pace is sped up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pbxlink.ami.simulator.capture import Capture
from pbxlink.ami.simulator.wire import WireEvent
from pbxlink.simulation.timeline import CallTimeline

log = logging.getLogger("pbxlink.ami.simulator")
Emit = Callable[[WireEvent, float], None]
OnEmit = Callable[[WireEvent], None]
#: (pace time, event, original time): when to send it, what, and the time its Timestamp derives from
Item = tuple[float, WireEvent, float]


class Player:
    """Paces timelines onto `emit`; knows the running generated calls so Hangup and restart can stop them."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.calls: dict[str, asyncio.Task[Any]] = {}
        self.generation = 0  # bumped by interrupt(): what was playing before stops

    def interrupt(self) -> None:
        """A restart: running calls are cancelled, captures stop before their next event."""
        self.generation += 1
        for call in list(self.calls.values()):
            call.cancel()

    def drop_call(self, call_id: str) -> None:
        """Forget the rest of a generated call (it was hung up from outside)."""
        if call := self.calls.pop(call_id, None):
            call.cancel()

    async def play_capture(self, path: str | Path, speed: float) -> int:
        capture = Capture.load(path)
        messages = capture.replay_events()
        events = [WireEvent.from_raw(m.raw) for m in messages]
        log.info("replaying %s: %d events at speed %s", capture.name, len(events), speed)
        items = [
            (m.recv_ts, e, e.timestamp if e.timestamp is not None else m.recv_ts)
            for m, e in zip(messages, events, strict=True)
        ]
        played = await self.play(items, speed)
        log.info("replay of %s done: %d events", capture.name, played)
        return played

    async def run_call(
        self, timeline: CallTimeline, speed: float, delay: float = 0.0, on_emit: OnEmit | None = None
    ) -> None:
        """One generated call, `delay` seconds from now."""
        await asyncio.sleep(delay)
        task = asyncio.current_task()
        assert task is not None
        self.calls[timeline.call_id] = task
        try:
            await self.play([(t, WireEvent.from_headers(h), t) for t, h in timeline.events], speed, on_emit)
        finally:
            self.calls.pop(timeline.call_id, None)

    async def play(self, items: list[Item], speed: float, on_emit: OnEmit | None = None) -> int:
        """Emit `items` at their pace / `speed` (0 or inf: flat out); returns how many went out."""
        if not items:
            return 0
        generation, loop = self.generation, asyncio.get_running_loop()
        start_loop, start_epoch = loop.time(), time.time()
        pace_base, orig_base = items[0][0], items[0][2]
        for n, (pace, event, orig) in enumerate(items):
            if speed in (0, math.inf):
                if n % 256 == 255:
                    await asyncio.sleep(0)  # let clients and other calls run
            elif (delay := start_loop + (pace - pace_base) / speed - loop.time()) > 0:
                await asyncio.sleep(delay)
            if generation != self.generation:
                return n
            self._emit(event, start_epoch + (orig - orig_base))
            if on_emit:
                on_emit(event)
        return len(items)
