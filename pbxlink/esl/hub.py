"""A thread with a gevent hub of its own, and the one bridge into it from other threads.

greenswitch needs gevent, and pbxlink does not monkey-patch: everything gevent (sockets,
greenlets, events) is created and used inside this thread only. Other threads hand it work
with `hub.loop.run_callback_threadsafe` and wait on a `concurrent.futures.Future`; results
go back out through those futures (or the plain thread-safe callables the work calls).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

import gevent
import gevent.event
import gevent.hub

log = logging.getLogger(__name__)

T = TypeVar("T")


class HubThread:
    """`start()` runs `main(stopping)` on a fresh hub in a daemon thread; `stop()` sets `stopping`."""

    def __init__(self, name: str, main: Callable[[gevent.event.Event], None]) -> None:
        self.name = name
        self._main = main
        self._thread: threading.Thread | None = None
        self._hub: gevent.hub.Hub | None = None
        self._stopping: gevent.event.Event | None = None  # made on the hub, as every gevent object

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self.name, daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self, on_stop: Callable[[], None], timeout: float) -> None:
        """Set `stopping` and run `on_stop` in a greenlet (to close what `main` waits on), then join."""
        thread, hub = self._thread, self._hub
        if thread is None:
            return
        stopping = self._stopping
        if hub is not None and stopping is not None:

            def halt() -> None:
                stopping.set()
                gevent.spawn(on_stop)

            hub.loop.run_callback_threadsafe(halt)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s: the thread did not stop within %.1fs", self.name, timeout)
        self._thread = None

    def call(self, fn: Callable[[], T], timeout: float) -> T:
        """Run `fn` in a greenlet on the hub and wait here for its result (or its exception).

        Raises ConnectionError when the thread is not running, TimeoutError when the hub does
        not answer in `timeout`, RuntimeError when called from the hub's own thread (it would
        wait on itself).
        """
        hub = self._hub
        if hub is None:
            raise ConnectionError(f"{self.name}: not running")
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self.name}: call() is for other threads; on the hub, call directly")
        done: Future[T] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except Exception as exc:
                done.set_exception(exc)

        try:
            hub.loop.run_callback_threadsafe(gevent.spawn, run)
        except Exception:  # the thread ended and its hub with it
            raise ConnectionError(f"{self.name}: not running") from None
        try:
            return done.result(timeout)
        except TimeoutError:
            if done.done():
                raise  # fn's own TimeoutError
            raise TimeoutError(f"{self.name}: the hub did not answer in {timeout:g}s") from None

    def _run(self, ready: threading.Event) -> None:
        hub = gevent.get_hub()  # this thread's own
        self._stopping = gevent.event.Event()
        self._hub = hub
        ready.set()
        try:
            self._main(self._stopping)
        finally:
            self._hub = None
            hub.destroy(destroy_loop=True)
