"""The two `Cache` implementations: in-process (one process) and Redis (shared by several).

A cache only saves work, so it must never cost a call its time: Redis is asked with short
socket timeouts, and when it is unreachable the cache reads as empty and skips writes,
says so once per outage, and tries again every few seconds until Redis is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pbxlink.domain.ports import Cache
from pbxlink.redis_link import RETRY_INTERVAL as REDIS_RETRY_INTERVAL
from pbxlink.redis_link import TIMEOUT as REDIS_TIMEOUT
from pbxlink.redis_link import RedisLink

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds Redis may take to accept a connection or answer one command; longer counts as down.
#: Seconds between attempts to reach a Redis that was found down (calls meanwhile skip it at once).
CLEAR_BATCH = 500


class MemoryCache:
    """`Cache` in this process: thread-safe, with expiry, at most `max_entries` (least recently used go)."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def set(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            if ttl <= 0:
                self._entries.pop(key, None)
                return
            self._entries[key] = (value, self.clock() + ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def clear(self, prefix: str) -> int:
        """Drop the keys under `prefix`; counts only those not yet expired, as Redis does."""
        with self._lock:
            now = self.clock()
            doomed = [k for k in self._entries if k.startswith(prefix)]
            live = sum(1 for k in doomed if self._entries[k][1] > now)
            for key in doomed:
                del self._entries[key]
            return live


class RedisCache:
    """`Cache` in Redis, every key under `prefix`, so one Redis can serve several installations.

    Nothing here raises: Redis down, slow or refusing reads as a miss, and a write is dropped.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "pbxlink:",
        *,
        timeout: float = REDIS_TIMEOUT,
        retry_interval: float = REDIS_RETRY_INTERVAL,
    ) -> None:
        self.prefix = prefix
        # The pool replaces a connection that went stale when Redis restarted, before using it.
        self._link = RedisLink(
            url,
            log,
            "Redis cache",
            "CRM lookups go uncached",
            timeout=timeout,
            retry_interval=retry_interval,
            decode_responses=True,
        )
        self._redis = self._link.redis
        self.where = self._link.where

    @property
    def retry_interval(self) -> float:
        """Seconds between two tries while Redis is down."""
        return self._link.retry_interval

    @retry_interval.setter
    def retry_interval(self, seconds: float) -> None:
        self._link.retry_interval = seconds

    def get(self, key: str) -> str | None:
        value = self._call("get", lambda: self._redis.get(self.prefix + key))
        return value if isinstance(value, str) else None

    def set(self, key: str, value: str, ttl: float) -> None:
        if ttl <= 0:
            self.delete(key)
            return
        ms = max(1, round(ttl * 1000))
        self._call("set", lambda: self._redis.set(self.prefix + key, value, px=ms))

    def delete(self, *keys: str) -> None:
        if keys:
            self._call("delete", lambda: self._redis.unlink(*(self.prefix + k for k in keys)))

    def clear(self, prefix: str) -> int:
        """SCAN + UNLINK in batches: never one blocking command over the whole keyspace."""
        dropped = self._call("clear", lambda: self._clear(self.prefix + prefix))
        return dropped or 0

    def close(self) -> None:
        self._link.close()

    def _clear(self, prefix: str) -> int:
        dropped = 0
        for batch in _batches(self._redis.scan_iter(match=_glob_escape(prefix) + "*", count=CLEAR_BATCH)):
            dropped += int(self._redis.unlink(*batch))
        return dropped

    def _call(self, what: str, command: Callable[[], T]) -> T | None:
        """`command`, or None when Redis is down (then skipped until the next retry time)."""
        return self._link.call(what, command)


def make_cache(redis_url: str | None) -> Cache:
    """Redis when configured (shared by every pbxlink process), else a cache in this process."""
    return RedisCache(redis_url) if redis_url else MemoryCache()


def _glob_escape(text: str) -> str:
    """`text` matched literally by SCAN MATCH."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _batches(keys: Iterator[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= CLEAR_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
