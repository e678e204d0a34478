"""PostgresStore behind the outbox on a private PostgreSQL that the tests stop and restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from servers import PostgresServer

from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.outbox import OutboxStore
from agentkit.store.postgres import PostgresStore
from agentkit.store.records import ResultRecord, RunRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def blob(text: str) -> bytes:
    payload = text.encode()
    header = encode_header(LayerTag.JSON, EnvelopeFlags.RESULT, "", len(payload))
    return header + payload + hashlib.sha256(payload).digest()  # deterministic per text


def records(i: int, agents: tuple[str, ...] = ("a", "b")) -> tuple[RunRecord, list[ResultRecord]]:
    user, run_id = f"user{i % 17}", f"run-{i}"
    at = T0 + timedelta(seconds=i)
    run = RunRecord(
        run_id=run_id,
        user_id=user,
        pipeline=list(agents),
        status=RunStatus.SUCCEEDED,
        submitted_at=at,
        started_at=at,
        finished_at=at,
        owner="fault-test",
    )
    results = [
        ResultRecord(
            run_id=run_id,
            user_id=user,
            agent=a,
            agent_version="1",
            status=AgentStatus.SUCCEEDED,
            started_at=at,
            finished_at=at,
            duration_s=0.0,
            output_json=json.dumps({"i": i, "agent": a}),
            blob=blob(f'{{"i":{i}}}'),
        )
        for a in agents
    ]
    return run, results


async def counts(url: str, schema: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(url)
    try:
        runs = await conn.fetchval(f'SELECT count(*) FROM "{schema}".runs')
        res = await conn.fetchval(f'SELECT count(*) FROM "{schema}".results')
        distinct = await conn.fetchval(
            f'SELECT count(DISTINCT (run_id, agent)) FROM "{schema}".results'
        )
        return int(runs), int(res), int(distinct)
    finally:
        await conn.close()


async def test_postgres_stopped_mid_writes_outbox_drains_exactly_once(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    schema = f"akt_fault_{secrets.token_hex(4)}"
    inner = PostgresStore(pg_server.url, schema=schema, statement_timeout=1.0, connect_timeout=1.0)
    depths: list[int] = []
    store = OutboxStore(
        inner,
        tmp_path / "outbox.db",
        write_timeout=2.0,
        probe_initial=0.1,
        probe_max=0.5,
        on_depth=depths.append,
    )
    await store.start()
    n = 500
    stopped = asyncio.Event()

    async def one(i: int) -> None:
        run, results = records(i)
        await store.save_run(run.model_copy(update={"status": RunStatus.RUNNING}))
        await store.save_results(results)
        await store.save_run(run)

    async def stop_midway() -> None:
        await asyncio.sleep(0.15)
        await asyncio.to_thread(pg_server.stop)
        stopped.set()

    try:
        stopper = asyncio.create_task(stop_midway())
        sem = asyncio.Semaphore(20)

        async def bounded(i: int) -> None:
            if i >= n // 2:
                # However fast the first half is, the second half writes while
                # the server is down, so the outbox has to take it.
                await stopped.wait()
            async with sem:
                await one(i)

        async with asyncio.timeout(60):
            await asyncio.gather(*(bounded(i) for i in range(n)))
        await stopper
        assert store.spooled > 0 and max(depths) > 0, "the outbox never filled"
        assert not store.healthy
        await asyncio.to_thread(pg_server.start)
        restarted = time.monotonic()
        assert await store.flush(timeout=30), f"outbox not drained, depth {store.depth}"
        drain_s = time.monotonic() - restarted
        assert store.depth == 0 and depths[-1] == 0
        assert await counts(pg_server.url, schema) == (n, 2 * n, 2 * n)
        for i in (0, n // 2, n - 1):
            run, results = records(i)
            got = await store.get_run(run.user_id, run.run_id)
            assert got is not None and got.run.status is RunStatus.SUCCEEDED
            assert sorted(r.blob for r in got.results) == sorted(r.blob for r in results)
        print(f"spooled={store.spooled} replayed={store.replayed} drain={drain_s:.2f}s")
    finally:
        await store.aclose()
        if not (pg_server.data / "postmaster.pid").exists():
            pg_server.start()
        conn = await asyncpg.connect(pg_server.url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, sys.argv[4])
    from test_postgres_faults import records
    from agentkit.store.outbox import OutboxStore
    from agentkit.store.postgres import PostgresStore

    async def main(url, schema, outbox):
        inner = PostgresStore(url, schema=schema, connect_timeout=0.5)
        store = OutboxStore(inner, outbox, write_timeout=1.0, probe_initial=5, probe_max=5)
        await store.start()
        for i in range(40):
            run, results = records(i)
            await store.save_run(run)
            await store.save_results(results)
        print("spooled", store.depth, flush=True)
        await asyncio.sleep(60)  # killed here, outbox non-empty

    asyncio.run(main(*sys.argv[1:4]))
    """
)


async def test_process_killed_with_nonempty_outbox_replays_on_restart(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    schema = f"akt_fault_{secrets.token_hex(4)}"
    outbox = tmp_path / "outbox.db"
    pg_server.stop()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WRITER,
            pg_server.url,
            schema,
            str(outbox),
            str(Path(__file__).parent),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.startswith("spooled "), line + (proc.stderr.read() if proc.stderr else "")
        assert int(line.split()[1]) == 120  # 40 runs + 80 results, all in the outbox
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    pg_server.start()
    store = OutboxStore(PostgresStore(pg_server.url, schema=schema), outbox, probe_initial=0.1)
    try:
        await store.start()
        assert await store.flush(timeout=20)
        assert await counts(pg_server.url, schema) == (40, 80, 80)
        run, _ = records(7)
        got = await store.get_run(run.user_id, run.run_id)
        assert got is not None and got.run == run
    finally:
        await store.aclose()
        conn = await asyncpg.connect(pg_server.url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
