"""PostgresStore against the real PostgreSQL on 127.0.0.1:5432 (own random schema, dropped)."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from agentkit.backends import store_from_url
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.errors import ConfigurationError, InvalidPayloadError, StoreError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store._pg_schema import MIGRATIONS
from agentkit.store.postgres import PostgresStore
from agentkit.store.records import ResultRecord, RunRecord

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def blob(payload: bytes = b'{"ok":true}') -> bytes:
    header = encode_header(LayerTag.JSON, EnvelopeFlags.RESULT, "", len(payload))
    return header + payload + secrets.token_bytes(32)


def run_rec(
    user: str, run_id: str, status: RunStatus = RunStatus.RUNNING, **kw: object
) -> RunRecord:
    fields: dict[str, object] = {
        "run_id": run_id,
        "user_id": user,
        "pipeline": ["a", "b"],
        "status": status,
        "submitted_at": T0,
    }
    fields.update(kw)
    return RunRecord.model_validate(fields)


def result_rec(
    user: str,
    run_id: str,
    agent: str = "a",
    *,
    status: AgentStatus = AgentStatus.SUCCEEDED,
    at: datetime = T0,
    output: str = '{"x": 1}',
) -> ResultRecord:
    return ResultRecord(
        run_id=run_id,
        user_id=user,
        agent=agent,
        agent_version="1",
        status=status,
        started_at=at - timedelta(seconds=1),
        finished_at=at,
        duration_s=1.0,
        output_json=output,
        blob=blob(output.encode()),
    )


@pytest.fixture
def schema() -> str:
    return f"akt_{secrets.token_hex(6)}"


@pytest.fixture
async def raw(schema: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_URL)
    try:
        yield conn
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def store(schema: str, raw: asyncpg.Connection) -> AsyncIterator[PostgresStore]:
    s = PostgresStore(PG_URL, schema=schema, statement_timeout=2.0)
    await s.start()
    try:
        yield s
    finally:
        await s.aclose()


async def test_migrations_applied_once_with_indexes(
    store: PostgresStore, raw: asyncpg.Connection, schema: str
) -> None:
    versions = await raw.fetch(f'SELECT version FROM "{schema}".schema_migrations')
    assert [r[0] for r in versions] == [v for v, _, _ in MIGRATIONS]
    again = PostgresStore(PG_URL, schema=schema)
    await again.start()  # idempotent: nothing re-applied, no error
    await again.aclose()
    assert await raw.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == len(
        MIGRATIONS
    )
    indexes = {
        r[0]
        for r in await raw.fetch("SELECT indexname FROM pg_indexes WHERE schemaname=$1", schema)
    }
    assert {"runs_user_submitted", "results_user_ts", "results_user_agent_ts"} <= indexes
    plan = await raw.fetchval(
        f"""EXPLAIN (FORMAT JSON) SELECT * FROM "{schema}".results
            WHERE user_id = 'u' AND agent = 'a' ORDER BY ts DESC LIMIT 10"""
    )
    assert "Seq Scan" not in json.dumps(json.loads(plan))  # every protocol query has an index


async def test_run_roundtrip_upsert_and_no_revival(store: PostgresStore) -> None:
    await store.save_run(run_rec("alice", "r1", session_id="s1", owner="sup-1"))
    done = run_rec(
        "alice",
        "r1",
        RunStatus.SUCCEEDED,
        session_id="s1",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        error={"type": "X", "nested": [1, 2]},
        owner="sup-1",
    )
    await store.save_run(done)
    got = await store.get_run("alice", "r1")
    assert got is not None and got.run == done and got.results == []
    await store.save_run(run_rec("alice", "r1", RunStatus.RUNNING, owner="sup-1"))  # late replay
    got = await store.get_run("alice", "r1")
    assert got is not None and got.run.status is RunStatus.SUCCEEDED


async def test_results_batched_idempotent_and_latest_wins(
    store: PostgresStore, raw: asyncpg.Connection, schema: str
) -> None:
    await store.save_run(run_rec("alice", "r1"))
    recs = [result_rec("alice", "r1", f"agent{i}", at=T0 + timedelta(seconds=i)) for i in range(50)]
    await store.save_results(recs)
    await store.save_results(recs)  # a replay
    await store.save_results(recs[:3] + recs[:3])  # duplicates inside one batch
    count = await raw.fetchval(f'SELECT count(*) FROM "{schema}".results')
    assert count == 50
    newer = result_rec("alice", "r1", "agent0", status=AgentStatus.FAILED, output='{"x": 2}')
    await store.save_results([newer])
    got = await store.list_results("alice", run_id="r1", agent="agent0")
    assert got == [newer]
    stored = await store.get_run("alice", "r1")
    assert stored is not None and len(stored.results) == 50
    assert {r.agent for r in stored.results} == {f"agent{i}" for i in range(50)}
    with pytest.raises(InvalidPayloadError):
        await store.save_results([recs[0].model_copy(update={"blob": b"\x80\x04pickle"})])


async def test_every_read_is_scoped_by_user(store: PostgresStore) -> None:
    await store.save_run(run_rec("alice", "r1"))
    mine = result_rec("alice", "r1", "a", output='{"secret": "alice"}')
    await store.save_results([mine])
    assert await store.get_run("bob", "r1") is None
    assert await store.list_runs("bob") == []
    assert await store.list_results("bob") == []
    assert await store.list_results("bob", run_id="r1") == []
    # bob writing the same run id / key never overwrites alice's rows
    await store.save_run(run_rec("bob", "r1", RunStatus.FAILED))
    await store.save_results([result_rec("bob", "r1", "a", output='{"secret": "bob"}')])
    got = await store.get_run("alice", "r1")
    assert got is not None and got.run.status is RunStatus.RUNNING and got.results == [mine]
    assert await store.get_run("bob", "r1") is None


async def test_list_filters_order_and_limit(store: PostgresStore) -> None:
    for i in range(6):
        status = RunStatus.SUCCEEDED if i % 2 else RunStatus.FAILED
        await store.save_run(run_rec("u", f"r{i}", status, submitted_at=T0 + timedelta(minutes=i)))
        await store.save_results(
            [
                result_rec("u", f"r{i}", "a", at=T0 + timedelta(minutes=i)),
                result_rec(
                    "u", f"r{i}", "b", status=AgentStatus.FAILED, at=T0 + timedelta(minutes=i)
                ),
            ]
        )
    runs = await store.list_runs("u")
    assert [r.run_id for r in runs] == [f"r{i}" for i in reversed(range(6))]
    assert [r.run_id for r in await store.list_runs("u", status=RunStatus.SUCCEEDED)] == [
        "r5",
        "r3",
        "r1",
    ]
    window = await store.list_runs(
        "u", since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4)
    )
    assert [r.run_id for r in window] == ["r3", "r2"]
    assert len(await store.list_runs("u", limit=2)) == 2
    failed_b = await store.list_results("u", agent="b", status=AgentStatus.FAILED, limit=3)
    assert [(r.run_id, r.agent) for r in failed_b] == [("r5", "b"), ("r4", "b"), ("r3", "b")]
    late = await store.list_results("u", since=T0 + timedelta(minutes=5))
    assert sorted(r.agent for r in late) == ["a", "b"]
    with pytest.raises(ConfigurationError):
        await store.list_runs("u", limit=0)


async def test_output_is_queryable_jsonb_and_text_is_exact(
    store: PostgresStore, raw: asyncpg.Connection, schema: str
) -> None:
    text = '{"cost":   12.5, "z": NaN, "tags": ["a\\u0000b"], "inf": -Infinity}'
    rec = result_rec("u", "r1", "a", output=text)
    plain = result_rec("u", "r2", "a", output='{"cost": 99}')
    await store.save_results([rec, plain])
    assert (await store.list_results("u", run_id="r1"))[0].output_json == text
    rows = await raw.fetch(
        f"""SELECT run_id, output->>'z' AS z FROM "{schema}".results
            WHERE user_id = 'u' AND (output->>'cost')::float > 10 ORDER BY run_id"""
    )
    assert [(r["run_id"], r["z"]) for r in rows] == [("r1", "NaN"), ("r2", None)]


def crash(store: PostgresStore) -> None:
    """Stop a store the way a killed process does: no heartbeat retirement, no clean close."""
    assert store._heartbeat is not None and store._pool is not None
    store._heartbeat.cancel()
    store._pool.terminate()
    store._pool = None
    store._closed = True


async def test_recovery_spares_live_supervisors(schema: str, raw: asyncpg.Connection) -> None:
    opts = {"schema": schema, "heartbeat_interval": 0.2, "stale_after": 1.0}
    live = PostgresStore(PG_URL, owner="live-sup", **opts)  # type: ignore[arg-type]
    await live.start()
    try:
        await live.save_run(run_rec("u", "live-run"))
        dead = PostgresStore(PG_URL, owner="dead-sup", **opts)  # type: ignore[arg-type]
        await dead.start()
        for run_id in ("dead-run", "fresh-run"):
            await dead.save_run(run_rec("u", run_id))
        await dead.save_run(run_rec("u", "done-run", RunStatus.SUCCEEDED))
        crash(dead)
        old = PostgresStore(PG_URL, owner="restarted", **opts)  # type: ignore[arg-type]
        await old.start()
        await old.save_run(run_rec("u", "mine-run"))
        crash(old)
        await raw.execute(
            f"""UPDATE "{schema}".owners SET heartbeat_at = now() - interval '1 hour'
                WHERE owner = 'dead-sup'"""
        )
        # live-run is as old, but its owner heartbeats; fresh-run was updated just now
        await raw.execute(
            f"""UPDATE "{schema}".runs SET updated_at = now() - interval '1 hour'
                WHERE run_id IN ('dead-run', 'live-run', 'done-run')"""
        )
        await asyncio.sleep(0.3)  # at least one heartbeat of live-sup since
        restarted = PostgresStore(PG_URL, owner="restarted", **opts)  # type: ignore[arg-type]
        await restarted.start()
        try:
            assert restarted.recovered == 2
            status = {r.run_id: r.status for r in await restarted.list_runs("u")}
            assert status == {
                "live-run": RunStatus.RUNNING,
                "dead-run": RunStatus.INTERRUPTED,
                "mine-run": RunStatus.INTERRUPTED,
                "fresh-run": RunStatus.RUNNING,
                "done-run": RunStatus.SUCCEEDED,
            }
        finally:
            await restarted.aclose()
    finally:
        await live.aclose()


async def test_statement_timeout_raises_store_error_in_budget(
    schema: str, raw: asyncpg.Connection
) -> None:
    s = PostgresStore(PG_URL, schema=schema, statement_timeout=0.3)
    await s.start()
    try:
        await s.save_run(run_rec("u", "r1"))
        tx = raw.transaction()
        await tx.start()
        await raw.execute(f"""SELECT * FROM "{schema}".runs WHERE run_id = 'r1' FOR UPDATE""")
        t0 = time.perf_counter()
        with pytest.raises(StoreError, match="outbox"):
            await s.save_run(run_rec("u", "r1", RunStatus.SUCCEEDED))
        assert time.perf_counter() - t0 < 1.5
        await tx.rollback()
        await s.save_run(run_rec("u", "r1", RunStatus.SUCCEEDED))  # the pool still works
    finally:
        await s.aclose()


async def test_unreachable_and_not_started_raise_store_error(schema: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = PostgresStore(
        f"postgresql://postgres:pw@127.0.0.1:{port}/test", schema=schema, connect_timeout=1.0
    )
    with pytest.raises(StoreError) as info:
        await s.start()
    assert "pw" not in str(info.value)
    with pytest.raises(StoreError, match="not started"):
        await s.save_run(run_rec("u", "r"))
    await s.aclose()


async def test_store_from_url_reads_schema_and_validates(
    schema: str, raw: asyncpg.Connection
) -> None:
    s = store_from_url(f"postgres://postgres@127.0.0.1:5432/test?schema={schema}")
    assert isinstance(s, PostgresStore) and s.schema == schema
    async with s:
        await s.save_run(run_rec("u", "r1"))
        assert await s.get_run("u", "r1") is not None
    opts = store_from_url(
        f"{PG_URL}?schema={schema}&statement_timeout=3&max_size=4&owner=me"
        "&recover_on_start=false&application_name=x",
        max_size=5,
    )
    assert isinstance(opts, PostgresStore)
    assert (opts.schema, opts.statement_timeout, opts.max_size, opts.owner) == (
        schema,
        3.0,
        5,
        "me",
    )
    assert opts.recover_on_start is False
    with pytest.raises(ConfigurationError, match="true or false"):
        store_from_url(f"{PG_URL}?recover_on_start=maybe")
    with pytest.raises(ConfigurationError):
        PostgresStore(PG_URL, schema="Robert'); DROP TABLE x;--")
    with pytest.raises(ConfigurationError):
        PostgresStore("mysql://x")


async def test_concurrent_saves_from_many_tasks(store: PostgresStore) -> None:
    async def one(i: int) -> None:
        await store.save_run(run_rec(f"user{i % 7}", f"run{i}"))
        await store.save_results([result_rec(f"user{i % 7}", f"run{i}", a) for a in "abc"])

    await asyncio.gather(*(one(i) for i in range(120)))
    total = sum([len(await store.list_results(f"user{u}", limit=1000)) for u in range(7)])
    assert total == 360


async def test_concurrent_saves_are_grouped_into_few_statements(store: PostgresStore) -> None:
    recs = [result_rec(f"user{i % 9}", f"run{i}", "a") for i in range(300)]
    runs = [run_rec(f"user{i % 9}", f"run{i}") for i in range(300)]
    await asyncio.gather(*(store.save_run(r) for r in runs))
    await asyncio.gather(*(store.save_results([r]) for r in recs))
    assert store._results.items == 300 and store._runs.items == 300
    assert store._results.statements < 60, store._results.statements
    assert store._runs.statements < 60, store._runs.statements
    for user in (f"user{u}" for u in range(9)):
        assert len(await store.list_runs(user, limit=1000)) == len(range(int(user[4:]), 300, 9))


async def test_invalid_output_json_is_stored_without_jsonb_and_spares_the_group(
    store: PostgresStore, raw: asyncpg.Connection, schema: str
) -> None:
    bad = result_rec("u", "bad", "a", output="{not json")
    good = [result_rec("u", f"good{i}", "a") for i in range(20)]
    await asyncio.gather(store.save_results([bad]), *(store.save_results([g]) for g in good))
    got = {r.run_id: r for r in await store.list_results("u", limit=100)}
    assert got["bad"].output_json == "{not json" and len(got) == 21
    assert (
        await raw.fetchval(f"""SELECT output FROM "{schema}".results WHERE run_id='bad'""") is None
    )


async def test_a_cancelled_saver_does_not_break_the_group(store: PostgresStore) -> None:
    tasks = [asyncio.create_task(store.save_results([result_rec("u", f"r{i}")])) for i in range(50)]
    await asyncio.sleep(0)
    tasks[10].cancel()
    tasks[30].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(d, asyncio.CancelledError) for d in done) <= 2
    assert all(d is None or isinstance(d, asyncio.CancelledError) for d in done)
    stored = {r.run_id for r in await store.list_results("u", limit=100)}
    assert stored >= {f"r{i}" for i in range(50)} - {"r10", "r30"}


async def test_stores_starting_together_migrate_once(schema: str, raw: asyncpg.Connection) -> None:
    stores = [PostgresStore(PG_URL, schema=schema) for _ in range(6)]
    try:
        await asyncio.gather(*(s.start() for s in stores))
        assert await raw.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == len(
            MIGRATIONS
        )
        owners = await raw.fetchval(f'SELECT count(*) FROM "{schema}".owners')
        assert owners == 6  # each open store heartbeats its own id
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))
    assert await raw.fetchval(f'SELECT count(*) FROM "{schema}".owners') == 0
