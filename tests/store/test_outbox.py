"""OutboxStore: a store that really fails, spooling, in-order replay, restart, reads."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from agentkit.errors import ConfigurationError, InvalidPayloadError, StoreError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.outbox import Outbox, OutboxStore
from agentkit.store.records import ResultRecord, RunRecord, StoredRun
from agentkit.store.sqlite import SQLiteStore

_spec = importlib.util.spec_from_file_location(
    "contract_records", Path(__file__).parents[1] / "contract" / "contract_records.py"
)
assert _spec is not None and _spec.loader is not None
records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(records)
make_result, make_run = records.make_result, records.make_run


class FlakyStore(SQLiteStore):
    """A real SQLite store whose writes (``down``) or reads (``reads_down``) fail on demand,
    or which hangs (``frozen``)."""

    def __init__(self, path: Path, **kw: Any) -> None:
        super().__init__(path, **kw)
        self.down = False
        self.reads_down = False
        self.frozen = False
        self.failed_calls = 0

    async def _gate(self, *, read: bool = False) -> None:
        while self.frozen:
            await asyncio.sleep(0.01)
        if self.reads_down if read else self.down:
            self.failed_calls += 1
            raise StoreError("flaky store is down")

    async def _start(self) -> None:
        await self._gate()
        await super()._start()

    async def _save_run(self, run: RunRecord) -> None:
        await self._gate()
        await super()._save_run(run)

    async def _save_results(self, records: list[ResultRecord]) -> None:
        await self._gate()
        await super()._save_results(records)

    async def _get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        await self._gate(read=True)
        return await super()._get_run(user_id, run_id)

    async def _list_runs(self, user_id: str, **kw: Any) -> list[RunRecord]:
        await self._gate(read=True)
        return await super()._list_runs(user_id, **kw)

    async def _list_results(self, user_id: str, **kw: Any) -> list[ResultRecord]:
        await self._gate(read=True)
        return await super()._list_results(user_id, **kw)


def open_pair(tmp_path: Path, **kw: Any) -> tuple[FlakyStore, OutboxStore, list[int]]:
    inner = FlakyStore(tmp_path / "store.db")
    depths: list[int] = []
    store = OutboxStore(
        inner,
        tmp_path / "outbox.db",
        probe_initial=0.02,
        probe_max=0.1,
        on_depth=depths.append,
        **kw,
    )
    return inner, store, depths


def raw_counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        results = conn.execute("SELECT count(*) FROM results").fetchone()[0]
        return runs, results
    finally:
        conn.close()


async def one_run(store: OutboxStore, user: str, i: int) -> str:
    run_id = f"{user}-run-{i}"
    await store.save_run(make_run(user, run_id, minute=i))
    for agent in ("triage", "data"):
        await store.save_results([make_result(user, run_id, agent, minute=i)])
        await asyncio.sleep(0)
    await store.save_run(make_run(user, run_id, status=RunStatus.SUCCEEDED, minute=i))
    return run_id


async def test_healthy_writes_go_straight_to_the_store(tmp_path: Path) -> None:
    _inner, store, depths = open_pair(tmp_path)
    async with store:
        await one_run(store, "u", 0)
        assert store.healthy and store.depth == 0 and store.spooled == 0
        assert raw_counts(tmp_path / "store.db") == (1, 2)
    assert depths == [0]


async def test_store_down_mid_load_loses_nothing(tmp_path: Path) -> None:
    inner, store, depths = open_pair(tmp_path)
    async with store:
        down = asyncio.Event()

        async def breaker() -> None:
            await asyncio.sleep(0.01)
            inner.down = True
            down.set()

        async def after_the_break(user: str, i: int) -> str:
            await down.wait()  # so some writes always meet the store down, however fast
            return await one_run(store, user, i)

        users = [f"user{n}" for n in range(20)]
        tasks = [
            one_run(store, u, i) if i < 2 else after_the_break(u, i)
            for u in users
            for i in range(5)
        ]
        run_ids = (await asyncio.gather(breaker(), *tasks))[1:]
        assert store.depth > 0 and not store.healthy and store.spooled > 0
        assert max(depths) == store.depth

        # reads see what waits in the outbox, scoped by user
        got = await store.get_run("user3", "user3-run-4")
        assert got is not None and got.run.status is RunStatus.SUCCEEDED
        assert {r.agent for r in got.results} == {"triage", "data"}
        assert await store.get_run("user4", "user3-run-4") is None
        listed = await store.list_runs("user3")
        assert [r.run_id for r in listed] == [f"user3-run-{i}" for i in range(4, -1, -1)]
        assert {r.status for r in listed} == {RunStatus.SUCCEEDED}
        data = await store.list_results("user3", agent="data", limit=3)
        assert [r.run_id for r in data] == [f"user3-run-{i}" for i in (4, 3, 2)]

        await asyncio.sleep(0.2)  # a few failing probes
        assert store.depth > 0 and inner.failed_calls > 1
        inner.down = False
        assert await store.flush(timeout=10)
        assert store.depth == 0 and store.healthy and depths[-1] == 0
        assert store.replayed >= 1

        assert raw_counts(tmp_path / "store.db") == (100, 200)
        for user in users:
            runs = await inner.list_runs(user)
            assert len(runs) == 5 and {r.status for r in runs} == {RunStatus.SUCCEEDED}
        assert set(run_ids) == {r.run_id for u in users for r in await inner.list_runs(u)}


async def test_order_is_kept_while_the_store_comes_back(tmp_path: Path) -> None:
    inner, store, _ = open_pair(tmp_path)
    async with store:
        inner.down = True
        await store.save_run(make_run("u", "r1", status=RunStatus.RUNNING))
        inner.down = False
        # the store is reachable again, but older records still wait: this write must queue
        # behind them rather than overtake them
        await store.save_run(make_run("u", "r1", status=RunStatus.SUCCEEDED))
        await store.save_results([make_result("u", "r1", "a", status=AgentStatus.FAILED)])
        await store.save_results([make_result("u", "r1", "a", minute=1)])
        assert await store.flush(timeout=10)
        got = await inner.get_run("u", "r1")
        assert got is not None and got.run.status is RunStatus.SUCCEEDED
        assert [r.status for r in got.results] == [AgentStatus.SUCCEEDED]


async def test_restart_with_a_non_empty_outbox_replays_it(tmp_path: Path) -> None:
    inner, store, _ = open_pair(tmp_path)
    await store.start()
    inner.down = True
    await one_run(store, "u", 1)  # finished: running, results, succeeded
    await store.save_run(make_run("u", "u-run-2", status=RunStatus.RUNNING))  # in flight
    depth = store.depth
    assert depth == 5
    await store.aclose()

    _inner2, store2, depths = open_pair(tmp_path)
    await store2.start()
    try:
        assert store2.interrupted_on_start == 1
        assert await store2.flush(timeout=10)
        assert depths[0] == depth + 1 and depths[-1] == 0
        done = await store2.get_run("u", "u-run-1")
        assert done is not None and done.run.status is RunStatus.SUCCEEDED
        assert len(done.results) == 2
        cut = await store2.get_run("u", "u-run-2")
        assert cut is not None and cut.run.status is RunStatus.INTERRUPTED
    finally:
        await store2.aclose()


async def test_store_unavailable_at_start(tmp_path: Path) -> None:
    inner, store, _ = open_pair(tmp_path)
    inner.down = inner.reads_down = True
    async with store:
        assert not store.healthy
        await one_run(store, "u", 0)
        assert store.depth == 4
        with pytest.raises(StoreError, match="down"):
            await store.list_runs("u")  # "unavailable", never a misleading "not found"
        inner.down = inner.reads_down = False
        assert await store.flush(timeout=10)
        assert [r.run_id for r in await store.list_runs("u")] == ["u-run-0"]


async def test_a_frozen_store_is_spooled_after_the_write_timeout(tmp_path: Path) -> None:
    inner, store, _ = open_pair(tmp_path, write_timeout=0.2)
    async with store:
        inner.frozen = True
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await store.save_results([make_result("u", "r", "a")])
        assert 0.15 < loop.time() - t0 < 2
        assert store.depth == 1
        inner.frozen = False
        assert await store.flush(timeout=10)
        assert len(await inner.list_results("u")) == 1


async def test_usage_errors_are_raised_not_spooled(tmp_path: Path) -> None:
    _inner, store, _ = open_pair(tmp_path)
    async with store:
        bad = make_result("u", "r", "a").model_copy(update={"blob": b"raw bytes"})
        with pytest.raises(InvalidPayloadError):
            await store.save_results([bad])
        assert store.depth == 0 and store.healthy


async def test_outbox_failure_is_a_store_error(tmp_path: Path) -> None:
    class BrokenOutbox(Outbox):
        async def append(self, records: Any) -> None:
            raise OSError(28, "No space left on device")

    inner = FlakyStore(tmp_path / "store.db")
    store = OutboxStore(inner, BrokenOutbox(tmp_path / "outbox.db"))
    async with store:
        inner.down = True
        with pytest.raises(StoreError, match="nothing was saved"):
            await store.save_run(make_run("u", "r"))
        assert store.depth == 0
        inner.down = False  # the store is back; the outbox is still broken
        await store.save_run(make_run("u", "r"))  # nothing waits, so it goes straight in
        assert store.healthy
        assert [r.run_id for r in await inner.list_runs("u")] == ["r"]


async def test_outbox_records_round_trip(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    await outbox.open()
    recs = [make_run("u", "r"), make_result("u", "r", "a"), make_result("v", "r2", "b")]
    await outbox.append(recs)
    assert outbox.depth == 3
    peeked = await outbox.peek(10)
    assert [rec for _, rec, _ in peeked] == recs
    assert all(isinstance(at, datetime) for _, _, at in peeked)
    assert [rec for _, rec, _ in await outbox.pending_for("v")] == [recs[2]]
    assert [rec for _, rec, _ in await outbox.pending_for("u", "r")] == recs[:2]
    await outbox.remove_through(peeked[1][0])
    assert outbox.depth == 1
    await outbox.close()
    conn = sqlite3.connect(tmp_path / "o.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_bad_configuration(tmp_path: Path) -> None:
    inner = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(ConfigurationError):
        OutboxStore(object(), tmp_path / "o.db")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        OutboxStore(inner, tmp_path / "o.db", probe_initial=0)
    with pytest.raises(ConfigurationError):
        Outbox(":memory:")
    with pytest.raises(ConfigurationError):
        Outbox(tmp_path / "o.db", synchronous="OFF")


async def test_a_really_locked_sqlite_store_spools_then_replays(tmp_path: Path) -> None:
    """A real fault: another connection holds SQLite's write lock, so the store's writes fail
    with "database is locked" after its busy timeout; the outbox takes them meanwhile."""
    inner = SQLiteStore(tmp_path / "store.db", busy_timeout=0.05)
    store = OutboxStore(inner, tmp_path / "outbox.db", probe_initial=0.05, probe_max=0.1)
    async with store:
        await one_run(store, "u", 0)
        blocker = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            await asyncio.gather(*(one_run(store, "u", i) for i in range(1, 11)))
            assert store.depth == 40 and not store.healthy
            await asyncio.sleep(0.3)
            assert store.depth == 40  # replay keeps failing while the lock is held
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await store.flush(timeout=10)
        runs = await inner.list_runs("u", limit=100)
        assert len(runs) == 11 and {r.status for r in runs} == {RunStatus.SUCCEEDED}
        assert raw_counts(tmp_path / "store.db") == (11, 22)


async def test_an_unopenable_sqlite_store_is_retried_until_it_opens(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's folder should be")
    inner = SQLiteStore(blocker / "store.db")
    store = OutboxStore(inner, tmp_path / "outbox.db", probe_initial=0.05, probe_max=0.1)
    async with store:
        await one_run(store, "u", 0)
        assert store.depth == 4 and not store.healthy
        blocker.unlink()  # the operator fixes the path
        assert await store.flush(timeout=10)
        got = await store.get_run("u", "u-run-0")
        assert got is not None and got.run.status is RunStatus.SUCCEEDED
        assert len(got.results) == 2


async def test_one_outbox_file_serves_one_process(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "o.db")
    await first.open()
    await first.append([make_run("u", "r")])
    second = Outbox(tmp_path / "o.db")
    with pytest.raises(StoreError, match="locked"):
        await second.open()
    await first.close()
    await second.open()  # free once the first process let go
    assert second.depth == 1
    await second.close()
