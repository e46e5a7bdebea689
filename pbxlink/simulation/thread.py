"""Running a PBX simulator (AMI or ESL) on its own loop in a background thread, for synchronous tests.

Every method hops onto the simulator's loop and waits for the result, so a test (or a client
on its own loop or gevent hub in another thread) can inject faults without sharing a loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Simulator(Protocol):
    """What both simulators offer: a listening server with its faults, replays and traffic."""

    host: str
    port: int

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def restart(self) -> None: ...
    async def play_capture(self, path: str | Path, speed: float = 1.0) -> int: ...
    def drop_connections(self) -> None: ...
    def go_silent(self) -> None: ...
    def resume(self) -> None: ...
    def inject(self, raw: bytes) -> None: ...
    def start_traffic(self, calls_per_minute: float) -> None: ...
    def stop_traffic(self) -> None: ...


class SimulatorThread:
    def __init__(self, sim: Simulator, timeout: float = 10.0) -> None:
        self.sim, self.timeout = sim, timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self.sim.host

    @property
    def port(self) -> int:
        return self.sim.port

    def start(self) -> tuple[str, int]:
        """Start listening in a daemon thread; returns (host, port) once connections are accepted."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name=f"{type(self.sim).__name__}", daemon=True
        )
        self._thread.start()
        ready.result(self.timeout)
        return self.host, self.port

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self.run(self.sim.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.timeout)
        self._loop = self._thread = None

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a plain function on the simulator's loop and return its result."""
        return self.run(_as_coroutine(fn, *args))

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the simulator's loop and wait for it (default: no time limit)."""
        if self._loop is None:
            raise RuntimeError("simulator thread not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def drop_connections(self) -> None:
        self.call(self.sim.drop_connections)

    def go_silent(self) -> None:
        self.call(self.sim.go_silent)

    def resume(self) -> None:
        self.call(self.sim.resume)

    def inject(self, raw: bytes) -> None:
        self.call(self.sim.inject, raw)

    def restart(self) -> None:
        self.run(self.sim.restart())

    def play_capture(self, path: str | Path, speed: float = 1.0) -> int:
        return self.run(self.sim.play_capture(path, speed))

    def start_traffic(self, calls_per_minute: float) -> None:
        self.call(self.sim.start_traffic, calls_per_minute)

    def stop_traffic(self) -> None:
        self.call(self.sim.stop_traffic)

    def _main(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.sim.start())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        self._loop = loop
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()


async def _as_coroutine(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)
