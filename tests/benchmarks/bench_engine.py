"""Engine overhead: a 4-stage no-op pipeline through the Supervisor vs plain coroutines.

Part 1: 200 concurrent users run the pipeline (MemoryCache + SQLiteStore, durable group
commits); prints runs/s and the per-stage overhead over the floor (the same agents awaited as
plain coroutines in the same process).
Breakdown (--breakdown): the same load with parts swapped for no-ops, to show where the time
goes: engine only (a replayed stage outcome, no-op cache and store), + the clean hook and the
codec, + MemoryCache, + SQLiteStore. Process CPU per stage is printed beside wall time because
a shared machine inflates wall time.
Part 2: 10,000 users x 10 runs in one process: peak RSS, and engines evicted when idle.

Run: .venv/bin/python tests/benchmarks/bench_engine.py [--users 200] [--runs 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agentkit.agent import AgentContext, SubAgent
from agentkit.cache.base import BaseCache
from agentkit.executor import EmitFn, InProcessExecutor, StageJob, StageOutcome
from agentkit.limits import Limits
from agentkit.store.base import BaseStore
from agentkit.store.records import ResultRecord, RunRecord
from agentkit.supervisor import Supervisor


class S1(SubAgent):
    name = "s1"

    async def run(self, ctx: AgentContext) -> Any:
        return {"stage": 1, "ok": True}


class S2(SubAgent):
    name = "s2"
    depends_on = ("s1",)

    async def run(self, ctx: AgentContext) -> Any:
        return {"stage": 2, "ok": True}


class S3(SubAgent):
    name = "s3"
    depends_on = ("s2",)

    async def run(self, ctx: AgentContext) -> Any:
        return {"stage": 3, "ok": True}


class S4(SubAgent):
    name = "s4"
    depends_on = ("s3",)

    async def run(self, ctx: AgentContext) -> Any:
        return {"stage": 4, "ok": True}


AGENTS = [S1, S2, S3, S4]
PIPELINE = ["s1", "s2", "s3", "s4"]
KEY = b"bench-signing-key-0123456789abcdef"


async def floor(users: int, runs: int) -> float:
    """The same agents awaited as plain coroutines: the cost of the work itself."""

    async def user(u: int) -> None:
        for r in range(runs):
            upstream: dict[str, Any] = {}
            for cls in AGENTS:
                ctx = AgentContext(
                    user_id=f"user-{u}",
                    run_id=f"run-{u}-{r}",
                    session_id=None,
                    agent=cls.name,
                    input=None,
                    upstream=upstream,
                )
                upstream = {**upstream, cls.name: await cls().run(ctx)}

    t0 = time.perf_counter()
    await asyncio.gather(*(user(u) for u in range(users)))
    return time.perf_counter() - t0


class ReplayExecutor(InProcessExecutor):
    """Runs each agent once, then returns that outcome again: the engine without the stage.

    The replayed blob is re-tagged for each job's context (two hashes), as the engine checks it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._outcomes: dict[str, tuple[StageOutcome, bytes]] = {}

    async def run_stage(self, job: StageJob, emit: EmitFn) -> StageOutcome:
        first = self._outcomes.get(job.agent)
        if first is None:
            outcome = await super().run_stage(job, emit)
            self._outcomes[job.agent] = (outcome, job.blob_context)
            return outcome
        outcome, context = first
        assert self._rt is not None
        blob = self._rt.codec.rebind(outcome.blob, context, job.blob_context)
        return dataclasses.replace(outcome, blob=blob)


class NoopCache(BaseCache):
    async def _get(self, key: str) -> bytes | None:
        return None

    async def _set_many(self, items: list[tuple[str, bytes]], ttl: float | None) -> None:
        return None

    async def _delete(self, key: str) -> bool:
        return False


class NoopStore(BaseStore):
    async def _save_run(self, run: RunRecord) -> None:
        return None

    async def _save_results(self, records: list[ResultRecord]) -> None:
        return None


async def engine(
    users: int,
    runs: int,
    db: Path,
    signing_key: bytes | None,
    *,
    cache: Any = "memory://",
    store: Any = None,
    executor: Any = None,
) -> tuple[float, Supervisor]:
    limits = Limits(max_active_runs=users, max_runs_per_user=1, max_queued_per_user=runs + 1)
    sup = Supervisor(
        AGENTS,
        cache=cache,
        store=store if store is not None else f"sqlite:///{db}",
        signing_key=signing_key,
        limits=limits,
        executor=executor,
    )
    async with sup:

        async def user(u: int) -> None:
            for _ in range(runs):
                res = await sup.run(f"user-{u}", PIPELINE)
                assert res.ok, res

        await user(0)  # warm up
        t0 = time.perf_counter()
        await asyncio.gather(*(user(u) for u in range(users)))
        return time.perf_counter() - t0, sup


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def many_users(n_users: int, runs: int, db: Path) -> None:
    limits = Limits(
        max_active_runs=256, max_runs_per_user=1, max_queued_per_user=runs + 1, engine_idle_ttl=0.5
    )
    sup = Supervisor(
        AGENTS, cache="memory://", store=f"sqlite:///{db}", signing_key=KEY, limits=limits
    )
    peak_engines = 0
    async with sup:
        rss0 = rss_mb()

        async def user(u: int) -> None:
            nonlocal peak_engines
            for _ in range(runs):
                await sup.run(f"u{u:05d}", PIPELINE)
                peak_engines = max(peak_engines, sup.active_engines)

        t0 = time.perf_counter()
        await asyncio.gather(*(user(u) for u in range(n_users)))
        elapsed = time.perf_counter() - t0
        before = sup.active_engines
        await asyncio.sleep(1.2)
        after = sup.active_engines
        print(
            f"  {n_users} users x {runs} runs = {n_users * runs} runs in {elapsed:.1f} s "
            f"({n_users * runs / elapsed:,.0f} runs/s)"
        )
        print(f"  peak RSS {rss_mb():.0f} MB (at start of part 2: {rss0:.0f} MB); target <= 300 MB")
        print(
            f"  engines: peak held {peak_engines}, created {sup.stats.engines_created}, "
            f"held right after the load {before}, after {1.2:.1f} s idle {after} "
            f"(evicted {sup.stats.engines_evicted})"
        )


def breakdown(args: argparse.Namespace, tmp: Path) -> None:
    print(
        f"== breakdown ({args.users} users x {args.runs} runs, signed codec; best of "
        f"{args.repeat}): wall / process CPU per stage"
    )
    stages = args.users * args.runs * 4
    steps: list[tuple[str, Any]] = [
        (
            "engine only",
            lambda db: {"cache": NoopCache(), "store": NoopStore(), "executor": ReplayExecutor()},
        ),
        ("+ clean hook + codec", lambda db: {"cache": NoopCache(), "store": NoopStore()}),
        ("+ MemoryCache", lambda db: {"store": NoopStore()}),
        ("+ SQLiteStore (all)", lambda db: {}),
    ]
    for label, make in steps:
        best_wall = best_cpu = math.inf
        for i in range(args.repeat):
            db = tmp / f"breakdown-{label[:6]}-{i}.db"
            cpu0 = time.process_time()
            e, _ = asyncio.run(engine(args.users, args.runs, db, KEY, **make(db)))
            best_cpu = min(best_cpu, time.process_time() - cpu0)
            best_wall = min(best_wall, e)
        print(
            f"  {label:22s} {best_wall / stages * 1e6:7.1f} us wall  "
            f"{best_cpu / stages * 1e6:7.1f} us CPU (incl. setup)"
        )


def part1(args: argparse.Namespace, tmp: Path) -> None:
    print(f"== part 1: {args.users} concurrent users x {args.runs} runs, 4 no-op stages")
    stages = args.users * args.runs * 4
    runs = args.users * args.runs
    f = min(asyncio.run(floor(args.users, args.runs)) for _ in range(args.repeat))
    for label, key in (("unsigned JSON codec", None), ("signed codec", KEY)):
        best = math.inf
        walls: list[float] = []
        for i in range(args.repeat):
            db = tmp / f"bench-{key is None}-{i}.db"
            if args.profile and key is not None and i == 0:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
            cpu0 = time.process_time()
            e, sup = asyncio.run(engine(args.users, args.runs, db, key))
            cpu = time.process_time() - cpu0
            if args.profile and key is not None and i == 0:
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            assert sup.stats.cache_errors == 0 and sup.stats.store_errors == 0
            best = min(best, e)
            walls.append(e)
        median = sorted(walls)[len(walls) // 2]
        print(
            f"  {label:20s}: {runs / best:8,.0f} runs/s  {best / stages * 1e6:6.1f} us/stage  "
            f"overhead {(best - f) / stages * 1e6:6.1f} us/stage over the floor "
            f"(target <= 60; median of {len(walls)} rounds "
            f"{(median - f) / stages * 1e6:.1f}); "
            f"process CPU of the last round {cpu / stages * 1e6:.1f} us/stage"
        )
    print(
        f"  {'floor (plain awaits)':20s}: {runs / f:8,.0f} runs/s  {f / stages * 1e6:6.1f} us/stage"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--many-users", type=int, default=10_000)
    p.add_argument("--many-runs", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="skip part 2")
    p.add_argument("--only-many", action="store_true", help="only part 2")
    p.add_argument("--repeat", type=int, default=3, help="best of N (the machine may be busy)")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--breakdown", action="store_true", help="also show where the time goes")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.only_many:
            part1(args, Path(tmp))
            if args.breakdown:
                breakdown(args, Path(tmp))
        if not args.quick:
            gc.collect()
            print(f"== part 2: {args.many_users} users x {args.many_runs} runs")
            asyncio.run(many_users(args.many_users, args.many_runs, Path(tmp) / "many.db"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
