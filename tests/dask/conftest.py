"""Fixtures: a loopback Dask cluster (scheduler + 2 workers, separate processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from distributed import Client
from loopback_cluster import LoopbackCluster, worker_env


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackCluster]:
    cluster = LoopbackCluster(tmp_path_factory.mktemp("dask"), env=worker_env())
    try:
        cluster.start_scheduler()
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def dask_client(dask_cluster: LoopbackCluster) -> AsyncIterator[Client]:
    async with Client(dask_cluster.address, asynchronous=True, timeout=30) as client:
        yield client
