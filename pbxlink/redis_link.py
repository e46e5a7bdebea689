"""A Redis client that never stalls its caller, for the parts that can do without Redis for a while.

Short timeouts and no retries (redis-py's default retries for seconds); while Redis is down
every call is skipped until the next try, so a dead or hung Redis costs one timeout per
`retry_interval`, not one per call. One warning per outage, one line when it is back, in the
caller's own logger and words.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pbxlink.config import redact_url

T = TypeVar("T")

TIMEOUT = 0.2  # seconds: a slower Redis counts as down
RETRY_INTERVAL = 2.0


class RedisLink:
    """`call(what, command)` runs `command` against `self.redis`, or returns None while Redis is down.

    `label` ("Redis cache", "rate limits: Redis") and `consequence` ("CRM lookups go uncached")
    make the warning say what the outage means for this user of Redis.
    """

    def __init__(
        self,
        url: str,
        log: logging.Logger,
        label: str,
        consequence: str,
        *,
        timeout: float = TIMEOUT,
        retry_interval: float = RETRY_INTERVAL,
        **options: Any,
    ) -> None:
        self.where = redact_url(url)
        self.log, self.label, self.consequence = log, label, consequence
        self.retry_interval = retry_interval
        self.redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            **options,
        )
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        """Known to be down and not due for another try yet."""
        return self._down_since is not None and time.monotonic() < self._next_try

    def call(self, what: str, command: Callable[[], T]) -> T | None:
        if self.down:
            return None
        try:
            result = command()
        except redis.RedisError as exc:
            self._failed(what, exc)
            return None
        if self._down_since is not None:
            self._recovered()
        return result

    def close(self) -> None:
        self.redis.close()

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            now = time.monotonic()
            self._next_try = now + self.retry_interval
            if self._down_since is not None:
                return
            self._down_since = now
        self.log.warning(
            "%s at %s failed on %s (%s: %s): %s until it answers again (retried every %g s); "
            "check that redis-server is running and reachable",
            self.label,
            self.where,
            what,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            self.consequence,
            self.retry_interval,
        )

    def _recovered(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            self.log.info(
                "%s at %s answers again after %.0f s", self.label, self.where, time.monotonic() - since
            )
