"""Playing event timelines onto the simulator: captures at their recorded pace, generated calls.

A replayed capture keeps its events' spacing in time, moved to now by whole seconds (every
time-valued header alike), so durations derived from them stay exact even when the pace is sped up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pbxlink.esl.simulator.capture import Capture
from pbxlink.esl.simulator.event import EslEvent
from pbxlink.esl.simulator.stamp import event_time, shift
from pbxlink.simulation.timeline import CallTimeline

log = logging.getLogger("pbxlink.esl.simulator")
Emit = Callable[[EslEvent], None]
OnEmit = Callable[[EslEvent], None]


class Player:
    """Paces timelines onto `emit`; knows the running generated calls so a hangup or restart can stop them."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.calls: dict[str, asyncio.Task[Any]] = {}  # channel uuid -> the task playing its call
        self.generation = 0  # bumped by interrupt(): what was playing before stops

    def interrupt(self) -> None:
        """A restart: running calls are cancelled, captures stop before their next event."""
        self.generation += 1
        for call in set(self.calls.values()):
            call.cancel()

    def drop_call(self, uuid: str) -> None:
        """Forget the rest of the generated call a channel belongs to (it was hung up from outside)."""
        if call := self.calls.get(uuid):
            call.cancel()

    def legs_of(self, uuid: str) -> list[str]:
        """The other channels of the generated call `uuid` belongs to."""
        call = self.calls.get(uuid)
        return [other for other, task in self.calls.items() if task is call and other != uuid] if call else []

    async def play_capture(self, path: str | Path, speed: float) -> int:
        capture = Capture.load(path)
        events = capture.events()
        log.info("replaying %s (%s): %d events at speed %s", capture.name, capture.fmt, len(events), speed)
        items = [(e.recv_ts, e.event) for e in events]
        played = await self.play(items, speed, _seconds_to_now(events[0].event) if events else 0)
        log.info("replay of %s done: %d events", capture.name, played)
        return played

    async def run_call(
        self, timeline: CallTimeline, speed: float, delay: float = 0.0, on_emit: OnEmit | None = None
    ) -> None:
        """One generated call, `delay` seconds from now."""
        task = asyncio.current_task()
        assert task is not None
        for uuid in timeline.uuids:
            self.calls[uuid] = task
        try:
            await asyncio.sleep(delay)
            first = timeline.events[0][1] if timeline.events else None
            offset = _seconds_to_now(first) if first else 0
            await self.play(list(timeline.events), speed, offset, on_emit)
        finally:
            for uuid in timeline.uuids:
                if self.calls.get(uuid) is task:
                    del self.calls[uuid]

    async def play(
        self,
        items: list[tuple[float, EslEvent]],
        speed: float,
        offset: int = 0,
        on_emit: OnEmit | None = None,
    ) -> int:
        """Emit `items` (pace time, event) at their pace / `speed` (0 or inf: flat out), times moved by
        `offset` seconds; returns how many went out."""
        if not items:
            return 0
        generation, loop = self.generation, asyncio.get_running_loop()
        start, base = loop.time(), items[0][0]
        for n, (pace, event) in enumerate(items):
            if speed in (0, math.inf):
                if n % 256 == 255:
                    await asyncio.sleep(0)  # let clients and other calls run
            elif (delay := start + (pace - base) / speed - loop.time()) > 0:
                await asyncio.sleep(delay)
            if generation != self.generation:
                return n
            event = shift(event, offset)
            self._emit(event)
            if on_emit:
                on_emit(event)
        return len(items)


def _seconds_to_now(event: EslEvent) -> int:
    """Whole seconds that move this event's time to now (0 for one that happens now)."""
    at = event_time(event)
    return 0 if at is None else round(time.time() - at)
