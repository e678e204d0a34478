"""RedisCache against the real Redis on 127.0.0.1:6379 (own random key prefix, cleaned up)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from agentkit.backends import cache_from_url
from agentkit.cache._breaker import BreakerState, CircuitBreaker
from agentkit.cache.redis import RedisCache
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.errors import CacheError, ConfigurationError, InvalidPayloadError

REDIS_URL = "redis://127.0.0.1:6379/0"


def blob(payload: bytes = b'{"ok":true}') -> bytes:
    """A structurally valid agent-result envelope (the cache never verifies the tag)."""
    header = encode_header(LayerTag.JSON, EnvelopeFlags.RESULT, "", len(payload))
    return header + payload + secrets.token_bytes(32)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def raw() -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def cache(raw: redis_asyncio.Redis) -> AsyncIterator[RedisCache]:
    prefix = f"akt-{secrets.token_hex(6)}:"
    c = RedisCache(REDIS_URL, key_prefix=prefix)
    try:
        yield c
    finally:
        await c.aclose()
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)


async def test_roundtrip_prefix_and_ttl(cache: RedisCache, raw: redis_asyncio.Redis) -> None:
    value = blob()
    assert await cache.get("ns:u:abc:run1:agent") is None
    await cache.set("ns:u:abc:run1:agent", value, ttl=30)
    assert await cache.get("ns:u:abc:run1:agent") == value
    stored = await raw.get(cache.key_prefix + "ns:u:abc:run1:agent")
    assert stored == value
    pttl = await raw.pttl(cache.key_prefix + "ns:u:abc:run1:agent")
    assert 25_000 < pttl <= 30_000
    await cache.set("k2", value)  # default ttl: 3600 s
    assert 3_590_000 < await raw.pttl(cache.key_prefix + "k2") <= 3_600_000
    assert await cache.delete("ns:u:abc:run1:agent") is True
    assert await cache.delete("ns:u:abc:run1:agent") is False
    assert await cache.get("ns:u:abc:run1:agent") is None
    assert cache.stats.hits == 1 and cache.stats.misses == 2


async def test_no_expiry_when_default_ttl_is_none(raw: redis_asyncio.Redis) -> None:
    prefix = f"akt-{secrets.token_hex(6)}:"
    async with RedisCache(REDIS_URL, key_prefix=prefix, default_ttl=None) as c:
        await c.set("k", blob())
        assert await raw.pttl(prefix + "k") == -1
    await raw.delete(prefix + "k")


async def test_writes_accept_only_result_envelopes(cache: RedisCache) -> None:
    with pytest.raises(InvalidPayloadError):
        await cache.set("k", b"\x80\x05 pickle bytes")
    plain = encode_header(LayerTag.JSON, EnvelopeFlags.NONE, "", 2) + b"{}" + bytes(32)
    with pytest.raises(InvalidPayloadError):
        await cache.set("k", plain)
    with pytest.raises(ConfigurationError):
        await cache.set("k", blob(), ttl=0)


async def test_concurrent_sets_are_coalesced_into_pipelines(cache: RedisCache) -> None:
    values = {f"k{i}": blob(str(i).encode()) for i in range(200)}
    await asyncio.gather(*(cache.set(k, v) for k, v in values.items()))
    assert cache.stats.commands == 200
    assert cache.stats.pipelines <= 3, cache.stats
    got = await asyncio.gather(*(cache.get(k) for k in values))
    assert got == list(values.values())
    await cache.set_many([(f"m{i}", blob()) for i in range(10)], ttl=5)
    assert all(await asyncio.gather(*(cache.get(f"m{i}") for i in range(10))))


async def test_coalesce_window_groups_writes_spread_over_ticks(raw: redis_asyncio.Redis) -> None:
    prefix = f"akt-{secrets.token_hex(6)}:"
    async with RedisCache(REDIS_URL, key_prefix=prefix, coalesce_window=0.05) as c:

        async def later(i: int) -> None:
            await asyncio.sleep(0.001 * (i % 5))
            await c.set(f"w{i}", blob())

        await asyncio.gather(*(later(i) for i in range(50)))
        assert c.stats.pipelines == 1 and c.stats.commands == 50
    await raw.delete(*[f"{prefix}w{i}" for i in range(50)])


async def test_from_url_registry_and_repr_hides_password() -> None:
    c = cache_from_url("redis://user:s3cret@127.0.0.1:6379/0", key_prefix="x:", op_timeout=0.2)
    try:
        assert isinstance(c, RedisCache)
        assert c.op_timeout == 0.2 and c.key_prefix == "x:"
        assert "s3cret" not in repr(c)
    finally:
        await c.aclose()
    with pytest.raises(ConfigurationError):
        RedisCache("http://127.0.0.1:6379")


async def test_unreachable_server_raises_cache_error_then_opens_circuit() -> None:
    changes: list[tuple[str, BreakerState, BreakerState]] = []
    c = RedisCache(
        f"redis://127.0.0.1:{closed_port()}/0",
        failure_threshold=3,
        cooldown=0.3,
        op_timeout=0.5,
        on_state_change=lambda n, o, s: changes.append((n, o, s)),
    )
    try:
        for _ in range(3):
            t0 = time.perf_counter()
            with pytest.raises(CacheError, match="treats this as a cache miss"):
                await c.get("k")
            assert time.perf_counter() - t0 < 1.0
        assert c.circuit_state is BreakerState.OPEN
        t0 = time.perf_counter()
        assert await c.get("k") is None  # open: a miss at once, no error
        await c.set("k", blob())  # open: a no-op at once
        assert await c.delete("k") is False
        assert time.perf_counter() - t0 < 0.05
        assert c.stats.short_circuited == 3 and c.stats.errors == 3
        await asyncio.sleep(0.35)
        with pytest.raises(CacheError):  # the probe goes to the server, fails, reopens
            await c.set("k", blob())
        assert c.circuit_state is BreakerState.OPEN
        assert changes == [
            ("redis", BreakerState.CLOSED, BreakerState.OPEN),
            ("redis", BreakerState.OPEN, BreakerState.HALF_OPEN),
            ("redis", BreakerState.HALF_OPEN, BreakerState.OPEN),
        ]
        assert c.breaker.transitions[BreakerState.OPEN] == 2
    finally:
        await c.aclose()


async def test_set_after_close_raises_cache_error(raw: redis_asyncio.Redis) -> None:
    c = RedisCache(REDIS_URL, key_prefix=f"akt-{secrets.token_hex(6)}:")
    await c.aclose()
    await c.aclose()  # idempotent
    with pytest.raises(CacheError, match="closed"):
        await c.set("k", blob())
    with pytest.raises(CacheError, match="closed"):
        await c.get("k")
    with pytest.raises(CacheError, match="closed"):
        await c.delete("k")


async def test_options_in_the_url_query() -> None:
    c = cache_from_url(
        "redis://127.0.0.1:6379/0?key_prefix=q:&op_timeout=0.2&failure_threshold=2"
        "&default_ttl=none&max_connections=8&socket_keepalive=true",
        cooldown=1.5,
    )
    try:
        assert isinstance(c, RedisCache)
        assert (c.key_prefix, c.op_timeout, c.default_ttl) == ("q:", 0.2, None)
        assert c.breaker.failure_threshold == 2 and c.breaker.cooldown == 1.5
        assert "key_prefix" not in repr(c)
    finally:
        await c.aclose()
    with pytest.raises(ConfigurationError, match="op_timeout"):
        cache_from_url("redis://127.0.0.1:6379/0?op_timeout=fast")


def test_breaker_state_machine_with_fake_clock(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    b = CircuitBreaker("t", failure_threshold=2, cooldown=5.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="agentkit.cache.breaker")
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.CLOSED and b.allow()
    b.record_success()  # resets the consecutive count
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert not b.allow() and b.rejected == 1
    now[0] += 5.0
    assert b.allow() and b.state is BreakerState.HALF_OPEN  # the one probe
    assert not b.allow()  # others wait for the probe
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.allow()
    assert b.transitions == {
        BreakerState.OPEN: 1,
        BreakerState.HALF_OPEN: 1,
        BreakerState.CLOSED: 1,
    }
    assert any("closed -> open" in r.getMessage() for r in caplog.records)
    b.add_listener(lambda *a: 1 / 0)  # a broken listener never breaks the breaker
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    with pytest.raises(ConfigurationError):
        CircuitBreaker(failure_threshold=0)


def test_importing_the_module_does_not_import_redis() -> None:
    code = (
        "import sys, agentkit.cache.redis, agentkit.store.postgres\n"
        "assert 'redis' not in sys.modules and 'asyncpg' not in sys.modules, 'eager import'\n"
        "sys.modules['redis'] = None\n"
        "from agentkit.errors import MissingDependencyError\n"
        "from agentkit.backends import cache_from_url\n"
        "try:\n"
        "    cache_from_url('redis://127.0.0.1:6379/0')\n"
        "except MissingDependencyError as e:\n"
        "    assert \"pip install 'agentkit[redis]'\" in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no MissingDependencyError')\n"
        "import asyncio\n"
        "sys.modules['asyncpg'] = None\n"
        "from agentkit.backends import store_from_url\n"
        "store = store_from_url('postgresql://postgres@127.0.0.1:5432/test')\n"
        "try:\n"
        "    asyncio.run(store.start())\n"
        "except MissingDependencyError as e:\n"
        "    assert \"pip install 'agentkit[postgres]'\" in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no MissingDependencyError for asyncpg')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


async def test_cancelled_probe_does_not_wedge_the_breaker(raw: redis_asyncio.Redis) -> None:
    prefix = f"akt-{secrets.token_hex(6)}:"
    now = [0.0]
    breaker = CircuitBreaker("redis", failure_threshold=1, cooldown=1.0, clock=lambda: now[0])
    async with RedisCache(REDIS_URL, key_prefix=prefix, breaker=breaker) as c:
        breaker.record_failure()
        assert c.circuit_state is BreakerState.OPEN
        now[0] = 2.0
        # the probe is a two-item write: it is queued for the writer task, and its caller is
        # cancelled before the writer gets to it
        probe = asyncio.create_task(c.set_many([("a", blob()), ("b", blob())]))
        await asyncio.sleep(0)
        assert c.circuit_state is BreakerState.HALF_OPEN
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
        await asyncio.sleep(0.01)  # the writer finds nothing live to send
        await c.set("c", blob())  # the breaker lets a new probe through, which closes it
        assert c.circuit_state is BreakerState.CLOSED
        assert await c.get("c") is not None
    await raw.delete(*[prefix + k for k in "abc"])


async def test_large_set_many_is_split_into_bounded_pipelines(raw: redis_asyncio.Redis) -> None:
    prefix = f"akt-{secrets.token_hex(6)}:"
    async with RedisCache(REDIS_URL, key_prefix=prefix, max_batch=4, max_batch_bytes=2000) as c:
        items = [(f"k{i}", blob(b"x" * 500)) for i in range(12)]  # ~590 bytes each
        await c.set_many(items)
        assert c.stats.commands == 12
        assert c.stats.pipelines >= 3  # at most 4 commands and ~2 KB per pipeline
        assert [await c.get(k) for k, _ in items] == [v for _, v in items]
    await raw.delete(*[prefix + k for k, _ in items])
