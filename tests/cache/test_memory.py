"""MemoryCache specifics: LRU order, byte and entry bounds, TTL with a fake clock, URLs."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.backends import cache_from_url
from agentkit.cache.memory import MemoryCache
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.errors import CacheError, ConfigurationError


def blob(size: int, fill: bytes = b"x") -> bytes:
    """An agent-result envelope of exactly ``size`` bytes."""
    payload_size = size - 11 - 32
    header = encode_header(LayerTag.JSON, EnvelopeFlags.RESULT, "", payload_size)
    return header + fill * payload_size + b"\x00" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_lru_evicts_least_recently_used_by_bytes() -> None:
    each = MemoryCache.charge("k0", blob(99))
    assert each == 2 + 99 + MemoryCache.ENTRY_OVERHEAD
    cache = MemoryCache(max_bytes=3 * each, ttl=None)
    for i in range(3):
        await cache.set(f"k{i}", blob(99))
    assert cache.size_bytes == 3 * each and len(cache) == 3
    assert await cache.get("k0") is not None  # k0 becomes most recent; k1 is now LRU
    await cache.set("k3", blob(99))
    assert await cache.get("k1") is None
    assert all([await cache.get(k) for k in ("k0", "k2", "k3")])
    assert cache.stats.evictions == 1
    assert cache.size_bytes <= cache.max_bytes


async def test_big_value_evicts_several() -> None:
    small = MemoryCache.charge("k0", blob(98))
    cache = MemoryCache(max_bytes=9 * small + 50, ttl=None)
    for i in range(9):
        await cache.set(f"k{i}", blob(98))
    big = blob(4 * small - 3 - MemoryCache.ENTRY_OVERHEAD)  # charged as 4 small ones
    assert MemoryCache.charge("big", big) == 4 * small
    await cache.set("big", big)
    assert cache.size_bytes == 9 * small <= cache.max_bytes
    assert await cache.get("big") is not None
    assert await cache.get("k3") is None and await cache.get("k4") is not None
    assert cache.stats.evictions == 4


async def test_entry_bound() -> None:
    cache = MemoryCache(max_entries=10, ttl=None)
    for i in range(25):
        await cache.set(f"k{i}", blob(64))
    assert len(cache) == 10
    assert await cache.get("k14") is None and await cache.get("k15") is not None


async def test_oversize_value_is_refused_counted_and_drops_stale_value() -> None:
    cache = MemoryCache(max_bytes=1000, ttl=None)
    await cache.set("k", blob(100))
    await cache.set("other", blob(50))
    with pytest.raises(CacheError, match="max_bytes=1000"):
        await cache.set("k", blob(800))
    assert await cache.get("k") is None  # never serve the old value for a newer write
    assert await cache.get("other") is not None  # nothing else was evicted for it
    assert cache.stats.oversize == 1


async def test_set_many_stores_what_fits_then_reports_the_refused() -> None:
    cache = MemoryCache(max_bytes=1000, ttl=None)
    with pytest.raises(CacheError):
        await cache.set_many([("a", blob(100)), ("huge", blob(900)), ("b", blob(100))])
    assert await cache.get("a") is not None and await cache.get("b") is not None


async def test_ttl_with_clock() -> None:
    clock = Clock()
    cache = MemoryCache(ttl=10, clock=clock)
    await cache.set("default", blob(64))
    await cache.set("short", blob(64), ttl=2)
    clock.now += 5
    assert await cache.get("short") is None
    assert await cache.get("default") is not None
    clock.now += 6
    assert await cache.get("default") is None
    assert cache.stats.expirations == 2 and len(cache) == 0 and cache.size_bytes == 0


async def test_expired_entries_at_lru_end_are_dropped_on_write_and_by_purge() -> None:
    clock = Clock()
    cache = MemoryCache(ttl=1, clock=clock)
    for i in range(5):
        await cache.set(f"old{i}", blob(64))
    clock.now += 2
    await cache.set("fresh", blob(64))
    assert len(cache) == 1  # the expired LRU end went on that write
    await cache.set("mid", blob(64), ttl=1)
    await cache.set("late", blob(64), ttl=100)
    await cache.get("fresh")  # fresh moves behind "late"; "mid" is at the LRU end now
    clock.now += 1.5
    assert cache.purge_expired() == 2  # "fresh" (ttl 1) and "mid"
    assert len(cache) == 1 and await cache.get("late") is not None


async def test_delete_of_expired_key_reports_false() -> None:
    clock = Clock()
    cache = MemoryCache(ttl=1, clock=clock)
    await cache.set("k", blob(64))
    clock.now += 5
    assert await cache.delete("k") is False
    assert cache.size_bytes == 0


async def test_stats_count_hits_and_misses() -> None:
    cache = MemoryCache()
    await cache.set("k", blob(64))
    await cache.get("k")
    await cache.get("nope")
    assert (cache.stats.hits, cache.stats.misses, cache.stats.sets) == (1, 1, 1)


async def test_closed_cache_raises_cache_error() -> None:
    cache = MemoryCache()
    await cache.set("k", blob(64))
    await cache.aclose()
    assert len(cache) == 0
    with pytest.raises(CacheError, match="closed"):
        await cache.get("k")


async def test_safe_across_threads() -> None:
    cache = MemoryCache(max_bytes=64 * 1000, ttl=None)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(500):
                asyncio.run(cache.set(f"t{n}-{i % 50}", blob(100 + i % 7)))
                asyncio.run(cache.get(f"t{n}-{(i * 7) % 50}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.size_bytes == sum(cache.charge(k, v) for k, (v, _) in cache._data.items())
    assert cache.size_bytes <= cache.max_bytes


def test_from_url_options_and_overrides() -> None:
    cache = MemoryCache.from_url("memory://?max_bytes=1048576&max_entries=50&ttl=30")
    assert (cache.max_bytes, cache.max_entries, cache.default_ttl) == (1048576, 50, 30.0)
    cache = MemoryCache.from_url("memory://?ttl=none", max_entries=7)
    assert cache.default_ttl is None and cache.max_entries == 7
    default = cache_from_url("memory://")
    assert isinstance(default, MemoryCache)
    assert default.max_bytes == 64 * 1024 * 1024 and default.default_ttl == 3600.0


@pytest.mark.parametrize(
    "url",
    [
        "memory://?max_bytes=lots",
        "memory://?max_bytes=0",
        "memory://?max_entries=-1",
        "memory://?ttl=soon",
        "memory://?ttl=-5",
        "memory://?colour=blue",
        "memory://somehost",
        "redis://localhost",
    ],
)
def test_from_url_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        MemoryCache.from_url(url)


def test_unknown_option_lists_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="known: max_bytes, max_entries, ttl"):
        MemoryCache.from_url("memory://?maxbytes=1")


# --- model-based check: the cache against a plain-list reference of the same rules ----------

_KEYS = [f"k{i}" for i in range(6)]
_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("set"),
            st.sampled_from(_KEYS),
            st.integers(44, 400),
            st.sampled_from([None, 1.0, 5.0]),
        ),
        st.tuples(st.just("get"), st.sampled_from(_KEYS)),
        st.tuples(st.just("delete"), st.sampled_from(_KEYS)),
        st.tuples(st.just("tick"), st.sampled_from([0.5, 2.0, 6.0])),
    ),
    max_size=60,
)


class _Model:
    """LRU list of [key, size, expires]; the documented rules, written the slow way."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.items: list[list[object]] = []
        self.now = 1000.0

    def _find(self, key: str) -> int | None:
        return next((i for i, it in enumerate(self.items) if it[0] == key), None)

    def _live(self, it: list[object]) -> bool:
        return it[2] is None or it[2] > self.now  # type: ignore[operator]

    def used(self) -> int:
        return sum(
            len(str(it[0])) + int(it[1]) + MemoryCache.ENTRY_OVERHEAD  # type: ignore[call-overload]
            for it in self.items
        )

    def set(self, key: str, size: int, ttl: float | None) -> bool:
        i = self._find(key)
        if i is not None:
            del self.items[i]
        if len(key) + size + MemoryCache.ENTRY_OVERHEAD > self.max_bytes:
            self._drop_expired_tail()
            return False
        self.items.append([key, size, None if ttl is None else self.now + ttl])
        while self.used() > self.max_bytes or len(self.items) > self.max_entries:
            del self.items[0]
        self._drop_expired_tail()
        return True

    def _drop_expired_tail(self) -> None:
        # a write (even a refused one) drops expired entries that reached the LRU end
        while self.items and not self._live(self.items[0]):
            del self.items[0]

    def get(self, key: str) -> int | None:
        i = self._find(key)
        if i is None:
            return None
        it = self.items.pop(i)
        if not self._live(it):
            return None
        self.items.append(it)
        return int(it[1])  # type: ignore[call-overload]

    def delete(self, key: str) -> bool:
        i = self._find(key)
        if i is None:
            return False
        return self._live(self.items.pop(i))


@settings(max_examples=150, deadline=None)
@given(ops=_OPS, max_bytes=st.sampled_from([600, 1200, 3000]), max_entries=st.integers(1, 5))
def test_matches_the_reference_model(ops: list[tuple], max_bytes: int, max_entries: int) -> None:  # type: ignore[type-arg]
    async def run() -> None:
        clock = Clock()
        cache = MemoryCache(max_bytes=max_bytes, max_entries=max_entries, ttl=None, clock=clock)
        model = _Model(max_bytes, max_entries)
        for op in ops:
            if op[0] == "set":
                _, key, size, ttl = op
                fits = model.set(key, size, ttl)
                if fits:
                    await cache.set(key, blob(size), ttl=ttl)
                else:
                    with pytest.raises(CacheError):
                        await cache.set(key, blob(size), ttl=ttl)
            elif op[0] == "get":
                got = await cache.get(op[1])
                want = model.get(op[1])
                assert (None if got is None else len(got)) == want
            elif op[0] == "delete":
                assert await cache.delete(op[1]) is model.delete(op[1])
            else:
                clock.now += op[1]
                model.now += op[1]
            assert list(cache._data) == [it[0] for it in model.items]
            assert cache.size_bytes == model.used() <= max_bytes
            assert len(cache) <= max_entries

    asyncio.run(run())


async def test_set_nowait_is_set_without_an_await() -> None:
    cache = MemoryCache(max_bytes=2000)
    cache.set_nowait("k", blob(100))
    assert await cache.get("k") == blob(100)
    assert cache.stats.sets == 1
    with pytest.raises(CacheError, match="larger than the cache's max_bytes"):
        cache.set_nowait("big", blob(5000))
    with pytest.raises(ConfigurationError):
        cache.set_nowait("", blob(100))
    from agentkit.errors import InvalidPayloadError

    with pytest.raises(InvalidPayloadError):
        cache.set_nowait("k2", b"raw bytes, not an envelope")
    await cache.aclose()
    with pytest.raises(CacheError, match="closed"):
        cache.set_nowait("k", blob(100))


async def test_set_nowait_refuses_when_a_subclass_hooks_set_many() -> None:
    class Hooked(MemoryCache):
        async def _set_many(self, items: list[tuple[str, bytes]], ttl: float | None) -> None:
            await super()._set_many(items, ttl)

    cache = Hooked()
    with pytest.raises(CacheError, match="await set"):
        cache.set_nowait("k", blob(100))
    await cache.set("k", blob(100))  # the awaited path goes through the hook
    assert await cache.get("k") == blob(100)
