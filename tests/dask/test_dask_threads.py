"""A worker with several threads runs stages concurrently, each on its own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client
from loopback_cluster import PLUGINS, SIGNING_KEY, LoopbackCluster, worker_env

from agentkit.dask_executor import DaskExecutor
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def threaded_cluster(tmp_path: Path) -> Iterator[LoopbackCluster]:
    cluster = LoopbackCluster(tmp_path, env=worker_env(), nthreads=3)
    try:
        cluster.start_scheduler()
        cluster.start_worker("t1")
        cluster.wait_for_workers(1)
        yield cluster
    finally:
        cluster.stop()


async def test_concurrent_stages_on_a_multi_threaded_worker(
    threaded_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    registry = AgentRegistry()
    registry.load_path(PLUGINS)
    async with (
        Client(threaded_cluster.address, asynchronous=True, timeout=30) as client,
        Supervisor(
            registry,
            store=f"sqlite:///{tmp_path / 'runs.db'}",
            signing_key=SIGNING_KEY,
            executor=DaskExecutor(client),
            limits=Limits(max_active_runs=12, max_runs_per_user=3),
        ) as sup,
    ):

        async def one(i: int) -> tuple[int, object, list[object]]:
            pipeline = ["dt_echo", "dt_follow"] if i % 3 else ["dt_burn"]
            handle = await sup.submit(f"u{i % 7}", pipeline, input={"i": i, "n": 20_000})
            events = [e async for e in handle.events()]
            return i, await handle.result(), events

        done = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(30))), 90)
    for i, result, events in done:
        assert result.ok, result.error  # type: ignore[attr-defined]
        user = f"u{i % 7}"
        assert {e.user_id for e in events} == {user}  # type: ignore[attr-defined]
        if i % 3:
            progress = [e for e in events if e.kind == "progress"]  # type: ignore[attr-defined]
            assert [e.data["step"] for e in progress] == [0, 1, 2]
            assert {e.data["user"] for e in progress} == {user}
            assert result.stages["dt_follow"].output["saw"]["i"] == i  # type: ignore[attr-defined]
