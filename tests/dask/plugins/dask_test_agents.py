"""Agents the Dask tests install on their workers (a plugin folder, loaded by path)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from agentkit.agent import AgentContext, SubAgent


class Echo(SubAgent):
    """Returns its input, where it ran, and emits three progress events."""

    name = "dt_echo"
    version = "1"
    # What production agents on a cluster should have: a stage stuck on a lost worker is
    # timed out and retried elsewhere instead of failing the run.
    timeout = 15.0
    retries = 2

    async def run(self, ctx: AgentContext) -> dict[str, Any]:
        for step in range(3):
            ctx.emit("progress", step=step, user=ctx.user_id)
        return {"input": ctx.input, "user": ctx.user_id, "pid": os.getpid()}


class Follow(SubAgent):
    """Reads the clean upstream output of dt_echo."""

    name = "dt_follow"
    version = "1"
    timeout = 15.0
    retries = 2
    depends_on = ("dt_echo",)

    async def run(self, ctx: AgentContext) -> dict[str, Any]:
        return {"saw": ctx.upstream["dt_echo"]["input"], "user": ctx.user_id}


class Contaminated(SubAgent):
    """Returns what real agents return: live handles pickle refuses."""

    name = "dt_contaminated"
    version = "1"

    async def run(self, ctx: AgentContext) -> dict[str, Any]:
        return {"module": os, "lock": threading.Lock(), "fn": lambda x: x, "value": 42}


class Sleepy(SubAgent):
    """Sleeps ``input['seconds']`` (async), then answers; for cancellation and timeouts."""

    name = "dt_sleepy"
    version = "1"
    timeout = 60.0

    async def run(self, ctx: AgentContext) -> dict[str, Any]:
        ctx.emit("progress", phase="sleeping")
        await asyncio.sleep(float(ctx.input.get("seconds", 1.0)))
        return {"slept": True, "pid": os.getpid()}


class Burn(SubAgent):
    """CPU-bound: ``input['n']`` rounds of integer arithmetic in a plain ``def run``."""

    name = "dt_burn"
    version = "1"
    timeout = 120.0

    def run(self, ctx: AgentContext) -> dict[str, Any]:  # type: ignore[override]
        n = int(ctx.input.get("n", 200_000))
        wall, cpu = time.perf_counter(), time.thread_time()
        acc = 0
        for i in range(n):
            acc = (acc * 31 + i) % 1_000_003
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        return {"acc": acc, "pid": os.getpid(), "wall": wall, "cpu": cpu}


class Noop(SubAgent):
    """Does nothing: measures the per-stage overhead of where stages run."""

    name = "dt_noop"
    version = "1"

    async def run(self, ctx: AgentContext) -> int:
        return 1


class Traced(SubAgent):
    """Starts a span of its own (as an instrumented library would) and emits an event."""

    name = "dt_traced"
    version = "1"
    timeout = 15.0

    async def run(self, ctx: AgentContext) -> dict[str, Any]:
        from opentelemetry import trace

        with trace.get_tracer("dask-test-agent").start_as_current_span("dt_traced.inner"):
            ctx.emit("progress", step=1, user=ctx.user_id)
        return {"user": ctx.user_id, "pid": os.getpid(), "lock": threading.Lock()}
