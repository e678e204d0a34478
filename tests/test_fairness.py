"""Fair scheduling: a user with 1,000 queued runs cannot starve users with one."""

from __future__ import annotations

import asyncio

from agentkit.agent import AgentContext
from agentkit.limits import Limits
from agentkit.scheduler import FairScheduler, Lane
from agentkit.status import RunStatus
from agentkit.supervisor import Supervisor
from agentkit.testing import RecordingStore, make_agent


def test_round_robin_across_lanes_with_global_and_per_lane_limits() -> None:
    started: list[str] = []
    sched: FairScheduler[str] = FairScheduler(3, 2, lambda lane, item: started.append(item))
    heavy, a, b = Lane[str](), Lane[str](), Lane[str]()
    for i in range(10):
        sched.enqueue(heavy, f"h{i}")
    sched.enqueue(a, "a0")
    sched.enqueue(b, "b0")
    sched.enqueue(b, "b1")
    # h0 and h1 started at once (per-lane limit 2), then a0 took the last global slot
    assert started == ["h0", "h1", "a0"] and sched.active == 3
    sched.release(heavy)  # a heavy run finished: b is next in the ring, not heavy
    assert started[-1] == "b0"
    sched.release(a)
    assert started[-1] == "h2"  # back of the ring: heavy again (b's turn comes next)
    sched.release(heavy)
    assert started[-1] == "b1"
    assert sched.remove(heavy, "h5") and not sched.remove(heavy, "h5")
    while sched.active:
        for lane in (heavy, a, b):
            if lane.active:
                sched.release(lane)
                break
    assert [s for s in started if s.startswith("h")] == [f"h{i}" for i in range(10) if i != 5]
    assert heavy.idle and a.idle and b.idle


async def test_light_users_finish_before_the_heavy_users_200th_run() -> None:
    completed: list[str] = []

    async def work(ctx: AgentContext) -> None:
        await asyncio.sleep(0.001)
        completed.append(ctx.user_id)

    limits = Limits(max_active_runs=8, max_runs_per_user=8, max_queued_per_user=1000)
    async with Supervisor([make_agent("work", work)], store=RecordingStore(), limits=limits) as sup:
        heavy = [await sup.submit("heavy", ["work"]) for _ in range(1000)]
        light = [await sup.submit(f"light-{i}", ["work"]) for i in range(100)]
        results = await asyncio.gather(*(h.result() for h in [*heavy, *light]))
    assert all(r.status is RunStatus.SUCCEEDED for r in results)
    last_light = max(i for i, u in enumerate(completed) if u != "heavy")
    heavy_before = completed[:last_light].count("heavy")
    assert heavy_before < 200, f"the heavy user completed {heavy_before} runs first"
    assert completed.count("heavy") == 1000
