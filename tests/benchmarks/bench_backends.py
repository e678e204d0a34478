"""Benchmark the real backends side by side (needs Redis on :6379 and PostgreSQL on :5432).

Prints, in one run:
  1. RedisCache get/set vs raw redis-py on the same bytes (overhead target <= 1.3x);
  2. pipelined (coalesced) write throughput vs one SET per round trip;
  3. PostgresStore batched (unnest) vs per-row inserts, with executemany and COPY for reference.

Run: .venv/bin/python tests/benchmarks/bench_backends.py [--quick]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as redis_asyncio

from agentkit.cache.redis import RedisCache
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.status import AgentStatus
from agentkit.store.postgres import PostgresStore
from agentkit.store.records import ResultRecord

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
QUICK = "--quick" in sys.argv


def envelope(size: int) -> bytes:
    payload = json.dumps({"pad": "x" * max(0, size - 64)}).encode()
    header = encode_header(LayerTag.JSON, EnvelopeFlags.RESULT, "", len(payload))
    return header + payload + hashlib.sha256(payload).digest()


async def paired(
    a: Callable[[int], Awaitable[object]],
    b: Callable[[int], Awaitable[object]],
    n: int,
    rounds: int = 15,
) -> tuple[float, float]:
    """Seconds per sequential call of ``a`` and ``b``, measured in alternating rounds; the
    fastest round of each (the machine is shared: the minimum is the least noisy figure)."""
    best_a = best_b = float("inf")
    for r in range(rounds):
        for which in (a, b) if r % 2 == 0 else (b, a):
            t0 = time.perf_counter()
            for i in range(n):
                await which(i)
            took = (time.perf_counter() - t0) / n
            if which is a:
                best_a = min(best_a, took)
            else:
                best_b = min(best_b, took)
    return best_a, best_b


async def bench_redis() -> None:
    n = 200 if QUICK else 1000
    prefix = f"akt-bench-{secrets.token_hex(4)}:"
    raw = redis_asyncio.Redis.from_pool(
        redis_asyncio.BlockingConnectionPool.from_url(REDIS_URL, max_connections=64)
    )
    # a generous timeout: this measures overhead, not fault handling, on a shared box
    cache = RedisCache(REDIS_URL, key_prefix=prefix, max_connections=64, op_timeout=10.0)
    print("== Redis (loopback), sequential ops, per op (best of 15 alternating rounds)")
    print(f"{'value':>8} {'op':>4} {'raw redis-py':>14} {'RedisCache':>12} {'ratio':>6}")
    try:
        for size in (256, 4096, 65536):
            value = envelope(size)
            for i in range(n):  # warm both paths, fill keys for gets
                await raw.set(f"{prefix}r{i}", value, px=600_000)
            await cache.set_many([(f"c{i}", value) for i in range(n)], ttl=600)
            raw_set, ak_set = await paired(
                lambda i, v=value: raw.set(f"{prefix}r{i}", v, px=600_000),  # type: ignore[misc]
                lambda i, v=value: cache.set(f"c{i}", v, ttl=600),  # type: ignore[misc]
                n,
            )
            raw_get, ak_get = await paired(
                lambda i: raw.get(f"{prefix}r{i}"), lambda i: cache.get(f"c{i}"), n
            )
            for op, r, a in (("set", raw_set, ak_set), ("get", raw_get, ak_get)):
                print(f"{size:>7}B {op:>4} {r * 1e6:>11.1f} us {a * 1e6:>9.1f} us {a / r:>5.2f}x")

        print("\n== Redis write throughput: 20,000 x 1 KiB values")
        value = envelope(1024)
        total = 2000 if QUICK else 20_000
        before = cache.stats.pipelines
        t0 = time.perf_counter()
        for i in range(total):
            await raw.set(f"{prefix}s{i}", value, px=600_000)
        seq = total / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        await asyncio.gather(*(cache.set(f"p{i}", value, ttl=600) for i in range(total)))
        coalesced = total / (time.perf_counter() - t0)
        print(f"  raw redis-py, one SET per round trip   : {seq:>10,.0f} writes/s")
        print(
            f"  RedisCache, concurrent set() coalesced : {coalesced:>10,.0f} writes/s "
            f"({coalesced / seq:.1f}x; {cache.stats.pipelines - before} round trips)"
        )
    finally:
        await cache.aclose()
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await raw.delete(*keys[i : i + 1000])
        await raw.aclose()


def records(n: int, tag: str) -> list[ResultRecord]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    blob = envelope(2048)
    return [
        ResultRecord(
            run_id=f"{tag}-run-{i // 4}",
            user_id=f"user{i % 50}",
            agent=f"agent{i % 4}",
            agent_version="1",
            status=AgentStatus.SUCCEEDED,
            started_at=at + timedelta(seconds=i),
            finished_at=at + timedelta(seconds=i, milliseconds=5),
            duration_s=0.005,
            output_json=json.dumps({"i": i, "cost": i * 0.01, "tags": ["a", "b"]}),
            blob=blob,
        )
        for i in range(n)
    ]


async def bench_postgres() -> None:
    schema = f"akt_bench_{secrets.token_hex(4)}"
    store = PostgresStore(PG_URL, schema=schema, max_size=10)
    await store.start()
    n = 1000 if QUICK else 5000
    print(f"\n== PostgresStore inserts (loopback), {n} result records of ~2 KiB envelope each")
    try:
        rate: dict[str, float] = {}
        recs = records(n, "row")
        t0 = time.perf_counter()
        for r in recs:
            await store.save_results([r])
        rate["per-row save_results([r])"] = n / (time.perf_counter() - t0)

        for batch in (100, 500):
            recs = records(n, f"b{batch}")
            t0 = time.perf_counter()
            for i in range(0, n, batch):
                await store.save_results(recs[i : i + batch])
            rate[f"batched save_results, {batch}/stmt (unnest)"] = n / (time.perf_counter() - t0)

        recs = records(n, "conc")
        statements = store._results.statements
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(200)

        async def one(r: ResultRecord) -> None:
            async with sem:
                await store.save_results([r])

        await asyncio.gather(*(one(r) for r in recs))
        grouped = store._results.statements - statements
        rate[f"per-row, 200 concurrent -> {grouped} statements"] = n / (time.perf_counter() - t0)

        conn = await asyncpg.connect(PG_URL)
        try:
            s = f'"{schema}"'
            cols = (
                "run_id, agent, user_id, agent_version, session_id, status, started_at, "
                "finished_at, duration_s, ts, output, output_json, blob"
            )
            recs = records(n, "em")
            rows = [
                (r.run_id, r.agent, r.user_id, r.agent_version, r.session_id, r.status.value,
                 r.started_at, r.finished_at, r.duration_s, r.finished_at, r.output_json,
                 r.output_json, r.blob)
                for r in recs
            ]  # fmt: skip
            upsert = (
                f"INSERT INTO {s}.results ({cols}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,"
                "$11::jsonb,$12,$13) ON CONFLICT (run_id, agent) DO UPDATE SET "
                "blob = EXCLUDED.blob"
            )
            t0 = time.perf_counter()
            for i in range(0, n, 500):
                await conn.executemany(upsert, rows[i : i + 500])
            rate["raw asyncpg executemany, 500/call"] = n / (time.perf_counter() - t0)

            # COPY in binary needs a jsonb encoder: load the text column, cast on upsert
            rows = [(f"copy{r[0]}", *r[1:10], r[11], r[12]) for r in rows]
            copy_cols = [c for c in cols.split(", ") if c != "output"]
            t0 = time.perf_counter()
            for i in range(0, n, 500):
                async with conn.transaction():
                    await conn.execute(
                        f"CREATE TEMP TABLE tmp_results (LIKE {s}.results INCLUDING DEFAULTS)"
                        " ON COMMIT DROP"
                    )
                    await conn.copy_records_to_table(
                        "tmp_results", records=rows[i : i + 500], columns=copy_cols
                    )
                    await conn.execute(
                        f"INSERT INTO {s}.results ({cols}) SELECT {', '.join(copy_cols[:10])},"
                        " output_json::jsonb, output_json, blob FROM tmp_results"
                        " ON CONFLICT (run_id, agent) DO UPDATE SET blob = EXCLUDED.blob"
                    )
            rate["raw COPY to temp + upsert, 500/batch"] = n / (time.perf_counter() - t0)
        finally:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
        base = rate["per-row save_results([r])"]
        for name, r in rate.items():
            print(f"  {name:<42}: {r:>9,.0f} records/s  ({r / base:4.1f}x per-row)")
    finally:
        await store.aclose()


async def main() -> None:
    await bench_redis()
    await bench_postgres()


if __name__ == "__main__":
    asyncio.run(main())
