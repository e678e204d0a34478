"""The Supervisor workload the fault tests break servers under: small two-stage runs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agentkit.agent import AgentContext, SubAgent
from agentkit.limits import Limits
from agentkit.run import RunResult
from agentkit.supervisor import Supervisor
from agentkit.testing import make_agent

SIGNING_KEY = b"fault-tests-signing-key-0123456789abcdef"
PIPELINE = ("fault_first", "fault_second")
LIMITS = Limits(max_active_runs=64, max_runs_per_user=8, drain_timeout=10.0)


def agents(delay: float = 0.003) -> list[type[SubAgent]]:
    """``fault_first`` echoes who and what it ran for; ``fault_second`` builds on it."""

    async def first(ctx: AgentContext) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"user": ctx.user_id, "n": ctx.input}

    def second(ctx: AgentContext) -> dict[str, Any]:
        up = ctx.upstream["fault_first"]
        return {"user": up["user"], "n_plus_one": up["n"] + 1}

    return [
        make_agent("fault_first", first),
        make_agent("fault_second", second, depends_on=("fault_first",)),
    ]


async def paced_runs(
    sup: Supervisor, n: int, users: int, duration: float, timeout: float = 60.0
) -> list[RunResult]:
    """Submit ``n`` runs for ``users`` users spread over ``duration`` seconds; await all."""
    gap = duration / n
    start = time.monotonic()
    handles = []
    for i in range(n):
        handles.append(await sup.submit(f"user-{i % users}", PIPELINE, input=i))
        lag = start + (i + 1) * gap - time.monotonic()
        if lag > 0:
            await asyncio.sleep(lag)
    async with asyncio.timeout(timeout):
        return list(await asyncio.gather(*(h.result() for h in handles)))


def check_outputs(results: list[RunResult], users: int) -> None:
    """Every run succeeded with its own user's outputs."""
    for r in results:
        assert r.ok, (r.status, r.error)
        i = r.stages["fault_first"].output["n"]
        assert r.user_id == f"user-{i % users}"
        assert r.stages["fault_second"].output == {"user": r.user_id, "n_plus_one": i + 1}
