"""RedisCache against a real redis-server: the same contract as the in-process cache, and what a
cache must do when Redis is down, hung or back: never stall a call, warn once, recover alone."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from pbxlink.cache import RedisCache
from pbxlink.domain.crm import Contact, Deal
from pbxlink.domain.phone import PhoneNumbers
from pbxlink.services.directory import CallerDirectory
from tests.redis_server import RedisServer
from tests.unit.test_cache import CacheContract
from tests.unit.test_directory import FakeCrm

pytestmark = pytest.mark.redis


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pbxlink.cache" and r.levelno == logging.WARNING]


class TestRedisCache(CacheContract):
    @pytest.fixture
    def cache(self, redis_cache_url: str) -> Iterator[RedisCache]:
        cache = RedisCache(redis_cache_url, prefix="test:")
        yield cache
        cache.close()


def test_keys_live_under_the_prefix(redis_cache_url: str) -> None:
    """Two installations on one Redis: each sees and clears only its own keys."""
    one, two = RedisCache(redis_cache_url, prefix="one:"), RedisCache(redis_cache_url, prefix="two:")
    one.set("k", "1", 60)
    two.set("k", "2", 60)
    assert (one.get("k"), two.get("k")) == ("1", "2")
    assert one.clear("") == 1
    assert (one.get("k"), two.get("k")) == (None, "2")
    one.close()
    two.close()


def test_redis_down_then_back(
    redis_server: RedisServer, redis_cache_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pbxlink.cache")
    cache = RedisCache(redis_cache_url, retry_interval=0.2)
    cache.set("a", "1", 60)
    assert cache.get("a") == "1"
    redis_server.stop()

    worst = 0.0
    deadline = time.monotonic() + 1.0  # several retry intervals: the outage is probed again and again
    while time.monotonic() < deadline:
        started = time.monotonic()
        assert cache.get("a") is None
        cache.set("b", "2", 60)
        cache.delete("a")
        assert cache.clear("") == 0
        worst = max(worst, time.monotonic() - started)
        time.sleep(0.02)
    assert worst < 0.5, f"a call took {worst:.3f} s while Redis was down"
    assert len(warnings_of(caplog)) == 1, "one warning per outage, not per call"
    assert "check that redis-server is running" in warnings_of(caplog)[0].getMessage()

    redis_server.start()
    deadline = time.monotonic() + 10
    while cache.get("b") is None and time.monotonic() < deadline:  # set again until a probe goes through
        cache.set("b", "2", 60)
        time.sleep(0.05)
    assert cache.get("b") == "2"
    assert any("answers again" in r.getMessage() for r in caplog.records)

    redis_server.stop()  # a second outage is a second warning
    assert cache.get("b") is None
    assert len(warnings_of(caplog)) == 2
    cache.close()


def test_a_hung_redis_costs_one_timeout_then_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A server that accepts connections and never answers: the first call waits the socket timeout,
    the calls after it skip Redis until the retry interval is over."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # connections complete in the kernel; nobody ever reads or answers
        cache = RedisCache(f"redis://127.0.0.1:{hung.getsockname()[1]}/0", retry_interval=60)
        started = time.monotonic()
        assert cache.get("a") is None
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(50):
            assert cache.get("a") is None
            cache.set("a", "1", 60)
        rest = time.monotonic() - started
        cache.close()
    assert first < 1.0, f"the first call took {first:.3f} s"
    assert rest < 0.5, f"50 calls took {rest:.3f} s while Redis was known to hang"
    assert len(warnings_of(caplog)) == 1
    assert "TimeoutError" in warnings_of(caplog)[0].getMessage()


def test_the_password_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: the connection is refused
        cache = RedisCache(f"redis://:hunter2secret@127.0.0.1:{port}/0")
        assert cache.get("a") is None
        cache.close()
    assert warnings_of(caplog)
    assert all("hunter2secret" not in r.getMessage() for r in caplog.records)


def test_a_restart_between_calls_goes_unnoticed(
    redis_server: RedisServer, redis_cache_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The pooled connection died with the old server: it is replaced at once, no outage is reported."""
    cache = RedisCache(redis_cache_url)
    cache.set("a", "1", 60)
    redis_server.stop()
    redis_server.start()
    assert cache.get("a") is None  # no persistence: the new server starts empty
    cache.set("a", "2", 60)
    assert cache.get("a") == "2"
    assert warnings_of(caplog) == []
    cache.close()


def test_the_caller_directory_over_redis_is_shared_by_processes(redis_cache_url: str) -> None:
    """Two directories on two Redis clients stand for two processes: what one looked up the other
    reads from the cache, and a contact invalidated in one is gone for both."""
    jane = Contact(crm="hub", id="7", name="Jane Doe", deals=(Deal("Renewal", "$1,200.00"),))
    hub = FakeCrm("hub", {"+14155552671": [jane]})
    caches = [RedisCache(redis_cache_url), RedisCache(redis_cache_url)]
    web, worker = (CallerDirectory([hub], c, PhoneNumbers("US")) for c in caches)
    assert web.lookup("(415) 555-2671").contacts == (jane,)
    from_worker = worker.lookup("+1 415 555 2671")
    assert from_worker.cached and from_worker.contacts == (jane,)
    assert worker.invalidate(crm="hub", contact_id="7") == 1
    assert web.cached("4155552671") is None
    assert hub.asked == ["+14155552671"]
    assert web.clear() == 0
    for cache in caches:
        cache.close()
