"""Throughput of the embedded backends: SQLiteStore group commits, OutboxStore, MemoryCache.

Run: ``.venv/bin/python tests/benchmarks/bench_embedded_backends.py [--records 20000]``.
Prints records/s for sustained saves from many concurrent tasks, the group sizes the writer
thread achieved, per-call latency, and MemoryCache get/set rates.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agentkit.cache.memory import MemoryCache
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.errors import StoreError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.base import Store
from agentkit.store.outbox import OutboxStore
from agentkit.store.records import ResultRecord, RunRecord
from agentkit.store.sqlite import SQLiteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def blob(n: int, size: int = 512) -> bytes:
    payload = json.dumps({"n": n, "pad": "x" * size}).encode()[:size]
    header = encode_header(LayerTag.JSON, EnvelopeFlags.RESULT, "", len(payload))
    return header + payload + hashlib.sha256(payload).digest()


def result(user: str, run_id: str, agent: str, n: int) -> ResultRecord:
    at = T0 + timedelta(milliseconds=n)
    return ResultRecord(
        run_id=run_id,
        user_id=user,
        agent=agent,
        agent_version="1",
        status=AgentStatus.SUCCEEDED,
        started_at=at,
        finished_at=at,
        duration_s=0.001,
        output_json='{"ok": true}',
        blob=blob(n),
    )


def run(user: str, run_id: str, status: RunStatus, n: int) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        user_id=user,
        pipeline=["a", "b", "c", "d"],
        status=status,
        submitted_at=T0 + timedelta(milliseconds=n),
    )


async def saves(store: Store, records: int, tasks: int) -> tuple[float, list[float], float]:
    """``tasks`` concurrent tasks each saving ``records // tasks`` single-record batches."""
    per_task = records // tasks
    prepared = [
        [result(f"user{t}", f"run-{t}-{i // 4}", f"agent{i % 4}", i) for i in range(per_task)]
        for t in range(tasks)
    ]
    latencies: list[float] = []

    async def worker(recs: list[ResultRecord]) -> None:
        for rec in recs:
            t = time.perf_counter()
            await store.save_results([rec])
            latencies.append(time.perf_counter() - t)

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(p) for p in prepared))
    return time.perf_counter() - t0, latencies, time.process_time() - c0


async def engine_like(store: Store, runs: int, tasks: int) -> tuple[float, float]:
    """Per run: save_run(running), 4 x save_results([one]), save_run(succeeded)."""
    per_task = runs // tasks
    prepared = []
    for t in range(tasks):
        for i in range(per_task):
            rid = f"e-{t}-{i}"
            user = f"user{t}"
            prepared.append(
                (
                    run(user, rid, RunStatus.RUNNING, i),
                    [result(user, rid, f"agent{k}", i) for k in range(4)],
                    run(user, rid, RunStatus.SUCCEEDED, i),
                )
            )

    async def worker(items: list[tuple[RunRecord, list[ResultRecord], RunRecord]]) -> None:
        for start, recs, end in items:
            await store.save_run(start)
            for rec in recs:
                await store.save_results([rec])
            await store.save_run(end)

    chunks = [prepared[t * per_task : (t + 1) * per_task] for t in range(tasks)]
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(c) for c in chunks))
    return time.perf_counter() - t0, time.process_time() - c0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1e6


async def bench_sqlite(args: argparse.Namespace, tmp: Path) -> None:
    for sync in ("NORMAL", "FULL"):
        async with SQLiteStore(tmp / f"bench-{sync}.db", synchronous=sync) as store:
            commits0, wcpu0 = store.commits, store.writer_cpu_seconds
            elapsed, lat, cpu = await saves(store, args.records, args.tasks)
            commits = store.commits - commits0
            wcpu = store.writer_cpu_seconds - wcpu0
            print(
                f"SQLiteStore[{sync:6}] save_results: {args.records} records from "
                f"{args.tasks} tasks in {elapsed:.2f}s = {args.records / elapsed:,.0f} records/s; "
                f"{commits} commits (mean group {args.records / max(commits, 1):.0f}); "
                f"latency p50 {pct(lat, 0.5):.0f} us, p99 {pct(lat, 0.99):.0f} us; "
                f"CPU {cpu / args.records * 1e6:.1f} us/record (writer thread "
                f"{wcpu / args.records * 1e6:.1f}, "
                f"event loop {(cpu - wcpu) / args.records * 1e6:.1f})"
            )
    async with SQLiteStore(tmp / "bench-engine.db") as store:
        n = args.records // 4
        elapsed, cpu = await engine_like(store, n, args.tasks)
        writes = n * 6
        print(
            f"SQLiteStore engine-like: {n} runs x (2 save_run + 4 save_results) from "
            f"{args.tasks} tasks in {elapsed:.2f}s = {writes / elapsed:,.0f} writes/s; "
            f"per stage: {elapsed / (n * 4) * 1e6:.1f} us wall, "
            f"{cpu / (n * 4) * 1e6:.1f} us CPU (all threads)"
        )
        t0 = time.perf_counter()
        for t in range(200):
            await store.list_runs(f"user{t % args.tasks}", limit=20)
        print(f"SQLiteStore list_runs: {(time.perf_counter() - t0) / 200 * 1e6:.0f} us/query")


async def bench_outbox(args: argparse.Namespace, tmp: Path) -> None:
    inner = SQLiteStore(tmp / "outbox-inner.db")
    async with OutboxStore(inner, tmp / "outbox.db") as store:
        elapsed, lat, _ = await saves(store, args.records, args.tasks)
        print(
            f"OutboxStore(SQLite) healthy: {args.records / elapsed:,.0f} records/s; "
            f"latency p50 {pct(lat, 0.5):.0f} us"
        )

    class Down(SQLiteStore):
        async def _save_results(self, records: list[ResultRecord]) -> None:
            raise StoreError("down")

    async with OutboxStore(Down(tmp / "down.db"), tmp / "outbox2.db") as store:
        n = args.records // 4
        elapsed, lat, _ = await saves(store, n, args.tasks)
        print(
            f"OutboxStore spooling (store down, outbox synchronous=FULL): "
            f"{n / elapsed:,.0f} records/s; latency p50 {pct(lat, 0.5):.0f} us; "
            f"depth {store.depth}"
        )


async def bench_memory(args: argparse.Namespace) -> None:
    cache = MemoryCache(max_bytes=64 << 20, ttl=3600)
    items = [(f"akt:u:{i % 997:032x}:run{i}:agent", blob(i)) for i in range(args.records)]
    t0 = time.thread_time()
    for k, v in items:
        await cache.set(k, v)
    t_set = time.thread_time() - t0
    t0 = time.thread_time()
    for k, _ in items:
        await cache.get(k)
    t_get = time.thread_time() - t0
    n = len(items)
    print(
        f"MemoryCache (CPU): set {t_set / n * 1e6:.2f} us/op, get {t_get / n * 1e6:.2f} us/op "
        f"({n} x {len(items[0][1])} B values, {len(cache)} entries, {cache.size_bytes:,} B)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        await bench_sqlite(args, Path(d))
        await bench_outbox(args, Path(d))
    await bench_memory(args)


if __name__ == "__main__":
    asyncio.run(main())
