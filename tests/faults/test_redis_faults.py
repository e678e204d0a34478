"""RedisCache on a private redis-server that the tests kill and freeze."""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as redis_asyncio
from servers import RedisServer

from agentkit.cache._breaker import BreakerState
from agentkit.cache.redis import RedisCache
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.errors import CacheError

OP_TIMEOUT = 0.3
SLACK = 0.4  # scheduling slack on a loaded 2-core CI box


def blob(n: int = 0) -> bytes:
    payload = b'{"n":%d}' % n
    header = encode_header(LayerTag.JSON, EnvelopeFlags.RESULT, "", len(payload))
    return header + payload + secrets.token_bytes(32)


async def timed(coro: object) -> tuple[float, object]:
    """Run ``coro``; return (seconds, its result or the CacheError it raised)."""
    t0 = time.perf_counter()
    try:
        out: object = await coro  # type: ignore[misc]
    except CacheError as exc:
        out = exc
    return time.perf_counter() - t0, out


def cache_for(server: RedisServer, **kw: object) -> RedisCache:
    opts: dict[str, object] = {
        "op_timeout": OP_TIMEOUT,
        "failure_threshold": 3,
        "cooldown": 0.5,
        "key_prefix": "fault:",
    }
    opts.update(kw)
    return RedisCache(server.url, **opts)  # type: ignore[arg-type]


async def test_killed_redis_degrades_to_misses_and_writes_resume_within_5s(
    redis_server: RedisServer,
) -> None:
    states: list[BreakerState] = []
    cache = cache_for(redis_server, on_state_change=lambda n, o, s: states.append(s))
    raw = redis_asyncio.from_url(redis_server.url)
    try:
        await cache.set("before", blob())
        assert await cache.get("before") is not None
        redis_server.kill()
        deadline = time.monotonic() + 1.5
        outcomes: list[object] = []
        while time.monotonic() < deadline and cache.circuit_state is not BreakerState.OPEN:
            for op in (cache.get("k"), cache.set("k", blob())):
                took, out = await timed(op)
                assert took < OP_TIMEOUT + SLACK, f"cache op took {took:.2f}s with Redis dead"
                outcomes.append(out)
        assert cache.circuit_state is BreakerState.OPEN
        assert all(o is None or isinstance(o, CacheError) for o in outcomes)
        took, out = await timed(cache.get("before"))
        assert out is None and took < 0.05  # open circuit: a miss at once

        redis_server.start()  # a fresh, empty server on the same port
        restarted = time.monotonic()
        resumed_after = None
        i = 0
        while time.monotonic() - restarted < 8.0:
            i += 1
            _, out = await timed(cache.set(f"after{i}", blob(i)))
            if await raw.exists(f"fault:after{i}"):
                resumed_after = time.monotonic() - restarted
                break
            await asyncio.sleep(0.05)
        assert resumed_after is not None and resumed_after < 5.0, resumed_after
        assert cache.circuit_state is BreakerState.CLOSED
        assert await cache.get(f"after{i}") is not None
        assert states[0] is BreakerState.OPEN and states[-1] is BreakerState.CLOSED
        assert BreakerState.HALF_OPEN in states
    finally:
        await cache.aclose()
        await raw.aclose()


async def test_frozen_redis_times_out_within_budget_then_short_circuits(
    redis_server: RedisServer,
) -> None:
    cache = cache_for(redis_server)
    try:
        await cache.set("warm", blob())  # pooled connection exists before the freeze
        redis_server.freeze()
        t0 = time.perf_counter()
        results = await asyncio.gather(
            *(timed(cache.get(f"k{i}")) for i in range(20)),
            *(timed(cache.set(f"k{i}", blob(i))) for i in range(20)),
        )
        for took, out in results:
            assert took < OP_TIMEOUT + SLACK, f"op took {took:.2f}s against a frozen Redis"
            assert out is None or isinstance(out, CacheError)
        assert sum(isinstance(out, CacheError) for _, out in results) >= 1
        # sequential ops until the breaker opens: each within the budget
        for _ in range(5):
            took, out = await timed(cache.get("warm"))
            assert took < OP_TIMEOUT + SLACK
        assert cache.circuit_state is BreakerState.OPEN
        took, out = await timed(cache.set("x", blob()))
        assert out is None and took < 0.05
        assert time.perf_counter() - t0 < 5 * (OP_TIMEOUT + SLACK) + 1.0

        redis_server.thaw()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            _, _ = await timed(cache.set("thawed", blob()))
            _, got = await timed(cache.get("thawed"))
            if isinstance(got, bytes):
                break
            await asyncio.sleep(0.1)
        assert cache.circuit_state is BreakerState.CLOSED
        assert await cache.get("thawed") is not None
    finally:
        if redis_server.frozen:
            redis_server.thaw()
        await cache.aclose()


async def test_unix_socket_url(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.unix_url, key_prefix="unix:")
    try:
        await cache.set("k", blob(7))
        assert await cache.get("k") is not None
        raw = redis_asyncio.from_url(redis_server.url)
        assert await raw.exists("unix:k") == 1
        await raw.aclose()
    finally:
        await cache.aclose()
