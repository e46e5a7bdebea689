"""The in-process bus: every subscriber gets its own queue and thread.

A slow subscriber (a database write, a browser) never holds up the adapter that
publishes, nor the other subscribers. Events are delivered in publish order.
"""

from __future__ import annotations

import logging
import queue
import threading

from pbxlink.domain.calls import CallEvent
from pbxlink.domain.ports import Handler

log = logging.getLogger(__name__)

_STOP = object()


class _Subscription:
    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self.handler = handler
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=f"bus-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            assert isinstance(item, CallEvent)
            try:
                self.handler(item)
            except Exception:
                log.exception(
                    "subscriber %s failed on %s event of call %s; continuing with the next event",
                    self.name,
                    item.kind,
                    item.call.call_id,
                )


class InProcessBus:
    """The embedded default: one process, no broker."""

    def __init__(self) -> None:
        self._subs: list[_Subscription] = []
        self._lock = threading.Lock()

    def publish(self, event: CallEvent) -> None:
        for sub in self._subs:
            sub.queue.put(event)

    def subscribe(self, name: str, handler: Handler) -> None:
        with self._lock:
            self._subs = [*self._subs, _Subscription(name, handler)]

    def unsubscribe(self, handler: Handler) -> None:
        with self._lock:
            gone = [s for s in self._subs if s.handler is handler]
            self._subs = [s for s in self._subs if s.handler is not handler]
        for sub in gone:
            sub.queue.put(_STOP)

    def close(self, timeout: float = 5.0) -> None:
        """Stop after every subscriber has handled what was published so far."""
        with self._lock:
            subs, self._subs = self._subs, []
        for sub in subs:
            sub.queue.put(_STOP)
        for sub in subs:
            sub.thread.join(timeout)
