"""A stage whose worker dies more often than the scheduler allows fails clearly; no hang."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client
from loopback_cluster import PLUGINS, SIGNING_KEY, LoopbackCluster, worker_env

from agentkit.dask_executor import DaskExecutor
from agentkit.registry import AgentRegistry
from agentkit.status import AgentStatus, RunStatus
from agentkit.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def strict_cluster(tmp_path: Path) -> Iterator[LoopbackCluster]:
    """A scheduler that gives up on a task the first time its worker dies."""
    cluster = LoopbackCluster(tmp_path, env=worker_env())
    try:
        cluster.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.parametrize("resubmit", [0, 1])
async def test_worker_lost_beyond_allowed_failures(
    strict_cluster: LoopbackCluster, tmp_path: Path, resubmit: int
) -> None:
    """resubmit=0: the stage fails clearly (KilledWorker); resubmit=1: it runs again on the
    surviving worker and succeeds."""
    registry = AgentRegistry()
    registry.load_path(PLUGINS)
    async with (
        Client(strict_cluster.address, asynchronous=True, timeout=30) as client,
        Supervisor(
            registry,
            store=f"sqlite:///{tmp_path / 'runs.db'}",
            signing_key=SIGNING_KEY,
            executor=DaskExecutor(client, resubmit=resubmit),
        ) as sup,
    ):
        handle = await sup.submit("jack", ["dt_sleepy"], input={"seconds": 4 + 26 * (1 - resubmit)})
        async for ev in handle.events():
            if ev.kind == "progress":
                break
        processing = await client.scheduler.processing()
        busy = [addr for addr, keys in processing.items() if keys]
        names = {a: w["name"] for a, w in (await client.scheduler.identity())["workers"].items()}
        assert len(busy) == 1
        victim = names[busy[0]]
        strict_cluster.kill_worker(victim)
        result = await asyncio.wait_for(handle.result(), timeout=30)
    stage = result.stages["dt_sleepy"]
    if resubmit:
        assert result.status is RunStatus.SUCCEEDED, result.error
        survivor = next(p for n, p in strict_cluster.workers.items() if n != victim)
        assert stage.output["pid"] == survivor.pid
    else:
        assert result.status is RunStatus.FAILED
        assert stage.status is AgentStatus.FAILED and stage.error is not None
        assert "KilledWorker" in stage.error.type
