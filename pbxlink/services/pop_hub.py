"""Where screen-pops wait for the browsers: the latest pop per (call, agent), fanned out by extension.

One hub per process, fed by the one screen-pop subscriber; each open pop page is a
`Listener` with a bounded queue. A page that falls too far behind is dropped (its stream
ends, it reconnects and starts over from a snapshot) rather than holding pops in memory
without bound or slowing the others down. Every pop carries `seq`, increasing across the
hub, so a page applies a pop only if it is newer than what it shows.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

Pop = dict[str, Any]

QUEUE_SIZE = 256  # pops a page may fall behind before it is dropped
LINGER = 120.0  # seconds a closed pop stays in the snapshot of a page that (re)connects
MAX_AGE = 6 * 3600.0  # an open pop older than this is forgotten (its call's end was never seen)


class Listener:
    """One open pop page: the pops for its extensions, in order, until it is dropped or closed."""

    def __init__(self, extensions: Iterable[str], limit: int) -> None:
        self.extensions = frozenset(extensions)
        self._limit = limit
        self._items: deque[Pop] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._dropped = False

    @property
    def dropped(self) -> bool:
        """Fell too far behind, or was closed: its stream must end."""
        return self._dropped

    def next(self, timeout: float) -> Pop | None:
        """The next pop, or None when none came within `timeout` or the listener was dropped."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._dropped, timeout)
            if self._dropped or not self._items:
                return None
            return self._items.popleft()

    def offer(self, pop: Pop) -> bool:
        """Queue `pop`; False (and dropped from now on) when the queue is full."""
        with self._cond:
            if self._dropped:
                return False
            if len(self._items) >= self._limit:
                self._drop()
                return False
            self._items.append(pop)
            self._cond.notify()
            return True

    def drop(self) -> None:
        with self._cond:
            self._drop()

    def _drop(self) -> None:
        self._dropped = True
        self._items.clear()
        self._cond.notify_all()


class PopHub:
    """Thread-safe: `publish` from the screen-pop service's threads, `listen`/`snapshot` from the web's."""

    def __init__(
        self,
        queue_size: int = QUEUE_SIZE,
        linger: float = LINGER,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue_size, self.linger, self.max_age = queue_size, linger, max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._pops: dict[str, tuple[float, Pop]] = {}  # key -> (first published at, latest pop), oldest first
        self._closing: deque[tuple[float, str, int]] = deque()  # (closed at, key, seq of the closing pop)
        self._by_ext: dict[str, set[Listener]] = {}

    def publish(self, key: str, pop: Pop) -> Pop:
        """Keep `pop` as the latest under `key` and send it to the listeners of `pop["agent"]`.

        A pop with `closed` true is forgotten `linger` seconds after its last update.
        Returns the pop as sent, with its `seq`.
        """
        now = self._clock()
        with self._lock:
            sent = {**pop, "seq": next(self._seq)}
            held = self._pops.get(key)
            self._pops[key] = (held[0] if held else now, sent)  # an update keeps its place in the order
            if sent.get("closed"):
                self._closing.append((now, key, sent["seq"]))
            self._prune(now)
            slow = [lst for lst in self._by_ext.get(sent["agent"], ()) if not lst.offer(sent)]
            for listener in slow:
                self._remove(listener)
        for listener in slow:
            log.warning(
                "screen-pops: a page for extension(s) %s fell %d pops behind; its stream ends, it reconnects",
                ",".join(sorted(listener.extensions)),
                self.queue_size,
            )
        return sent

    def listen(self, extensions: Iterable[str]) -> Listener:
        """A new listener for `extensions`; take the `snapshot` after this so no pop falls in between."""
        listener = Listener(extensions, self.queue_size)
        with self._lock:
            for ext in listener.extensions:
                self._by_ext.setdefault(ext, set()).add(listener)
        return listener

    def snapshot(self, extensions: Iterable[str]) -> list[Pop]:
        """The pops held for `extensions` (open, and closed within `linger`), oldest first."""
        wanted = frozenset(extensions)
        with self._lock:
            self._prune(self._clock())
            return [pop for _, pop in self._pops.values() if pop["agent"] in wanted]

    def close(self, listener: Listener) -> None:
        listener.drop()
        with self._lock:
            self._remove(listener)

    @property
    def listeners(self) -> int:
        with self._lock:
            return len({lst for group in self._by_ext.values() for lst in group})

    def __len__(self) -> int:
        with self._lock:
            return len(self._pops)

    def _remove(self, listener: Listener) -> None:
        for ext in listener.extensions:
            group = self._by_ext.get(ext)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._by_ext[ext]

    def _prune(self, now: float) -> None:
        while self._closing and self._closing[0][0] <= now - self.linger:
            _, key, seq = self._closing.popleft()
            held = self._pops.get(key)
            if held is not None and held[1]["seq"] == seq:  # not updated since it closed
                del self._pops[key]
        while self._pops:
            key, (first, _) = next(iter(self._pops.items()))
            if first > now - self.max_age:
                break
            del self._pops[key]
