"""Fixed-window rate limits, counted in Redis (shared by every web process) or in this process.

A window is aligned to the epoch (a day limit restarts at midnight UTC), so every process
counts in the same buckets and one Redis round trip (INCR + PEXPIREAT per limit, in one
MULTI) both counts and checks. A refused request counts too: a client that keeps hammering
stays refused until its window ends. Subjects (addresses, numbers) are hashed before they
become keys, so Redis holds no personal data.

When Redis fails, the limits are still enforced, by this process's own counters, until Redis
answers again: a limiter that fails open is no limiter while an attack is taking Redis down.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pbxlink.redis_link import RETRY_INTERVAL as REDIS_RETRY_INTERVAL
from pbxlink.redis_link import TIMEOUT as REDIS_TIMEOUT
from pbxlink.redis_link import RedisLink

log = logging.getLogger(__name__)

MAX_MEMORY_KEYS = 100_000  # beyond this the oldest windows are forgotten (each key is ~200 bytes)
PRUNE_INTERVAL = 60.0  # seconds between sweeps of the ended windows
FULL_WARNING_INTERVAL = 3600.0  # seconds between two warnings that the in-memory counters are full


@dataclass(frozen=True)
class Limit:
    """At most `count` requests per `window` seconds for one subject of `scope` ("ip", "number")."""

    scope: str
    count: int
    window: float

    def describe(self) -> str:
        per = {60.0: "minute", 3600.0: "hour", 86400.0: "day"}.get(self.window, f"{self.window:g} s")
        return f"{self.count} per {per}"


@dataclass(frozen=True)
class Verdict:
    """What one request got: `wait` seconds to go (0 = allowed) and the limit that refused it."""

    wait: float = 0.0
    limit: Limit | None = None
    #: the request that crossed the limit (log that one, not the thousands after it)
    first_refusal: bool = False

    @property
    def allowed(self) -> bool:
        return self.limit is None

    @property
    def retry_after(self) -> int:
        """`wait` in whole seconds, at least 1, as the Retry-After header wants it."""
        return max(1, math.ceil(self.wait))


class Counters(Protocol):
    def incr(self, keys: Sequence[tuple[str, float]]) -> list[int]:
        """Add one to each key; each (key, expires_at epoch seconds); the counts after adding."""
        ...


class MemoryCounters:
    """Counters in this process: thread-safe, ended windows dropped, at most `max_keys` kept."""

    def __init__(self, max_keys: int = MAX_MEMORY_KEYS, clock: Callable[[], float] = time.time) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._next_prune = clock() + PRUNE_INTERVAL
        self._next_warning = 0.0

    def incr(self, keys: Sequence[tuple[str, float]]) -> list[int]:
        with self._lock:
            if len(self._counts) + len(keys) > self.max_keys or self.clock() >= self._next_prune:
                self._prune(len(keys))
            out = []
            for key, expires_at in keys:
                count = self._counts.get(key, (0, expires_at))[0] + 1
                self._counts[key] = (count, expires_at)
                out.append(count)
            return out

    def __len__(self) -> int:
        """Counters held now (ended windows included until the next sweep)."""
        return len(self._counts)

    def _prune(self, room: int) -> None:
        """Drop the ended windows; if that leaves no `room`, the oldest half too (a spread-out flood)."""
        now = self.clock()
        self._next_prune = now + PRUNE_INTERVAL
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        if len(self._counts) + room <= self.max_keys:
            return
        excess = len(self._counts) - self.max_keys // 2
        if now >= self._next_warning:
            self._next_warning = now + FULL_WARNING_INTERVAL
            log.warning(
                "rate limits: %d live counters in this process, forgetting the %d oldest (said once an "
                "hour); configure [redis] url to count in Redis",
                len(self._counts),
                excess,
            )
        for key in list(self._counts)[:excess]:
            del self._counts[key]


class RedisCounters:
    """Counters in Redis under `prefix`, with this process's own counters while Redis is down."""

    def __init__(
        self,
        url: str,
        prefix: str = "pbxlink:rate:",
        *,
        timeout: float = REDIS_TIMEOUT,
        retry_interval: float = REDIS_RETRY_INTERVAL,
    ) -> None:
        self.prefix = prefix
        self.fallback = MemoryCounters()
        self._link = RedisLink(
            url,
            log,
            "rate limits: Redis",
            "each web process counts on its own",
            timeout=timeout,
            retry_interval=retry_interval,
        )
        self.where = self._link.where

    @property
    def retry_interval(self) -> float:
        """Seconds between two tries while Redis is down."""
        return self._link.retry_interval

    @retry_interval.setter
    def retry_interval(self, seconds: float) -> None:
        self._link.retry_interval = seconds

    def incr(self, keys: Sequence[tuple[str, float]]) -> list[int]:
        pipe = self._link.redis.pipeline(transaction=True)
        for key, expires_at in keys:
            pipe.incr(self.prefix + key)
            pipe.pexpireat(self.prefix + key, math.ceil(expires_at * 1000))
        replies = self._link.call("incr", pipe.execute)
        if replies is None:
            return self.fallback.incr(keys)
        return [int(n) for n in replies[::2]]

    def close(self) -> None:
        self._link.close()


class RateLimiter:
    """Counts requests per subject against several limits at once; thread-safe if its counters are."""

    def __init__(self, counters: Counters, clock: Callable[[], float] = time.time) -> None:
        self.counters = counters
        self.clock = clock

    def hit(self, subject: str, limits: Sequence[Limit]) -> Verdict:
        """Count one request by `subject` against every limit; the longest wait among those exceeded."""
        if not limits:
            return Verdict()
        now = self.clock()
        digest = hashlib.blake2b(subject.encode(), digest_size=12).hexdigest()
        keys, ends = [], []
        for limit in limits:
            index = math.floor(now / limit.window)
            ends.append((index + 1) * limit.window)
            keys.append((f"{limit.scope}:{limit.window:g}:{digest}:{index}", ends[-1] + 1))
        verdict = Verdict()
        for limit, end, count in zip(limits, ends, self.counters.incr(keys), strict=True):
            if count > limit.count and end - now > verdict.wait:
                verdict = Verdict(end - now, limit, count == limit.count + 1)
        return verdict


def make_counters(redis_url: str | None) -> Counters:
    """Redis when configured (several web processes share the counts), else this process's memory."""
    return RedisCounters(redis_url) if redis_url else MemoryCounters()
