"""The Cache contract, run here against MemoryCache and in tests/integration against a real Redis,
plus what only the in-process cache has: a size bound (LRU) and an injectable clock."""

from __future__ import annotations

import threading
import time

import pytest

from pbxlink.cache import MemoryCache, RedisCache, make_cache
from pbxlink.domain.ports import Cache


class CacheContract:
    """What every `Cache` must do; a subclass provides the `cache` fixture (empty at the start)."""

    def test_set_get_delete(self, cache: Cache) -> None:
        assert cache.get("a") is None
        cache.set("a", "1", 60)
        cache.set("b", "two words, ünïcode", 60)
        assert (cache.get("a"), cache.get("b")) == ("1", "two words, ünïcode")
        cache.set("a", "3", 60)
        assert cache.get("a") == "3"
        cache.delete("a", "b", "never-set")
        assert (cache.get("a"), cache.get("b")) == (None, None)
        cache.delete()  # nothing to delete is fine

    def test_entries_expire(self, cache: Cache) -> None:
        cache.set("short", "x", 0.05)
        cache.set("long", "y", 60)
        time.sleep(0.3)
        assert cache.get("short") is None
        assert cache.get("long") == "y"

    def test_a_ttl_of_zero_or_less_removes_the_key(self, cache: Cache) -> None:
        cache.set("a", "1", 60)
        cache.set("a", "2", 0)
        assert cache.get("a") is None

    def test_clear_drops_only_the_prefix_and_counts(self, cache: Cache) -> None:
        for i in range(3):
            cache.set(f"lookup:v1:n:+1555000000{i}", "x", 60)
        cache.set("lookup:v1:c:hub:1", "[]", 60)
        cache.set("other:lookup:1", "keep", 60)
        cache.set("lookup-not-this", "keep", 60)
        assert cache.clear("lookup:") == 4
        assert cache.get("lookup:v1:n:+15550000000") is None
        assert cache.get("lookup:v1:c:hub:1") is None
        assert (cache.get("other:lookup:1"), cache.get("lookup-not-this")) == ("keep", "keep")
        assert cache.clear("lookup:") == 0

    def test_clear_takes_glob_characters_literally(self, cache: Cache) -> None:
        cache.set("a*b:1", "x", 60)
        cache.set("a?b:1", "x", 60)
        cache.set("a[b]:1", "x", 60)
        cache.set("aXb:1", "keep", 60)
        assert cache.clear("a*b:") == 1
        assert cache.clear("a?b:") == 1
        assert cache.clear("a[b]:") == 1
        assert cache.get("aXb:1") == "keep"

    def test_clear_many_keys(self, cache: Cache) -> None:
        """More keys than one batch of the Redis SCAN + UNLINK loop."""
        for i in range(1234):
            cache.set(f"bulk:{i}", "x", 60)
        cache.set("kept", "x", 60)
        assert cache.clear("bulk:") == 1234
        assert cache.get("bulk:0") is None and cache.get("bulk:1233") is None
        assert cache.get("kept") == "x"

    def test_concurrent_writers_and_readers(self, cache: Cache) -> None:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(100):
                    cache.set(f"t{n}:{i}", str(i), 60)
                    assert cache.get(f"t{n}:{i}") == str(i)
                    if i % 2:
                        cache.delete(f"t{n}:{i}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert cache.clear("t") == 8 * 50


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestMemoryCache(CacheContract):
    @pytest.fixture
    def cache(self) -> MemoryCache:
        return MemoryCache()

    def test_expiry_follows_the_clock(self) -> None:
        clock = FakeClock()
        cache = MemoryCache(clock=clock)
        cache.set("a", "1", 10)
        clock.now += 9.9
        assert cache.get("a") == "1"
        clock.now += 0.2
        assert cache.get("a") is None

    def test_clear_counts_only_live_keys(self) -> None:
        clock = FakeClock()
        cache = MemoryCache(clock=clock)
        cache.set("p:old", "1", 1)
        cache.set("p:new", "2", 100)
        clock.now += 5
        assert cache.clear("p:") == 1

    def test_the_least_recently_used_entry_goes_first(self) -> None:
        cache = MemoryCache(max_entries=3)
        for key in "abc":
            cache.set(key, key, 60)
        assert cache.get("a") == "a"  # a is now the most recently used: b is the oldest
        cache.set("d", "d", 60)
        assert [cache.get(k) for k in "abcd"] == ["a", None, "c", "d"]
        cache.set("c", "c2", 60)  # writing counts as use too
        cache.set("e", "e", 60)
        assert [cache.get(k) for k in "acde"] == [None, "c2", "d", "e"]

    def test_bounded_under_many_writes(self) -> None:
        cache = MemoryCache(max_entries=100)
        for i in range(10_000):
            cache.set(f"k{i}", "x", 60)
        assert (cache.get("k9900"), cache.get("k9999"), cache.get("k9899")) == ("x", "x", None)
        assert cache.clear("k") == 100


def test_make_cache_picks_redis_only_when_configured() -> None:
    assert isinstance(make_cache(None), MemoryCache)
    assert isinstance(make_cache(""), MemoryCache)
    remote = make_cache("redis://:s3cret@127.0.0.1:1/0")  # not connected until first used
    assert isinstance(remote, RedisCache)
    assert "s3cret" not in remote.where
    remote.close()
