"""Run rows dropped from a group commit leave the table exactly as writing them all would."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.status import RunStatus
from agentkit.store import _sqlite_schema as schema
from agentkit.store._sqlite_writer import BulkStatement
from agentkit.store.records import RunRecord
from agentkit.store.sqlite import SQLiteStore

_PLAIN = BulkStatement(schema.UPSERT_RUN)
_COALESCED = BulkStatement(schema.UPSERT_RUN, coalesce=schema.coalesce_run_rows)

_rows = st.tuples(
    st.sampled_from(["r1", "r2"]),  # run_id
    st.sampled_from(["alice", "bob"]),  # user_id
    st.sampled_from([0, "s1"]),  # session_id (0: NULL)
    st.just('["a"]'),  # pipeline
    st.sampled_from([s.value for s in RunStatus]),  # status
    st.sampled_from([1_000, 2_000]),  # submitted_at
    st.sampled_from(["", 1_500]),  # started_at ('': NULL)
    st.sampled_from(["", 3_000]),  # finished_at
    st.sampled_from([0, '{"type": "x"}']),  # error
    st.sampled_from(["", "owner-1"]),  # owner
)


def _table(rows_before: list[tuple[Any, ...]], group: list[tuple[Any, ...]], stmt: BulkStatement):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    schema.migrate(conn)
    for row in rows_before:
        _PLAIN.execute(conn, [row])
    conn.execute("BEGIN")
    rows = stmt.coalesce(list(group)) if stmt.coalesce else list(group)
    stmt.execute(conn, rows)
    conn.execute("COMMIT")
    return conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall()


@settings(max_examples=400, deadline=None)
@given(before=st.lists(_rows, max_size=2), group=st.lists(_rows, max_size=6))
def test_coalescing_never_changes_what_the_table_holds(
    before: list[tuple[Any, ...]], group: list[tuple[Any, ...]]
) -> None:
    assert _table(before, group, _COALESCED) == _table(before, group, _PLAIN)


def _row(status: str, *, user: str = "alice", submitted: int = 1_000) -> tuple[Any, ...]:
    return ("r1", user, 0, '["a"]', status, submitted, "", "", 0, "")


def test_an_active_state_followed_by_the_runs_next_state_is_dropped() -> None:
    rows = [_row("queued"), _row("running"), _row("succeeded")]
    assert schema.coalesce_run_rows(rows) == [_row("succeeded")]


def test_rows_that_matter_are_kept() -> None:
    # a terminal state followed by an older active one: the table keeps the terminal one
    late = [_row("succeeded"), _row("running")]
    assert schema.coalesce_run_rows(late) == late
    # another user's row for the same id is refused by the table; the first must stay
    other = [_row("running"), _row("succeeded", user="bob")]
    assert schema.coalesce_run_rows(other) == other
    # a different submission time is not updated on conflict; the first row's would stay
    moved = [_row("running"), _row("succeeded", submitted=2_000)]
    assert schema.coalesce_run_rows(moved) == moved


async def test_a_run_that_starts_and_ends_between_two_commits_writes_one_row(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "runs.db")
    async with store:
        now = datetime.now(UTC)
        base = RunRecord(
            run_id="run-1",
            user_id="alice",
            pipeline=["a"],
            status=RunStatus.RUNNING,
            submitted_at=now,
            started_at=now,
        )
        conn = store._writer._conn  # inline commits: the writer's connection is at hand
        assert conn is not None
        changes = conn.total_changes
        errors: list[BaseException] = []
        store.queue_run(base, errors.append)
        final = base.model_copy(update={"status": RunStatus.SUCCEEDED, "finished_at": now})
        await store.save_run(final)
        assert errors == []
        assert conn.total_changes - changes == 1  # the running state was never written
        got = await store.get_run("alice", "run-1")
        assert got is not None and got.run.status is RunStatus.SUCCEEDED
        assert got.run.finished_at == final.finished_at
