"""Supervisor runs while a private Redis or PostgreSQL is killed, frozen or stopped.

Each test starts its own server(s), breaks them in the middle of a paced workload of
Supervisor runs, and checks that no run fails and no record is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis_asyncio
from servers import PostgresServer, RedisServer
from workload import LIMITS, PIPELINE, SIGNING_KEY, agents, check_outputs, paced_runs

from agentkit.cache._breaker import BreakerState
from agentkit.cache.redis import RedisCache
from agentkit.status import RunStatus
from agentkit.store.outbox import OutboxStore
from agentkit.store.postgres import PostgresStore
from agentkit.supervisor import Supervisor

SHARED_PG = "postgresql://postgres@127.0.0.1:5432/test"
N_RUNS, N_USERS = 500, 50


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def store_counts(url: str, schema: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            f"""SELECT (SELECT count(*) FROM "{schema}".runs) AS runs,
                       (SELECT count(*) FROM "{schema}".runs
                         WHERE status = 'succeeded') AS succeeded,
                       (SELECT count(*) FROM "{schema}".results) AS results,
                       (SELECT count(DISTINCT (run_id, agent))
                          FROM "{schema}".results) AS distinct_results"""
        )
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    schema = f"akt_sfault_{secrets.token_hex(4)}"
    try:
        yield schema
    finally:
        await drop_schema(SHARED_PG, schema)


def redis_cache(server: RedisServer, states: list[BreakerState] | None = None) -> RedisCache:
    return RedisCache(
        server.url,
        key_prefix="sfault:",
        op_timeout=0.25,
        failure_threshold=3,
        cooldown=0.5,
        on_state_change=None if states is None else (lambda n, o, s: states.append(s)),
    )


async def test_redis_killed_mid_500_runs(redis_server: RedisServer, pg_schema: str) -> None:
    states: list[BreakerState] = []
    cache = redis_cache(redis_server, states)
    store = PostgresStore(SHARED_PG, schema=pg_schema)
    raw = redis_asyncio.from_url(redis_server.url)
    sup = Supervisor(agents(), cache=cache, store=store, signing_key=SIGNING_KEY, limits=LIMITS)
    try:
        async with sup:
            work = asyncio.create_task(paced_runs(sup, N_RUNS, N_USERS, duration=3.0))
            await asyncio.sleep(0.8)
            assert await raw.dbsize() > 0, "no cache writes before the fault"
            await asyncio.to_thread(redis_server.kill)
            await asyncio.sleep(0.6)
            await asyncio.to_thread(redis_server.start)  # empty: no persistence
            back = time.monotonic()
            resumed = None
            while time.monotonic() - back < 6.0 and not work.done():
                if await raw.dbsize() > 0:
                    resumed = time.monotonic() - back
                    break
                await asyncio.sleep(0.05)
            results = await work
        assert resumed is not None and resumed < 5.0, f"cache writes resumed after {resumed}"
        check_outputs(results, N_USERS)
        assert all(r.persisted for r in results)
        assert sup.stats.cache_errors > 0, "the fault never reached the engine"
        assert BreakerState.OPEN in states and cache.circuit_state is BreakerState.CLOSED
        counts = await store_counts(SHARED_PG, pg_schema)
        assert counts == {
            "runs": N_RUNS,
            "succeeded": N_RUNS,
            "results": 2 * N_RUNS,
            "distinct_results": 2 * N_RUNS,
        }
        print(
            f"\nredis kill: cache writes resumed {resumed:.2f}s after restart; "
            f"{sup.stats.cache_errors} cache errors; breaker {[s.value for s in states]}"
        )
    finally:
        await cache.aclose()
        await store.aclose()
        await raw.aclose()


async def test_redis_frozen_runs_unaffected(redis_server: RedisServer, pg_schema: str) -> None:
    cache = redis_cache(redis_server)
    store = PostgresStore(SHARED_PG, schema=pg_schema)
    sup = Supervisor(agents(), cache=cache, store=store, signing_key=SIGNING_KEY, limits=LIMITS)
    n = 200
    try:
        async with sup:
            baseline_t0 = time.monotonic()
            check_outputs(await paced_runs(sup, 20, 10, duration=0.2), 10)
            baseline = time.monotonic() - baseline_t0
            redis_server.freeze()
            t0 = time.monotonic()
            results = await paced_runs(sup, n, 20, duration=1.0, timeout=20)
            frozen_wall = time.monotonic() - t0
            slowest = max(r.timings["total_s"] for r in results)
        check_outputs(results, 20)
        assert sup.stats.cache_errors >= 3
        assert cache.circuit_state is BreakerState.OPEN
        # each of a run's two stages waits at most one cache timeout (0.25 s); the rest is
        # slack for a loaded CI box (unfrozen, these runs take a few ms)
        assert slowest < 2 * 0.25 + 1.5, f"a run took {slowest:.2f}s with Redis frozen"
        assert frozen_wall < 1.0 + 4.0, frozen_wall
        print(
            f"\nredis frozen: {n} runs in {frozen_wall:.2f}s (baseline 20 runs "
            f"{baseline:.2f}s), slowest run {slowest:.2f}s, {sup.stats.cache_errors} "
            "cache errors"
        )
    finally:
        if redis_server.frozen:
            redis_server.thaw()
        await cache.aclose()
        await store.aclose()


async def test_postgres_stopped_mid_500_runs(pg_server: PostgresServer, tmp_path: Path) -> None:
    schema = f"akt_sfault_{secrets.token_hex(4)}"
    depths: list[int] = []
    store = OutboxStore(
        PostgresStore(pg_server.url, schema=schema, connect_timeout=1.0, statement_timeout=2.0),
        tmp_path / "outbox.db",
        write_timeout=2.0,
        probe_initial=0.1,
        probe_max=0.5,
        on_depth=depths.append,
    )
    sup = Supervisor(
        agents(), cache="memory://", store=store, signing_key=SIGNING_KEY, limits=LIMITS
    )
    try:
        async with sup:
            work = asyncio.create_task(paced_runs(sup, N_RUNS, N_USERS, duration=3.0))
            await asyncio.sleep(0.8)
            await asyncio.to_thread(pg_server.stop)
            await asyncio.sleep(1.2)
            assert store.depth > 0, "the outbox did not fill while PostgreSQL was down"
            await asyncio.to_thread(pg_server.start)
            results = await work
            assert await store.flush(timeout=30), f"outbox stuck at {store.depth}"
        check_outputs(results, N_USERS)
        assert all(r.persisted for r in results)
        assert store.depth == 0 and max(depths) > 0 and depths[-1] == 0
        counts = await store_counts(pg_server.url, schema)
        assert counts == {
            "runs": N_RUNS,
            "succeeded": N_RUNS,
            "results": 2 * N_RUNS,
            "distinct_results": 2 * N_RUNS,
        }
        print(
            f"\npostgres stop: outbox peaked at {max(depths)} records, "
            f"spooled {store.spooled}, replayed {store.replayed}"
        )
    finally:
        await store.aclose()
        if not (pg_server.data / "postmaster.pid").exists():
            pg_server.start()
        await drop_schema(pg_server.url, schema)


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[1])
    from workload import LIMITS, SIGNING_KEY, agents, paced_runs
    from agentkit.store.outbox import OutboxStore
    from agentkit.store.postgres import PostgresStore
    from agentkit.supervisor import Supervisor

    async def main(url, schema, outbox):
        store = OutboxStore(
            PostgresStore(url, schema=schema, connect_timeout=0.5),
            outbox, write_timeout=1.0, probe_initial=30, probe_max=30,
        )
        sup = Supervisor(agents(), cache="memory://", store=store,
                         signing_key=SIGNING_KEY, limits=LIMITS)
        await sup.start()
        results = await paced_runs(sup, 30, 5, duration=0.1)
        assert all(r.ok for r in results)
        print("done", store.depth, " ".join(f"{r.user_id}/{r.run_id}" for r in results),
              flush=True)
        await asyncio.sleep(60)  # SIGKILLed here: the outbox still holds everything

    asyncio.run(main(*sys.argv[2:5]))
    """
)


async def test_killed_process_outbox_replayed_on_restart(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    schema = f"akt_sfault_{secrets.token_hex(4)}"
    outbox = tmp_path / "outbox.db"
    pg_server.stop()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(Path(__file__).parent), pg_server.url, schema,
         str(outbox)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        if not line.startswith("done "):
            child.kill()
            pytest.fail(f"child failed: {line}{child.stderr.read() if child.stderr else ''}")
        _, depth, *runs = line.split()
        assert int(depth) > 0
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    pg_server.start()
    store = OutboxStore(PostgresStore(pg_server.url, schema=schema), outbox, probe_initial=0.1)
    sup = Supervisor(
        agents(), cache="memory://", store=store, signing_key=SIGNING_KEY, limits=LIMITS
    )
    try:
        async with sup:
            assert await store.flush(timeout=20)
            for entry in runs:
                user, run_id = entry.split("/")
                got = await sup.get_run(user, run_id)  # decoded through the codec
                assert got.status is RunStatus.SUCCEEDED
                assert set(got.stages) == set(PIPELINE)
        counts = await store_counts(pg_server.url, schema)
        assert counts == {"runs": 30, "succeeded": 30, "results": 60, "distinct_results": 60}
    finally:
        await store.aclose()
        await drop_schema(pg_server.url, schema)
