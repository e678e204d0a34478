"""Acceptance: many supervisors, one truth, and a worker killed mid-load.

On loopback: a Dask scheduler and 2 workers (separate processes), plus 2 Supervisor
processes sharing Redis (own key prefix) and PostgreSQL (own schema). 1,000 runs across 100
users. While they run, one worker is SIGKILLed. Then: every run succeeded and is in
PostgreSQL exactly once with all its stage records, each caller saw its own events and
nobody else's, every run is readable from the *other* supervisor and not-found for another
user, and nothing is left of the test in Redis or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis_asyncio
from loopback_cluster import PLUGINS, SIGNING_KEY, LoopbackCluster, worker_env

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
USERS = [f"user-{n:03d}" for n in range(100)]
RUNS_PER_USER_PER_SUPERVISOR = 5  # x 2 supervisors x 100 users = 1,000 runs
STAGES = ("dt_echo", "dt_follow")
SCRIPT = Path(__file__).with_name("scale_supervisor.py")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LoopbackCluster]:
    c = LoopbackCluster(tmp_path, env=worker_env())
    try:
        c.start_scheduler()
        c.start_worker("w1")
        c.start_worker("w2")
        c.wait_for_workers(2)
        yield c
    finally:
        c.stop()


@pytest.fixture
async def shared() -> AsyncIterator[dict[str, str]]:
    suffix = secrets.token_hex(4)
    names = {"schema": f"ak_dask_{suffix}", "prefix": f"akdask{suffix}"}
    yield names
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{names["schema"]}" CASCADE')
    finally:
        await conn.close()
    r = redis_asyncio.from_url(REDIS_URL)
    try:
        keys = [k async for k in r.scan_iter(match=f"{names['prefix']}*")]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()


async def _count_results(schema: str) -> int:
    conn = await asyncpg.connect(PG_URL)
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".results'))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def test_two_supervisors_1000_runs_100_users_worker_killed_mid_load(
    cluster: LoopbackCluster, shared: dict[str, str], tmp_path: Path
) -> None:
    executor = cluster.address.replace("tcp://", "dask://")
    outs = [tmp_path / "sup-a.json", tmp_path / "sup-b.json"]
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "AGENTKIT_TEST_SIGNING_KEY": SIGNING_KEY.hex()}
    for me, peer in ((0, 1), (1, 0)):
        cfg = {
            "plugins": str(PLUGINS),
            "redis": REDIS_URL,
            "prefix": shared["prefix"],
            "postgres": PG_URL,
            "schema": shared["schema"],
            "executor": executor,
            "users": USERS,
            "runs_per_user": RUNS_PER_USER_PER_SUPERVISOR,
            "out": str(outs[me]),
            "peer_out": str(outs[peer]),
        }
        log = (tmp_path / f"sup-{me}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, str(SCRIPT), json.dumps(cfg)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=Path(__file__).parent,
            )
        )
        log.close()
    expected_records = 2 * len(USERS) * RUNS_PER_USER_PER_SUPERVISOR * len(STAGES)
    try:
        # Kill a worker once a quarter of the load is durable, i.e. in the middle of it.
        deadline = time.monotonic() + 120
        while await _count_results(shared["schema"]) < expected_records // 4:
            assert time.monotonic() < deadline, "load did not progress"
            assert all(p.poll() is None for p in procs), _logs(tmp_path)
            await asyncio.sleep(0.05)
        killed_at = await _count_results(shared["schema"])
        cluster.kill_worker("w2")
        for p in procs:
            rc = await asyncio.wait_for(asyncio.to_thread(p.wait), timeout=180)
            assert rc == 0, _logs(tmp_path)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    assert killed_at < expected_records, "the worker was killed after the load finished"
    for name in ("scheduler", "w1", "w2"):  # the key reached workers, never a log
        assert SIGNING_KEY.hex() not in cluster.log(name)
    assert SIGNING_KEY.hex() not in _logs(tmp_path)
    sched_log = cluster.log("scheduler")
    assert "Remove worker" in sched_log and "name: w2" in sched_log, sched_log[-2000:]
    print(f"worker w2 killed with {killed_at}/{expected_records} stage records durable")

    runs: list[dict[str, Any]] = []
    elapsed = []
    for out in outs:
        data = json.loads(out.read_text())
        runs += data["runs"]
        elapsed.append(data["elapsed"])
    print(f"1,000 runs ({expected_records} stages) in {max(elapsed):.1f} s on 2 supervisors")
    assert len(runs) == 1000
    assert len({r["run_id"] for r in runs}) == 1000, "run ids must be globally unique"
    for r in runs:
        assert r["status"] == "succeeded", json.dumps(r)
        # the events of each run reached its caller, and only its caller's
        assert r["kinds"][0] == "run_started" and r["kinds"][-1] == "run_completed", r
        assert r["steps"] == [0, 1, 2], r
        assert r["event_users"] == [r["user"]], r
        assert r["event_runs"] == [r["run_id"]], r
        assert r["echo_input"] == {"user": r["user"], "i": r["i"]}, r
    for out in outs:
        reads = json.loads(out.with_name(out.stem + "-reads.json").read_text())
        assert reads == {"read_ok": 500, "not_found_ok": 500}

    # Both supervisors cached stage results in the shared Redis, under keyed user hashes.
    r = redis_asyncio.from_url(REDIS_URL)
    try:
        keys = [k.decode() async for k in r.scan_iter(match=f"{shared['prefix']}*", count=1000)]
    finally:
        await r.aclose()
    assert len(keys) >= expected_records // 2, len(keys)
    assert not any("user-" in k for k in keys), "raw user ids must never appear in cache keys"

    conn = await asyncpg.connect(PG_URL)
    try:
        s = f'"{shared["schema"]}"'
        rows = await conn.fetch(f"SELECT run_id, user_id, status FROM {s}.runs")
        assert len(rows) == 1000
        by_run = {r["run_id"]: r for r in rows}
        for r in runs:
            assert by_run[r["run_id"]]["user_id"] == r["user"]
            assert by_run[r["run_id"]]["status"] == "succeeded"
        dupes = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT run_id, agent FROM {s}.results "
            f"GROUP BY run_id, agent HAVING count(*) > 1) d"
        )
        assert dupes == 0
        assert await conn.fetchval(f"SELECT count(*) FROM {s}.results") == expected_records
        mismatched = await conn.fetchval(
            f"SELECT count(*) FROM {s}.results r JOIN {s}.runs u USING (run_id) "
            f"WHERE r.user_id <> u.user_id OR r.status <> 'succeeded'"
        )
        assert mismatched == 0
    finally:
        await conn.close()


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
        for p in sorted(tmp_path.glob("sup-*.log"))
    )
