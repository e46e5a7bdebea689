"""What both simulator servers do alike: sessions, generated traffic, bulk blasts and faults."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol, Self

from pbxlink.simulation.timeline import CallTimeline, split_chunks

log = logging.getLogger("pbxlink.simulation")


class Session(Protocol):
    peer: tuple[str, int]

    async def run(self) -> None: ...
    async def blast(self, chunks: list[bytes]) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...
    def write_raw(self, raw: bytes) -> None: ...


class Player(Protocol):
    async def run_call(self, timeline: CallTimeline[Any], speed: float, delay: float = 0.0) -> None: ...


class Traffic(Protocol):
    agents: Any

    def next_call(self, start: float) -> CallTimeline[Any]: ...

    @property
    def rng(self) -> Any: ...


class SimulatorServer:
    """A PBX simulator's server side; the subclass brings its protocol's session, player and traffic."""

    host: str
    port: int
    silent: bool
    call_speed: float
    bulk_chunk: int
    bulk_close: bool
    synthetic: Traffic
    player: Player
    _sessions: set[Any]
    _tasks: set[asyncio.Task[Any]]
    _traffic: tuple[asyncio.Task[Any], float] | None

    def _new_session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Session:
        raise NotImplementedError

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def play_timelines(self, timelines: Iterable[CallTimeline[Any]], speed: float = 1.0) -> None:
        """Run generated calls, each starting at its `start` relative to the first, until all end."""
        timelines = list(timelines)
        if not timelines:
            return
        base = min(tl.start for tl in timelines)
        scale = 0.0 if speed in (0, math.inf) else 1.0 / speed
        tasks = [self.spawn(self.player.run_call(tl, speed, (tl.start - base) * scale)) for tl in timelines]
        await asyncio.gather(*tasks, return_exceptions=True)

    def start_traffic(self, calls_per_minute: float) -> None:
        """Generated calls arriving at `calls_per_minute` (Poisson) until stop_traffic."""
        self.stop_traffic()
        self._traffic = (self.spawn(self._traffic_loop(calls_per_minute)), calls_per_minute)
        log.info(
            "synthetic traffic: %s calls/min over %d agents", calls_per_minute, len(self.synthetic.agents)
        )

    def stop_traffic(self) -> None:
        if self._traffic:
            self._traffic[0].cancel()
            self._traffic = None

    def drop_connections(self) -> None:
        """Close every client socket abruptly."""
        log.info("fault: dropping %d connections", len(self._sessions))
        for session in list(self._sessions):
            session.abort()

    def go_silent(self) -> None:
        """Send nothing at all (events, replies, pongs, heartbeats) while keeping sockets open: a hung PBX."""
        log.info("fault: silent")
        self.silent = True

    def resume(self) -> None:
        log.info("fault: resumed")
        self.silent = False

    def inject(self, raw: bytes) -> None:
        """Write raw bytes (garbage, truncated frames, bad encodings, huge events) to every client."""
        log.info("fault: injecting %d bytes", len(raw))
        for session in list(self._sessions):
            session.write_raw(raw)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = self._new_session(reader, writer)
        self._sessions.add(session)
        log.info("%s:%d connected", *session.peer)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            log.info("%s:%d disconnected", *session.peer)

    async def _traffic_loop(self, calls_per_minute: float) -> None:
        """Arrivals on the calls' own clock (sped up by `call_speed`), so agents free up in step."""
        at = time.time()
        while True:
            call = self.synthetic.next_call(at)
            log.debug("call %s: %s", call.call_id, call.expected)
            self.spawn(self.player.run_call(call, self.call_speed))
            gap = self.synthetic.rng.expovariate(calls_per_minute / 60.0)
            at += gap
            await asyncio.sleep(gap / self.call_speed)

    async def _blast(self, session: Session, blob: bytes) -> None:
        log.info("bulk: sending %d bytes to %s:%d", len(blob), *session.peer)
        await session.blast(split_chunks(blob, self.bulk_chunk))
        if self.bulk_close:
            session.close()
