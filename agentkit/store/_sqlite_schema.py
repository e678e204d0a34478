"""SQLiteStore's schema: versioned migrations, row conversion, and the statements it runs.

Times are stored as integer microseconds since the Unix epoch (UTC), so ordering and range
filters use plain integer indexes and round trips are exact. Naive datetimes are taken as UTC;
times come back as aware UTC datetimes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentkit.errors import StoreError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.records import ResultRecord, RunRecord

if TYPE_CHECKING:
    from agentkit.result import SerializableAgentResult

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "from_us",
    "migrate",
    "recover_interrupted",
    "result_row",
    "result_row_of",
    "row_to_result",
    "row_to_run",
    "run_row",
    "run_status_index_hint",
    "to_us",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: each status's value as a plain str (what sqlite3 binds without an adapter lookup), by member
_VALUES: dict[object, str] = {s: s.value for s in (*RunStatus, *AgentStatus)}
_TERMINAL = tuple(s.value for s in RunStatus if s.is_terminal)
_ACTIVE = tuple(s.value for s in RunStatus if not s.is_terminal)
_TERMINAL_SQL = ", ".join(f"'{s}'" for s in _TERMINAL)
_ACTIVE_SQL = ", ".join(f"'{s}'" for s in _ACTIVE)
#: terminal run states other than succeeded (what runs_user_unsuccessful_time holds)
_UNSUCCESSFUL = tuple(s for s in _TERMINAL if s != RunStatus.SUCCEEDED.value)
_UNSUCCESSFUL_SQL = ", ".join(f"'{s}'" for s in _UNSUCCESSFUL)

#: (version, description, statements). Append new migrations; never edit an applied one.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (
        1,
        "runs and results",
        (
            """CREATE TABLE runs (
                run_id       TEXT PRIMARY KEY,
                user_id      TEXT NOT NULL,
                session_id   TEXT,
                pipeline     TEXT NOT NULL,
                status       TEXT NOT NULL,
                submitted_at INTEGER NOT NULL,
                started_at   INTEGER,
                finished_at  INTEGER,
                error        TEXT,
                owner        TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX runs_user_time ON runs (user_id, submitted_at)",
            "CREATE INDEX runs_user_status_time ON runs (user_id, status, submitted_at)",
            f"CREATE INDEX runs_active ON runs (status) WHERE status IN ({_ACTIVE_SQL})",
            """CREATE TABLE results (
                run_id        TEXT NOT NULL,
                agent         TEXT NOT NULL,
                user_id       TEXT NOT NULL,
                agent_version TEXT NOT NULL,
                session_id    TEXT,
                status        TEXT NOT NULL,
                started_at    INTEGER,
                finished_at   INTEGER,
                duration_s    REAL,
                at            INTEGER NOT NULL,
                output_json   TEXT NOT NULL,
                blob          BLOB NOT NULL,
                UNIQUE (run_id, agent)
            )""",
            "CREATE INDEX results_user_time ON results (user_id, at)",
            "CREATE INDEX results_user_agent_time ON results (user_id, agent, at)",
            # Partial: most results succeed, and "show me what failed" is the status query
            # that needs an index; leaving successes out cuts the cost of every write.
            "CREATE INDEX results_user_unsuccessful_time ON results (user_id, status, at) "
            "WHERE status <> 'succeeded'",
        ),
    ),
    (
        2,
        "fewer indexes to update per write",
        (
            # Each index is one more B-tree insert per row, on a page of its own (they are
            # keyed by user, so a group commit's rows land all over them). An agent filter
            # reads the user's results in time order through results_user_time instead.
            "DROP INDEX IF EXISTS results_user_agent_time",
            # Most runs succeed; their status filter reads runs_user_time. Active runs are in
            # runs_active; the rest are few and get an index of their own.
            "DROP INDEX IF EXISTS runs_user_status_time",
            "CREATE INDEX runs_user_unsuccessful_time ON runs (user_id, status, submitted_at) "
            f"WHERE status IN ({_UNSUCCESSFUL_SQL})",
        ),
    ),
]
LATEST_VERSION = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations inside the caller's transaction; return the schema version.

    Raises:
        StoreError: the database was written by a newer agentkit.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    (current,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    if current > LATEST_VERSION:
        raise StoreError(
            f"the database has schema version {current} but this agentkit knows up to "
            f"{LATEST_VERSION}; upgrade agentkit or use another database file"
        )
    now = datetime.now(UTC).isoformat()
    for version, description, statements in MIGRATIONS:
        if version <= current:
            continue
        for stmt in statements:
            conn.execute(stmt)
        conn.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (version, description, now),
        )
        current = version
    return int(current)


def run_status_index_hint(status: RunStatus) -> str | None:
    """A condition implied by ``status = <status>`` that names the partial index holding that
    status literally (a bound parameter alone never matches a partial index's WHERE), or None
    when no partial index holds it."""
    if status.value in _UNSUCCESSFUL:
        return f"status IN ({_UNSUCCESSFUL_SQL})"
    if status.value in _ACTIVE:
        return f"status IN ({_ACTIVE_SQL})"
    return None


def recover_interrupted(conn: sqlite3.Connection) -> int:
    """Mark runs a stopped process left queued or running as interrupted; return how many."""
    error = json.dumps(
        {
            "type": "Interrupted",
            "message": "the process running this run stopped before it finished",
        }
    )
    cur = conn.execute(
        f"UPDATE runs SET status = 'interrupted', finished_at = ?, "
        f"error = coalesce(error, ?) WHERE status IN ({_ACTIVE_SQL})",
        (to_us(datetime.now(UTC)), error),
    )
    return cur.rowcount


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch; a naive ``dt`` is taken as UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // _US


def from_us(value: int) -> datetime:
    """Inverse of :func:`to_us`: an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=value)


def _opt_dt(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def _opt_us(dt: datetime | None) -> int | None:
    return None if dt is None else to_us(dt)


# --- runs --------------------------------------------------------------------------------------

RUN_COLUMNS = (
    "run_id, user_id, session_id, pipeline, status, submitted_at, started_at, finished_at, "
    "error, owner"
)
# Nullable columns are bound through NULLIF: a text column gets 0 for NULL and a number
# column '', values no real one equals (SQLite never finds a text and a number equal). The
# sqlite3 module binds int, float, str and bytearray directly but looks up an adapter for
# every None and bytes value, which costs more than the rest of binding a row.
# A run never moves from a terminal status back to queued/running (a late or replayed write of
# an older state must not undo its end), and never changes owner user. Its submission time
# never changes either: leaving submitted_at out of the SET list spares SQLite rewriting the
# runs_user_time index entry on every status change.
UPSERT_RUN = f"""
INSERT INTO runs ({RUN_COLUMNS})
VALUES (?, ?, NULLIF(?, 0), ?, ?, ?, NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, 0), ?)
ON CONFLICT (run_id) DO UPDATE SET
    session_id = excluded.session_id, pipeline = excluded.pipeline, status = excluded.status,
    started_at = excluded.started_at, finished_at = excluded.finished_at,
    error = excluded.error, owner = excluded.owner
WHERE runs.user_id = excluded.user_id
  AND (excluded.status IN ({_TERMINAL_SQL}) OR runs.status IN ({_ACTIVE_SQL}))
"""

_ACTIVE_SET = frozenset(_ACTIVE)


def coalesce_run_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``rows`` of :data:`UPSERT_RUN` for one transaction, without the rows a later row
    makes moot: an active state (queued, running) of a run whose next row in ``rows`` has
    the same user and submission time. Applying that next row alone leaves the table as
    applying both would, whatever the table held (the conflict clause lets it replace an
    active state, and both fail alike against another user's or a terminal row). A run
    that starts and ends between two commits therefore costs one row write, not two.
    """
    if len(rows) < 2:
        return rows
    nxt: dict[str, tuple[Any, ...]] = {}
    keep: list[tuple[Any, ...]] = []
    for row in reversed(rows):
        later = nxt.get(row[0])
        nxt[row[0]] = row
        if (
            later is not None
            and row[4] in _ACTIVE_SET
            and later[1] == row[1]
            and later[5] == row[5]
        ):
            continue
        keep.append(row)
    if len(keep) == len(rows):
        return rows
    keep.reverse()
    return keep


_PIPELINES: dict[tuple[str, ...], str] = {}


def _pipeline_json(pipeline: list[str]) -> str:
    # a deployment runs few distinct pipelines, each written with every run record
    key = tuple(pipeline)
    try:
        text = _PIPELINES.get(key)
    except TypeError:  # not names (a record built without validation): no caching
        return json.dumps(pipeline)
    if text is None:
        text = json.dumps(pipeline)
        if len(_PIPELINES) >= 256:
            _PIPELINES.clear()
        _PIPELINES[key] = text
    return text


def run_row(run: RunRecord) -> tuple[Any, ...]:
    """The parameters of :data:`UPSERT_RUN` for ``run``."""
    session_id, started_at, finished_at, error = (
        run.session_id,
        run.started_at,
        run.finished_at,
        run.error,
    )
    return (
        run.run_id,
        run.user_id,
        0 if session_id is None else session_id,
        _pipeline_json(run.pipeline),
        _VALUES.get(run.status) or run.status.value,
        to_us(run.submitted_at),
        "" if started_at is None else to_us(started_at),
        "" if finished_at is None else to_us(finished_at),
        0 if error is None else json.dumps(error),
        run.owner,
    )


def row_to_run(row: tuple[Any, ...]) -> RunRecord:
    """A :class:`RunRecord` from a row of ``SELECT {RUN_COLUMNS}``."""
    return RunRecord.model_construct(
        run_id=row[0],
        user_id=row[1],
        session_id=row[2],
        pipeline=json.loads(row[3]),
        status=RunStatus(row[4]),
        submitted_at=from_us(row[5]),
        started_at=_opt_dt(row[6]),
        finished_at=_opt_dt(row[7]),
        error=None if row[8] is None else json.loads(row[8]),
        owner=row[9],
    )


# --- results -----------------------------------------------------------------------------------

RESULT_COLUMNS = (
    "run_id, agent, user_id, agent_version, session_id, status, started_at, finished_at, "
    "duration_s, output_json, blob"
)
UPSERT_RESULT = f"""
INSERT INTO results ({RESULT_COLUMNS}, at)
VALUES (?, ?, ?, ?, NULLIF(?, 0), ?, NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), ?, ?, ?)
ON CONFLICT (run_id, agent) DO UPDATE SET
    agent_version = excluded.agent_version, session_id = excluded.session_id,
    status = excluded.status, started_at = excluded.started_at,
    finished_at = excluded.finished_at, duration_s = excluded.duration_s, at = excluded.at,
    output_json = excluded.output_json, blob = excluded.blob
WHERE results.user_id = excluded.user_id
"""


def result_row(rec: ResultRecord, now_us: int) -> tuple[Any, ...]:
    """The parameters of :data:`UPSERT_RESULT`; ``at`` is finished, else started, else now."""
    return _result_row(
        rec.run_id,
        rec.agent,
        rec.user_id,
        rec.agent_version,
        rec.session_id,
        rec.status,
        rec.started_at,
        rec.finished_at,
        rec.duration_s,
        rec.output_json,
        rec.blob,
        now_us,
    )


def _result_row(
    run_id: str,
    agent: str,
    user_id: str,
    agent_version: str,
    session_id: str | None,
    status: AgentStatus,
    started_at: datetime | None,
    finished_at: datetime | None,
    duration_s: float | None,
    output_json: str,
    blob: bytes,
    now_us: int | None,
) -> tuple[Any, ...]:
    started = None if started_at is None else to_us(started_at)
    finished = None if finished_at is None else to_us(finished_at)
    if finished is not None:
        at = finished
    elif started is not None:
        at = started
    else:
        at = time.time_ns() // 1000 if now_us is None else now_us
    return (
        run_id,
        agent,
        user_id,
        agent_version,
        0 if session_id is None else session_id,
        _VALUES.get(status) or status.value,
        "" if started is None else started,
        "" if finished is None else finished,
        "" if duration_s is None else duration_s,
        output_json,
        bytearray(blob),
        at,
    )


def result_row_of(result: SerializableAgentResult, blob: bytes) -> tuple[Any, ...]:
    """:func:`result_row` of ``ResultRecord.from_result(result, blob)``, without the record."""
    d = result.__dict__
    return _result_row(
        d["run_id"],
        d["agent"],
        d["user_id"],
        d["agent_version"],
        d["session_id"],
        d["status"],
        d["started_at"],
        d["finished_at"],
        d["duration_s"],
        result.output_json(),
        blob,
        None,
    )


def row_to_result(row: tuple[Any, ...]) -> ResultRecord:
    """A :class:`ResultRecord` from a row of ``SELECT {RESULT_COLUMNS}``."""
    return ResultRecord.model_construct(
        run_id=row[0],
        agent=row[1],
        user_id=row[2],
        agent_version=row[3],
        session_id=row[4],
        status=AgentStatus(row[5]),
        started_at=_opt_dt(row[6]),
        finished_at=_opt_dt(row[7]),
        duration_s=row[8],
        output_json=row[9],
        blob=bytes(row[10]),
    )
