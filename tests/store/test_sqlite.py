"""SQLiteStore specifics: URLs, pragmas, schema versions, group commits, crash durability."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agentkit.backends import store_from_url
from agentkit.errors import ConfigurationError, InvalidPayloadError, StoreError
from agentkit.status import RunStatus
from agentkit.store import _sqlite_schema as schema
from agentkit.store._sqlite_writer import SQLiteWriter
from agentkit.store.sqlite import SQLiteStore

_spec = importlib.util.spec_from_file_location(
    "contract_records", Path(__file__).parents[1] / "contract" / "contract_records.py"
)
assert _spec is not None and _spec.loader is not None
records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(records)
make_result, make_run = records.make_result, records.make_run


def test_url_forms(tmp_path: Path) -> None:
    rel = SQLiteStore.from_url("sqlite:///data/runs.db")
    assert rel.path == "data/runs.db"
    absolute = SQLiteStore.from_url(f"sqlite:///{tmp_path}/runs.db")
    assert absolute.path == f"{tmp_path}/runs.db"
    mem = SQLiteStore.from_url("sqlite:///:memory:?synchronous=full&max_group=64")
    assert mem.in_memory and mem.synchronous == "FULL"
    tuned = store_from_url("sqlite:///x.db?recover=false&readers=3", busy_timeout=1)
    assert isinstance(tuned, SQLiteStore)
    assert (tuned.recover, tuned.max_readers, tuned.busy_timeout) == (False, 3, 1.0)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite://host/x.db",
        "sqlite:///x.db?synchronous=sometimes",
        "sqlite:///x.db?max_group=many",
        "sqlite:///x.db?flavour=mint",
        "postgresql://localhost/x",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteStore.from_url(url)


async def test_wal_pragmas_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "s.db"  # parents are created
    async with SQLiteStore(path) as store:
        assert store.schema_version == schema.LATEST_VERSION == 2
        raw = sqlite3.connect(path)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,)]
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"runs", "results", "schema_version"} <= tables
        raw.close()
    async with SQLiteStore(path) as again:  # re-opening applies nothing twice
        assert again.schema_version == 2


async def test_a_version_1_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    raw = sqlite3.connect(path)
    raw.execute(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    for stmt in schema.MIGRATIONS[0][2]:
        raw.execute(stmt)
    raw.execute("INSERT INTO schema_version VALUES (1, 'runs and results', 'then')")
    raw.commit()
    raw.close()
    async with SQLiteStore(path) as store:  # a version-1 file written by agentkit 0.1.0
        await store.save_run(make_run("u", "r1", status=RunStatus.FAILED))
        await store.save_results([make_result("u", "r1", "a")])
    async with SQLiteStore(path) as store:
        assert store.schema_version == 2
        assert [r.run_id for r in await store.list_runs("u", status=RunStatus.FAILED)] == ["r1"]
        assert [r.agent for r in await store.list_results("u", agent="a")] == ["a"]
    raw = sqlite3.connect(path)
    indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    raw.close()
    assert "runs_user_unsuccessful_time" in indexes
    assert not indexes & {"results_user_agent_time", "runs_user_status_time"}


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path):
        pass
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_version VALUES (99, 'from the future', 'now')")
    raw.commit()
    raw.close()
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match="schema version 99"):
        await store.start()
    await store.aclose()


async def test_queries_use_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path):
        pass
    raw = sqlite3.connect(path)
    plans = {
        "runs by user": "SELECT * FROM runs WHERE user_id='u' ORDER BY submitted_at DESC",
        "results by agent": "SELECT * FROM results WHERE user_id='u' AND agent='a' "
        "ORDER BY at DESC",
        "results by status": "SELECT * FROM results WHERE user_id='u' AND status='failed' "
        "AND status <> 'succeeded' ORDER BY at DESC",
        "results of run": "SELECT * FROM results WHERE run_id='r' AND user_id='u'",
        "recovery": "UPDATE runs SET status='interrupted' WHERE status IN ('queued','running')",
    }
    for status in RunStatus:  # what SQLiteStore.list_runs(status=…) runs
        hint = schema.run_status_index_hint(status)
        plans[f"runs {status.value}"] = (
            f"SELECT * FROM runs WHERE user_id='u' AND status='{status.value}' "
            f"{'' if hint is None else 'AND ' + hint} ORDER BY submitted_at DESC"
        )
    for name, sql in plans.items():
        plan = " ".join(str(r[-1]) for r in raw.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (name, plan)
        # active runs are few across all users: runs_active then a small sort is fine
        if not name.startswith(("runs queued", "runs running")):
            assert "TEMP B-TREE" not in plan, (name, plan)
    raw.close()


async def test_acknowledged_means_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        await store.save_results([make_result("u", "r1", "triage")])
        raw = sqlite3.connect(path)
        assert raw.execute("SELECT count(*) FROM results").fetchone()[0] == 1
        raw.close()


async def test_concurrent_writes_are_grouped(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "s.db") as store:
        before = store.commits
        await asyncio.gather(
            *(store.save_results([make_result("u", f"r{i}", "a")]) for i in range(400))
        )
        commits = store.commits - before
        assert len(await store.list_results("u", limit=1000)) == 400
    assert commits < 100, f"{commits} transactions for 400 concurrent saves: not grouped"


async def test_memory_database(tmp_path: Path) -> None:
    async with SQLiteStore(":memory:") as store:
        await store.save_run(make_run("u", "r1"))
        await store.save_results([make_result("u", "r1", "a")])
        got = await store.get_run("u", "r1")
        assert got is not None and len(got.results) == 1
        assert [r.run_id for r in await store.list_runs("u")] == ["r1"]
    assert not list(tmp_path.iterdir())


async def test_not_started_and_closed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(ConfigurationError, match="not started"):
        await store.save_run(make_run("u", "r"))
    await store.start()
    await store.aclose()
    with pytest.raises(StoreError, match="closed"):
        await store.save_results([make_result("u", "r", "a")])
    with pytest.raises(StoreError, match="closed"):
        await store.list_runs("u")


async def test_unopenable_path_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = SQLiteStore(blocker / "s.db")
    with pytest.raises(StoreError, match="cannot open"):
        await store.start()


async def test_recovery_count(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        await store.save_run(make_run("u", "r1", status=RunStatus.RUNNING))
        await store.save_run(make_run("u", "r2", status=RunStatus.QUEUED))
        await store.save_run(make_run("u", "r3", status=RunStatus.SUCCEEDED))
    async with SQLiteStore(path, recover=False) as store:
        assert store.interrupted_on_start == 0
        assert len(await store.list_runs("u", status=RunStatus.RUNNING)) == 1
    async with SQLiteStore(path) as store:
        assert store.interrupted_on_start == 2
        got = await store.get_run("u", "r1")
        assert got is not None and got.run.error is not None
        assert got.run.error["type"] == "Interrupted"


async def test_a_failing_operation_fails_only_its_caller(tmp_path: Path) -> None:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
        conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)")
        return conn

    writer = SQLiteWriter(connect, name="test-writer")
    await writer.start()

    def insert(x: int):  # type: ignore[no-untyped-def]
        return lambda conn: conn.execute("INSERT INTO t VALUES (?)", (x,)).rowcount

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1000)")
        conn.execute("INSERT INTO nope VALUES (1)")

    outcomes = await asyncio.gather(
        *(writer.run(insert(i)) for i in range(50)),
        writer.run(boom),
        *(writer.run(insert(i)) for i in range(50, 100)),
        return_exceptions=True,
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], StoreError)
    assert "no such table" in str(failures[0])
    rows = await writer.run(lambda c: c.execute("SELECT count(*), max(x) FROM t").fetchone())
    assert rows == (100, 99)  # boom's first insert was rolled back with it
    await writer.close()
    with pytest.raises(StoreError):
        await writer.run(insert(1))


_CHILD = textwrap.dedent(
    """
    import asyncio, importlib.util, sys
    from agentkit.status import RunStatus
    from agentkit.store.sqlite import SQLiteStore
    spec = importlib.util.spec_from_file_location("contract_records", sys.argv[2])
    rec = importlib.util.module_from_spec(spec); spec.loader.exec_module(rec)

    async def one(store, i):
        run_id = f"run-{i}"
        await store.save_run(rec.make_run("u", run_id))
        await store.save_results([rec.make_result("u", run_id, a) for a in ("x", "y")])
        await store.save_run(rec.make_run("u", run_id, status=RunStatus.SUCCEEDED))
        print(run_id, flush=True)

    async def main():
        store = SQLiteStore(sys.argv[1])
        await store.start()
        i = 0
        while True:
            await asyncio.gather(*(one(store, i + k) for k in range(50)))
            i += 50

    asyncio.run(main())
    """
)


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    helper = Path(__file__).parents[1] / "contract" / "contract_records.py"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(helper)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert proc.stdout is not None
    acked: list[str] = []
    deadline = time.monotonic() + 30
    while len(acked) < 500 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(acked) >= 500, "the child did not get far enough"
    async with SQLiteStore(path) as store:
        runs = {r.run_id: r for r in await store.list_runs("u", limit=10_000)}
        for run_id in acked:
            assert runs[run_id].status is RunStatus.SUCCEEDED, run_id
            got = await store.get_run("u", run_id)
            assert got is not None and len(got.results) == 2
        leftover = [r for r in runs.values() if r.status is not RunStatus.SUCCEEDED]
        assert {r.status for r in leftover} <= {RunStatus.INTERRUPTED}
        assert len(leftover) == store.interrupted_on_start


async def test_reads_of_many_users_interleave_with_writes(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "s.db") as store:

        async def user(u: str) -> None:
            for i in range(5):
                run_id = f"{u}-{uuid.uuid4().hex[:6]}"
                await store.save_run(make_run(u, run_id, minute=i))
                await store.save_results([make_result(u, run_id, "a", minute=i)])
                listed = await store.list_runs(u)
                assert len(listed) == i + 1 and {r.user_id for r in listed} == {u}

        await asyncio.gather(*(user(f"user{n}") for n in range(40)))


def test_writers_on_several_event_loops_share_one_store(tmp_path: Path) -> None:
    """Futures of callers on different loops (threads) are each settled on their own loop."""
    import threading

    store = SQLiteStore(tmp_path / "s.db")
    asyncio.run(store.start())
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def main() -> None:
            await asyncio.gather(
                *(store.save_results([make_result(f"u{n}", f"r{n}-{i}", "a")]) for i in range(300))
            )

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []

    async def check() -> None:
        for n in range(4):
            assert len(await store.list_results(f"u{n}", limit=1000)) == 300
        await store.aclose()

    asyncio.run(check())


async def test_paths_with_uri_characters(tmp_path: Path) -> None:
    path = tmp_path / "odd ?#% name" / "runs.db"
    async with SQLiteStore(path) as store:
        await store.save_run(make_run("u", "r1"))
        assert [r.run_id for r in await store.list_runs("u")] == ["r1"]


async def test_start_can_be_retried_after_the_cause_is_fixed(tmp_path: Path) -> None:
    blocker = tmp_path / "later-a-folder"
    blocker.write_text("for now a file")
    store = SQLiteStore(blocker / "s.db")
    with pytest.raises(StoreError, match="cannot open"):
        await store.start()
    blocker.unlink()
    await store.start()
    await store.save_run(make_run("u", "r1"))
    assert [r.run_id for r in await store.list_runs("u")] == ["r1"]
    await store.aclose()


async def test_a_big_write_does_not_block_the_event_loop(tmp_path: Path) -> None:
    recs = [make_result("u", f"r{i}", "a", minute=i % 500) for i in range(5000)]
    async with SQLiteStore(tmp_path / "s.db") as store:
        ticks = 0
        saving = True

        async def ticker() -> None:
            nonlocal ticks
            while saving:
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        before = ticks
        t0 = time.perf_counter()
        await store.save_results(recs)
        elapsed = time.perf_counter() - t0
        during = ticks - before
        saving = False
        await task
        assert len(await store.list_results("u", limit=10_000)) == 5000
    # the loop kept running while SQLite wrote (a blocked loop would not tick at all)
    assert during >= 3, (during, elapsed)


async def test_commits_run_on_the_loop_unless_each_commit_fsyncs(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "n.db") as normal:
        assert normal.inline_commits
        await normal.save_run(make_run("u", "r1"))
        assert normal._writer._thread is None  # no writer thread
        raw = sqlite3.connect(tmp_path / "n.db")
        assert raw.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        raw.close()
    async with SQLiteStore(tmp_path / "f.db", synchronous="FULL") as full:
        assert not full.inline_commits
        await full.save_run(make_run("u", "r1"))
        assert full._writer._thread is not None
    store = SQLiteStore.from_url(f"sqlite:///{tmp_path / 'o.db'}?inline_commits=false")
    assert not store.inline_commits


async def test_queued_writes_resolve_after_commit_in_order(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "q.db") as store:
        first = store.save_results_nowait([make_result("u", "r1", "a")])
        second = store.save_run_nowait(make_run("u", "r1", status=RunStatus.SUCCEEDED))
        assert not first.done() and not second.done()  # nothing committed yet
        await second
        assert first.done() and first.exception() is None
        got = await store.get_run("u", "r1")
        assert got is not None and got.run.status is RunStatus.SUCCEEDED
        assert [r.agent for r in got.results] == ["a"]
        with pytest.raises(InvalidPayloadError):
            store.save_results_nowait([make_run("u", "r2")])  # type: ignore[list-item]
    with pytest.raises(StoreError, match="closed"):
        store.save_run_nowait(make_run("u", "r3"))


async def test_inline_writer_checkpoints_in_a_thread_and_offloads_big_groups(
    tmp_path: Path,
) -> None:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)")
        return conn

    loop_thread = threading.get_ident()
    checkpoints: list[int] = []
    writer = SQLiteWriter(
        connect,
        name="inline",
        inline=True,
        checkpoint=lambda: checkpoints.append(threading.get_ident()),
        checkpoint_every=10,
        inline_max_rows=20,
    )
    await writer.start()
    threads: list[int] = []

    def insert(x: int, n: int = 1):  # type: ignore[no-untyped-def]
        def op(conn: sqlite3.Connection) -> None:
            threads.append(threading.get_ident())
            conn.executemany("INSERT INTO t VALUES (?)", [(x + i,) for i in range(n)])

        return op

    for i in range(12):  # one small group per loop turn: committed on the loop's thread
        await writer.run(insert(i))
    assert set(threads) == {loop_thread}
    await asyncio.sleep(0.05)
    assert checkpoints and loop_thread not in checkpoints
    threads.clear()
    # a group over inline_max_rows is committed in a worker thread
    big = writer.run(insert(100, 50), size=50)
    small = writer.run(insert(1000))
    await asyncio.gather(big, small)
    assert threads[0] != loop_thread
    assert await writer.run(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 63
    await writer.close()


async def test_queued_writes_without_futures_report_only_failures(tmp_path: Path) -> None:
    """queue_run/queue_result (the engine's path) write what save_*_nowait would, and a
    failed write reaches its callback before any later write's future resolves."""
    from datetime import timedelta

    from agentkit.result import SerializableAgentResult

    errors: list[BaseException] = []
    async with SQLiteStore(tmp_path / "q.db") as store:
        result = SerializableAgentResult.from_raw(
            {"n": 1},
            agent="a",
            user_id="u",
            run_id="r1",
            started_at=records.T0,
            finished_at=records.T0 + timedelta(seconds=1),
        )
        blob = records.CODEC.encode_result(result, records.store_context("r1", "a"))
        store.queue_run(make_run("u", "r1"), errors.append)
        store.queue_result(result, blob, errors.append)
        await store.save_run(make_run("u", "r1", status=RunStatus.SUCCEEDED))
        assert errors == []
        got = await store.get_run("u", "r1")
        assert got is not None and got.run.status is RunStatus.SUCCEEDED
        (rec,) = got.results
        expected = records.ResultRecord.from_result(result, blob)
        assert rec == expected

        with pytest.raises(InvalidPayloadError):
            store.queue_result(result, b"not an envelope", errors.append)

        # a write that fails in the database: its callback runs, later writes still commit
        def fail_once(conn: sqlite3.Connection) -> None:
            conn.execute(
                "CREATE TEMP TRIGGER no_r2 BEFORE INSERT ON results "
                "WHEN NEW.run_id = 'r2' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )

        await store._writer.run(fail_once, size=0)
        store.queue_result(result.model_copy(update={"run_id": "r2"}), blob, errors.append)
        await store.save_run(make_run("u", "r3"))
        assert len(errors) == 1 and isinstance(errors[0], StoreError)
        assert "refused" in str(errors[0])
    with pytest.raises(StoreError, match="closed"):
        store.queue_run(make_run("u", "r4"), errors.append)


async def test_queued_writes_go_through_overridden_nowait_methods(tmp_path: Path) -> None:
    """A subclass that changes save_results_nowait/save_run_nowait sees the engine's
    queued writes too, and their failures reach the callback."""
    from agentkit.store.records import ResultRecord, RunRecord

    seen: list[object] = []

    class Recording(SQLiteStore):
        def save_run_nowait(self, run: RunRecord) -> asyncio.Future[None]:
            seen.append(run)
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(StoreError("run refused"))
            return fut

        def save_results_nowait(self, recs: Any) -> asyncio.Future[None]:
            seen.extend(recs)
            return super().save_results_nowait(recs)

    errors: list[BaseException] = []
    async with Recording(tmp_path / "o.db") as store:
        rec = make_result("u", "r1", "a")
        result = records.decode_record(rec)
        store.queue_result(result, rec.blob, errors.append)
        store.queue_run(make_run("u", "r1"), errors.append)
        await store.save_run(make_run("u", "r1", status=RunStatus.SUCCEEDED))
        await asyncio.sleep(0)
        assert [type(x) for x in seen] == [ResultRecord, RunRecord]
        assert len(errors) == 1 and "run refused" in str(errors[0])


async def test_inline_writer_commits_a_burst_in_chunks_on_the_loop(tmp_path: Path) -> None:
    """Many small writes at once: committed on the loop's thread, at most inline_max_rows
    per transaction and per loop turn, in submission order; a backlog over max_group rows
    goes to a worker thread."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "b.db", isolation_level=None, check_same_thread=False)
        conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)")
        return conn

    loop_thread = threading.get_ident()
    writer = SQLiteWriter(connect, name="burst", inline=True, max_group=100, inline_max_rows=10)
    await writer.start()
    threads: list[int] = []
    order: list[int] = []

    def insert(x: int):  # type: ignore[no-untyped-def]
        def op(conn: sqlite3.Connection) -> None:
            threads.append(threading.get_ident())
            order.append(x)
            conn.execute("INSERT INTO t VALUES (?)", (x,))

        return op

    commits = writer.commits
    await asyncio.gather(*(writer.run(insert(i)) for i in range(35)))
    assert set(threads) == {loop_thread} and order == list(range(35))
    assert writer.commits - commits == 4  # 10 + 10 + 10 + 5
    threads.clear()
    await asyncio.gather(*(writer.run(insert(1000 + i)) for i in range(150)))  # > max_group
    assert any(t != loop_thread for t in threads)
    assert order == list(range(35)) + list(range(1000, 1150))
    await writer.close()


async def test_nullable_columns_keep_values_that_look_like_the_null_markers(
    tmp_path: Path,
) -> None:
    """None is bound as 0 (text columns) or '' (number columns) through NULLIF: falsy real
    values ('', '0', 0.0, the epoch) still round-trip, and None stays None."""
    from datetime import UTC, datetime

    from agentkit.status import AgentStatus
    from agentkit.store.records import ResultRecord, RunRecord

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    blob = make_result("u", "r", "a").blob
    async with SQLiteStore(tmp_path / "n.db") as store:
        for i, (session, started, duration) in enumerate(
            [("", epoch, 0.0), ("0", None, None), (None, epoch, -0.0)]
        ):
            run_id = f"r{i}"
            run = RunRecord(
                run_id=run_id,
                user_id="u",
                session_id=session,
                pipeline=["a"],
                status=RunStatus.RUNNING,
                submitted_at=epoch,
                started_at=started,
                error={"type": "0", "message": ""} if session is None else None,
            )
            rec = ResultRecord(
                run_id=run_id,
                user_id="u",
                agent="a",
                agent_version="1",
                session_id=session,
                status=AgentStatus.SUCCEEDED,
                started_at=started,
                finished_at=started,
                duration_s=duration,
                output_json="0",
                blob=blob,
            )
            await store.save_run(run)
            await store.save_results([rec])
            got = await store.get_run("u", run_id)
            assert got is not None and got.run == run and got.results == [rec]
