"""Per-stage cost of telemetry: the same runs with tracing off (``Telemetry.noop()``) and on.

"On" is the OpenTelemetry SDK as an app would run it: a tracer provider with a batch span
processor (export off the hot path, to an exporter that drops the batches) and a meter
provider with a reader. Rounds alternate off/on to even out machine noise; the figures are
medians over rounds. Target: tracing on costs at most 15 % more per stage.

Run: ``python tests/benchmarks/bench_telemetry.py [--runs N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentkit.agent import AgentContext, SubAgent
from agentkit.limits import Limits
from agentkit.status import RunStatus
from agentkit.supervisor import Supervisor
from agentkit.telemetry import Telemetry

STAGES = ("fetch", "parse", "score", "report")
TARGET = 15.0


class _Drop(SpanExporter):
    """Accepts batches and drops them (the cost of a real network export is off-thread)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def _payload(ctx: AgentContext, stage: str) -> dict[str, Any]:
    # A typical small agent result: a few dozen records, clean already.
    return {
        "stage": stage,
        "items": [
            {"id": i, "model": "gpt-x", "cost": i * 0.01, "tags": ["a", "b"]} for i in range(40)
        ],
        "summary": {"n": 40, "attempt": ctx.attempt},
    }


class Fetch(SubAgent):
    name = "fetch"

    async def run(self, ctx: AgentContext) -> Any:
        ctx.emit("progress", pct=100)
        return _payload(ctx, self.name)


class Parse(SubAgent):
    name = "parse"
    depends_on = ("fetch",)

    async def run(self, ctx: AgentContext) -> Any:
        return _payload(ctx, self.name)


class Score(SubAgent):
    name = "score"
    depends_on = ("parse",)

    async def run(self, ctx: AgentContext) -> Any:
        return _payload(ctx, self.name)


class Report(SubAgent):
    name = "report"
    depends_on = ("score",)

    async def run(self, ctx: AgentContext) -> Any:
        return _payload(ctx, self.name)


AGENTS: list[type[SubAgent]] = [Fetch, Parse, Score, Report]


async def _round(tel: Telemetry, db: Path, runs: int, concurrency: int) -> float:
    """Seconds per stage over ``runs`` runs of the 4-stage pipeline."""
    limits = Limits(max_active_runs=concurrency, max_runs_per_user=concurrency)
    async with Supervisor(
        AGENTS,
        store=f"sqlite:///{db}",
        signing_key=b"bench-telemetry-signing-key-012345",
        limits=limits,
        telemetry=tel,
    ) as sup:
        await sup.run("warm-up", list(STAGES))
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                res = await sup.run(f"user-{i % 16}", list(STAGES))
                assert res.status is RunStatus.SUCCEEDED, res.error

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(runs)))
        elapsed = time.perf_counter() - t0
    return elapsed / (runs * len(STAGES))


def _facade_per_stage(tel: Telemetry, n: int = 20_000) -> float:
    """Seconds of telemetry calls the engine makes per stage, without the engine."""

    def stage() -> None:
        with tel.agent_span("a", "1", run_id="r", user_hash="h", attempt=1) as span:
            tel.agent_event("progress", {"pct": 100})
            with tel.step_span("agentkit.clean_result"):
                pass
            with tel.step_span("agentkit.codec.encode") as s:
                s.set(layer="json", payload_bytes=2048)
            tel.record_encoding("json", 2048)
            with tel.step_span("agentkit.cache.set") as s:
                s.set(payload_bytes=2048)
            with tel.step_span("agentkit.store.save") as s:
                s.set(payload_bytes=2048)
            tel.record_agent("a", "succeeded", 0.001)
            span.set_outcome("succeeded")

    for _ in range(1000):
        stage()
    t0 = time.perf_counter()
    for _ in range(n):
        stage()
    return (time.perf_counter() - t0) / n


def _sdk_telemetry() -> tuple[Telemetry, TracerProvider, MeterProvider, _Drop]:
    exporter = _Drop()
    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536))
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return Telemetry(tracer_provider=tp, meter_provider=mp), tp, mp, exporter


async def _main(runs: int, rounds: int, concurrency: int) -> int:
    tel_on, tp, mp, exporter = _sdk_telemetry()
    tel_off = Telemetry.noop()
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for label, tel, sink in (("off", tel_off, off), ("on", tel_on, on)):
                db = Path(tmp) / f"{label}-{r}.db"
                sink.append(await _round(tel, db, runs, concurrency))
    tp.force_flush()
    tp.shutdown()
    mp.shutdown()
    med_off, med_on = statistics.median(off), statistics.median(on)
    overhead = (med_on / med_off - 1.0) * 100.0
    f_off, f_on = _facade_per_stage(tel_off), _facade_per_stage(_sdk_telemetry()[0])

    print(
        f"telemetry overhead per stage ({runs} runs x {len(STAGES)} stages, "
        f"concurrency {concurrency}, {rounds} rounds, medians)"
    )
    print(f"{'':28}{'tracing off':>14}{'tracing on':>14}{'difference':>14}")
    print(
        f"{'engine, per stage':28}{med_off * 1e6:>11.1f} µs{med_on * 1e6:>11.1f} µs"
        f"{(med_on - med_off) * 1e6:>+11.1f} µs"
    )
    print(
        f"{'telemetry calls, per stage':28}{f_off * 1e6:>11.2f} µs{f_on * 1e6:>11.2f} µs"
        f"{(f_on - f_off) * 1e6:>+11.2f} µs"
    )
    print(f"overhead with tracing on: {overhead:+.1f} % (target <= {TARGET:.0f} %)")
    print(f"spans exported: {exporter.spans}")
    print(f"rounds off (µs/stage): {', '.join(f'{x * 1e6:.0f}' for x in off)}")
    print(f"rounds on  (µs/stage): {', '.join(f'{x * 1e6:.0f}' for x in on)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200, help="runs per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating off/on rounds")
    parser.add_argument("--concurrency", type=int, default=8, help="runs in flight at once")
    args = parser.parse_args(argv)
    return asyncio.run(_main(args.runs, args.rounds, args.concurrency))


if __name__ == "__main__":
    sys.exit(main())
