"""Benchmark: stages on Dask workers vs in-process.

Prints, for one machine on loopback (a scheduler and up to 2 single-threaded workers as
separate processes):

1. CPU-bound throughput: the same batch of CPU-bound stages (a plain ``def run`` doing
   integer arithmetic) in-process, on 1 Dask worker and on 2, side by side, with the
   speed-up of 2 workers over 1.
2. Per-stage overhead: a no-op stage awaited one at a time, in-process vs on Dask (latency),
   and many no-op stages at once (throughput).

Run: ``.venv/bin/python tests/benchmarks/bench_dask.py [--stages N] [--burn N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "dask"))

from distributed import Client  # noqa: E402
from loopback_cluster import (  # noqa: E402
    PLUGINS,
    SIGNING_KEY,
    LoopbackCluster,
    worker_env,
)

from agentkit.dask_executor import DaskExecutor  # noqa: E402
from agentkit.executor import StageJob  # noqa: E402
from agentkit.limits import Limits  # noqa: E402
from agentkit.registry import AgentRegistry  # noqa: E402
from agentkit.supervisor import Supervisor  # noqa: E402


def registry() -> AgentRegistry:
    reg = AgentRegistry()
    reg.load_path(PLUGINS)
    return reg


def supervisor(tmp: Path, executor: Any, name: str) -> Supervisor:
    return Supervisor(
        registry(),
        store=f"sqlite:///{tmp / (name + '.db')}",
        signing_key=SIGNING_KEY,
        executor=executor,
        limits=Limits(max_active_runs=64, max_runs_per_user=8, run_deadline=600.0),
    )


async def burst(sup: Supervisor, agent: str, n: int, inp: Any) -> tuple[float, float]:
    """Run ``n`` one-stage runs over 50 users at once.

    Returns:
        wall seconds, and the CPU seconds the agents' threads used (``dt_burn`` reports it).
    """
    start = time.perf_counter()
    results = await asyncio.gather(
        *(sup.run(f"user{i % 50}", [agent], input=inp) for i in range(n))
    )
    elapsed = time.perf_counter() - start
    bad = [r for r in results if not r.ok]
    if bad:
        raise SystemExit(f"{len(bad)} runs failed, e.g. {bad[0].error}")
    cpu = 0.0
    for r in results:
        out = r.stages[agent].output
        if isinstance(out, dict):
            cpu += float(out.get("cpu", 0.0))
    return elapsed, cpu


def best(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return min(samples, key=lambda s: s[0])


async def latency(sup: Supervisor, n: int) -> float:
    """Median seconds of one no-op run awaited alone."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        result = await sup.run("lat-user", ["dt_noop"], input=i)
        times.append(time.perf_counter() - start)
        assert result.ok, result.error
    return statistics.median(times)


def _noop(i: int) -> int:
    return i


async def raw_dask_latency(client: Client, n: int) -> float:
    """Median seconds of a bare Dask round trip (submit + await a no-op function)."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        await client.submit(_noop, i, pure=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def executor_latency(sup: Supervisor, executor: DaskExecutor, n: int) -> float:
    """Median seconds of ``DaskExecutor.run_stage`` for a no-op stage, without the engine."""
    times = []
    for i in range(n):
        job = StageJob(
            agent="dt_noop",
            agent_version="1",
            run_id=f"bench{i}",
            user_id="lat-user",
            user_hash="0" * 32,
            session_id=None,
            input=i,
            upstream={},
            attempt=1,
            timeout=30.0,
            deadline=time.time() + 30.0,
            blob_context=f"store:bench{i}:dt_noop".encode(),
        )
        start = time.perf_counter()
        outcome = await executor.run_stage(job, lambda kind, data: None)
        times.append(time.perf_counter() - start)
        assert outcome.result.ok, outcome.result.error
    return statistics.median(times)


async def main(args: argparse.Namespace) -> None:
    burn = {"n": args.burn}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cluster = LoopbackCluster(tmp, env=worker_env())
        try:
            cluster.start_scheduler()
            cluster.start_worker("w1")
            cluster.start_worker("w2")
            cluster.wait_for_workers(2)

            async with supervisor(tmp, None, "inproc") as sup:
                await burst(sup, "dt_burn", 4, burn)  # warm up
                t_inproc = best(
                    [await burst(sup, "dt_burn", args.stages, burn) for _ in range(args.repeat)]
                )
                lat_inproc = await latency(sup, args.latency)
                t_noop_inproc, _ = await burst(sup, "dt_noop", args.noop, None)

            async with Client(cluster.address, asynchronous=True) as client:
                info = await client.scheduler.identity()
                w1 = next(a for a, w in info["workers"].items() if w["name"] == "w1")
                one = DaskExecutor(client, submit_options={"workers": [w1]})
                async with (
                    supervisor(tmp, one, "dask1") as sup1,
                    supervisor(tmp, DaskExecutor(client), "dask2") as sup2,
                ):
                    await burst(sup1, "dt_burn", 4, burn)
                    await burst(sup2, "dt_burn", 4, burn)
                    ones, twos = [], []
                    for _ in range(args.repeat):  # alternate, so both see the same noise
                        ones.append(await burst(sup1, "dt_burn", args.stages, burn))
                        twos.append(await burst(sup2, "dt_burn", args.stages, burn))
                    t_one, t_two = best(ones), best(twos)
                    lat_raw = await raw_dask_latency(client, args.latency)
                    lat_dask = await latency(sup1, args.latency)
                    lat_exec = await executor_latency(sup1, one, args.latency)
                    t_noop_dask, _ = await burst(sup2, "dt_noop", args.noop, None)
        finally:
            cluster.stop()

    n = args.stages
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"workers: single-threaded processes; CPU-bound stage: {args.burn:,} rounds of")
    print(f"integer arithmetic in a plain def run; {n} stages per batch, best of {args.repeat}")
    print()
    print(f"{'where stages run':<24}{'wall s':>8}{'stages/s':>10}{'vs 1 worker':>13}", end="")
    print(f"{'cores busy':>12}")
    for label, (t, cpu) in (
        ("in-process (1 process)", t_inproc),
        ("Dask, 1 worker", t_one),
        ("Dask, 2 workers", t_two),
    ):
        print(f"{label:<24}{t:>8.2f}{n / t:>10.1f}{t_one[0] / t:>12.2f}x{cpu / t:>12.2f}")
    print("(cores busy = CPU seconds the agents used / wall seconds: how many cores really")
    print(" worked on stages; other load on the machine lowers it)")
    print()
    print(f"no-op stage awaited alone (median of {args.latency}):")
    print(f"  in-process run      {lat_inproc * 1e3:8.2f} ms")
    print(f"  bare Dask round trip{lat_raw * 1e3:8.2f} ms  (submit + await a no-op function)")
    print(f"  DaskExecutor stage  {lat_exec * 1e3:8.2f} ms  (run_stage alone: submit, run on the")
    print("                                worker, clean, encode, verify, decode)")
    print(f"  Dask run            {lat_dask * 1e3:8.2f} ms  (the whole run through the Supervisor)")
    print(f"  overhead vs in-process: {(lat_dask - lat_inproc) * 1e3:.2f} ms per stage;")
    print(f"  the executor adds {(lat_exec - lat_raw) * 1e3:.2f} ms to a bare Dask round trip;")
    print("  the rest is Dask's scheduling and message batching (client flushes every 10 ms)")
    print(f"{args.noop} no-op stages at once over 2 workers:")
    print(
        f"  in-process {args.noop / t_noop_inproc:8.0f} stages/s   "
        f"Dask {args.noop / t_noop_dask:8.0f} stages/s   "
        f"({(t_noop_dask - t_noop_inproc) / args.noop * 1e3:.2f} ms more per stage)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stages", type=int, default=40, help="CPU-bound stages per batch")
    parser.add_argument("--burn", type=int, default=1_500_000, help="rounds per CPU stage")
    parser.add_argument("--latency", type=int, default=50, help="no-op runs timed one by one")
    parser.add_argument("--noop", type=int, default=400, help="no-op stages run at once")
    parser.add_argument("--repeat", type=int, default=3, help="batches per setting (best of)")
    asyncio.run(main(parser.parse_args()))
