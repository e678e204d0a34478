"""The loopback cluster really is separate processes that an asyncio client can use."""

from __future__ import annotations

import os

from distributed import Client
from loopback_cluster import LoopbackCluster


async def test_two_worker_processes_serve_an_async_client(
    dask_cluster: LoopbackCluster, dask_client: Client
) -> None:
    info = await dask_client.scheduler.identity()
    assert len(info["workers"]) == 2
    assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
    pids = await dask_client.run(os.getpid)
    assert len(set(pids.values())) == 2
    assert os.getpid() not in pids.values()
    assert {w.pid for w in dask_cluster.workers.values()} == set(pids.values())
