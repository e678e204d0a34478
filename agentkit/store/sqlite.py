"""``sqlite:///path.db``: the embedded default store (stdlib sqlite3, no server).

* Writes are committed in **groups**: the writes of many concurrent callers go into one
  transaction, and each caller's ``await`` returns only after that transaction committed
  ("acknowledged means persisted"). With ``synchronous=NORMAL`` (the default) a commit does not
  wait on the disk, so groups are committed on the event loop's thread at the end of each loop
  turn (cheaper than a thread, which fights the loop for the GIL), and WAL checkpoints (which
  do fsync) run in a worker thread. With ``synchronous=FULL`` (one fsync per commit), or
  ``inline_commits=False``, a writer thread commits the groups and the loop never waits on it.
* WAL journal, ``synchronous=NORMAL`` by default: a committed group survives the process being
  killed; after an OS crash or power loss the last groups may be lost. Pass
  ``synchronous="FULL"`` to survive those too (one fsync per group).
* Reads use separate read-only connections in worker threads (WAL lets them run while the
  writer commits). ``sqlite:///:memory:`` keeps everything in memory (reads then go through
  the writer thread); it is for tests and throwaway runs.
* A versioned schema (table ``schema_version``) migrated on :meth:`SQLiteStore.start`, which
  also marks runs a stopped process left queued or running as ``interrupted``.

One process per database file: recovery on start assumes every unfinished run in the file
belonged to a process that is gone. Share a store between processes with PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from agentkit._envelope_check import check_result_envelope
from agentkit.errors import ConfigurationError, InvalidPayloadError, StoreError
from agentkit.result import SerializableAgentResult
from agentkit.status import AgentStatus, RunStatus
from agentkit.store import _sqlite_schema as schema
from agentkit.store._sqlite_writer import BulkStatement, SQLiteWriter
from agentkit.store.base import BaseStore, check_result_records, check_run_record
from agentkit.store.records import ResultRecord, RunRecord, StoredRun

__all__ = ["SQLiteStore"]

T = TypeVar("T")
log = logging.getLogger("agentkit.store.sqlite")

_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_RUNS = BulkStatement(schema.UPSERT_RUN, coalesce=schema.coalesce_run_rows)
_RESULTS = BulkStatement(schema.UPSERT_RESULT)
MEMORY = ":memory:"


class SQLiteStore(BaseStore):
    """Durable run records in one SQLite file, written with group commits.

    Args:
        path: the database file (parent folders are created), or ``":memory:"``.
        synchronous: SQLite's ``synchronous`` pragma: ``"NORMAL"`` (default; survives a
            process crash) or ``"FULL"`` (also survives power loss, one fsync per group).
        max_group: most records committed in one transaction.
        busy_timeout: seconds to wait for a lock held by another connection.
        readers: read connections kept open for queries.
        recover: on :meth:`start`, mark runs left queued or running as interrupted.
        cache_mb: most MiB of SQLite page cache for the writer connection (used as needed).
        inline_commits: commit on the event loop's thread (see the module docs); ``None``
            (default): when ``synchronous`` is ``NORMAL`` or ``OFF``.

    Example:
        >>> store = SQLiteStore.from_url("sqlite:///runs.db")
        >>> async with store:  # doctest: +SKIP
        ...     await store.save_results([record])
    """

    url_schemes = ("sqlite",)

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "NORMAL",
        max_group: int = 4096,
        busy_timeout: float = 5.0,
        readers: int = 2,
        recover: bool = True,
        cache_mb: int = 64,
        inline_commits: bool | None = None,
    ) -> None:
        super().__init__()
        sync = str(synchronous).upper()
        if sync not in _SYNC_MODES:
            raise ConfigurationError(
                f"synchronous must be one of {', '.join(_SYNC_MODES)}, got {synchronous!r}"
            )
        if not isinstance(max_group, int) or max_group < 1:
            raise ConfigurationError(f"max_group must be a positive int, got {max_group!r}")
        if not isinstance(readers, int) or readers < 1:
            raise ConfigurationError(f"readers must be a positive int, got {readers!r}")
        if busy_timeout < 0:
            raise ConfigurationError(f"busy_timeout must be >= 0 seconds, got {busy_timeout!r}")
        self.path = str(path)
        self.in_memory = self.path == MEMORY
        self.synchronous = sync
        self.busy_timeout = float(busy_timeout)
        self.recover = recover
        self.max_readers = readers
        if not isinstance(cache_mb, int) or cache_mb < 1:
            raise ConfigurationError(f"cache_mb must be a positive int, got {cache_mb!r}")
        self.cache_mb = cache_mb
        #: runs marked interrupted by the last :meth:`start`
        self.interrupted_on_start = 0
        #: the schema version after :meth:`start`
        self.schema_version = 0
        self.inline_commits = (
            sync in ("OFF", "NORMAL") if inline_commits is None else bool(inline_commits)
        )
        self._checkpointer: sqlite3.Connection | None = None
        self._writer = SQLiteWriter(
            self._connect_writer,
            name=f"SQLiteStore({self.path})",
            max_group=max_group,
            inline=self.inline_commits,
            checkpoint=None if self.in_memory or not self.inline_commits else self._checkpoint,
        )
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        """Build a store from ``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or
        ``sqlite:///:memory:``; query options (``?synchronous=FULL&max_group=2048``) and
        keyword ``options`` are passed to the constructor (keywords win).

        Raises:
            ConfigurationError: not a ``sqlite:///`` URL, or an unknown or invalid option.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "sqlite" or parts.netloc or len(parts.path) < 2:
            raise ConfigurationError(
                "SQLiteStore takes URLs like sqlite:///relative.db, sqlite:////abs/path.db "
                f"or sqlite:///:memory:, got {url!r:.100}"
            )
        path = unquote(parts.path[1:])
        merged: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        merged.update(options)
        known = {
            "synchronous",
            "max_group",
            "busy_timeout",
            "readers",
            "recover",
            "cache_mb",
            "inline_commits",
        }
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown sqlite:// option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        try:
            for name, value in merged.items():
                if name in ("max_group", "readers", "cache_mb"):
                    kwargs[name] = int(value)
                elif name == "busy_timeout":
                    kwargs[name] = float(value)
                elif name in ("recover", "inline_commits"):
                    kwargs[name] = _as_bool(value)
                else:
                    kwargs[name] = value
        except (TypeError, ValueError):
            raise ConfigurationError(f"invalid sqlite:// option value in {url!r:.100}") from None
        return cls(path, **kwargs)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, synchronous={self.synchronous})"

    @property
    def commits(self) -> int:
        """Group transactions committed so far."""
        return self._writer.commits

    @property
    def writer_cpu_seconds(self) -> float:
        """CPU time the writer thread spent writing groups (for benchmarks)."""
        return self._writer.cpu_seconds

    # --- connections -------------------------------------------------------------------------

    def _connect_writer(self) -> sqlite3.Connection:
        if not self.in_memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        if not self.in_memory:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.close()
                raise StoreError(f"could not switch {self.path} to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(f"PRAGMA cache_size=-{self.cache_mb * 1024}")
        # Checkpoints (which fsync) stall the writer; with group commits each transaction
        # dirties many index pages, so the default of 1000 WAL pages would checkpoint after
        # nearly every group. 16384 pages (64 MiB of WAL at most) amortises that. Inline
        # commits never checkpoint on the event loop: _checkpoint runs in a worker thread.
        auto = 0 if self.inline_commits else 16384
        conn.execute(f"PRAGMA wal_autocheckpoint={auto}")
        conn.execute("PRAGMA journal_size_limit=67108864")  # WAL file back to <= 64 MiB
        return conn

    def _checkpoint(self) -> None:
        """A passive WAL checkpoint on a connection of its own (in a worker thread)."""
        conn = self._checkpointer
        if conn is None:
            conn = self._checkpointer = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _connect_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"{Path(self.path).resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout,
        )
        conn.execute("PRAGMA query_only=ON")
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed or not self._started:
            raise StoreError(f"{self!r} is closed or not started; call start() first")
        if self.in_memory:
            return await self._writer.run(fn, size=0)
        return await asyncio.to_thread(self._read_sync, fn)

    def _read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect_reader()
            self._all_readers.append(conn)
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"{self!r}: query failed: {exc}") from exc
        finally:
            if len(self._all_readers) > self.max_readers:
                self._all_readers.remove(conn)
                conn.close()
            else:
                self._readers.put(conn)

    # --- BaseStore hooks ----------------------------------------------------------------------

    async def _start(self) -> None:
        await self._writer.start()
        self.schema_version = await self._writer.run(schema.migrate, size=0)
        if self.recover:
            n = await self._writer.run(schema.recover_interrupted, size=0)
            self.interrupted_on_start = n
            if n:
                log.warning("%r: marked %d run(s) left unfinished as interrupted", self, n)

    def _check_started(self) -> None:
        if not self._started:
            raise ConfigurationError(
                f"{self!r} is not started; call `await store.start()` or use `async with store`"
            )

    async def save_run(self, run: RunRecord) -> None:
        # BaseStore.save_run without its two inner awaits (callers wait for this one often)
        if type(self)._save_run is not SQLiteStore._save_run:
            await super().save_run(run)  # a subclass hooks _save_run: go through it
            return
        written = SQLiteStore.save_run_nowait(self, run)
        del run  # not held while waiting: a caller may have many runs waiting at once
        await written

    async def _save_run(self, run: RunRecord) -> None:
        self._check_started()
        await self._writer.write_rows(_RUNS, [schema.run_row(run)])

    async def _save_results(self, records: list[ResultRecord]) -> None:
        self._check_started()
        now = time.time_ns() // 1000
        await self._writer.write_rows(_RESULTS, [schema.result_row(rec, now) for rec in records])

    # --- queued writes (the engine's hot path) --------------------------------------------------

    def save_run_nowait(self, run: RunRecord) -> asyncio.Future[None]:
        """Queue ``run`` for the next group commit; the returned future resolves once it is
        committed. Writes commit in the order they were queued (with :meth:`save_results_nowait`
        and the awaited methods alike), so awaiting the last write of a run covers the
        earlier ones; check their futures for errors all the same.

        Raises:
            InvalidPayloadError: not a RunRecord. StoreError: not started or closed.
        """
        check_run_record(run)
        self._check_started()
        return self._writer.submit_rows(_RUNS, [schema.run_row(run)])

    def save_results_nowait(self, records: Sequence[ResultRecord]) -> asyncio.Future[None]:
        """:meth:`save_results` queued like :meth:`save_run_nowait`.

        Raises:
            InvalidPayloadError: not ResultRecords with result envelopes. StoreError: not
                started or closed.
        """
        check_result_records(records)
        self._check_started()
        now = time.time_ns() // 1000
        return self._writer.submit_rows(_RESULTS, [schema.result_row(r, now) for r in records])

    def queue_run(self, run: RunRecord, on_error: Callable[[BaseException], None]) -> None:
        """:meth:`save_run_nowait` without a future, for the engine's hot path: a failure is
        reported by calling ``on_error(exc)`` on the event loop, before any later write's
        future resolves. Awaiting a later write of the same run therefore covers this one.

        Raises:
            InvalidPayloadError: not a RunRecord. StoreError: not started or closed.
        """
        if type(self).save_run_nowait is not SQLiteStore.save_run_nowait:
            # a subclass changed how runs are queued: go through its method
            _report_failure(self.save_run_nowait(run), on_error)
            return
        check_run_record(run)
        if not self._started:
            self._check_started()  # raises
        self._writer.queue_row(_RUNS, schema.run_row(run), on_error)

    def queue_result(
        self,
        result: SerializableAgentResult,
        blob: bytes,
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Queue the record of ``result`` whose codec bytes are ``blob`` like
        :meth:`queue_run` (``save_results_nowait([ResultRecord.from_result(result, blob)])``
        without the record or a future).

        Raises:
            InvalidPayloadError: ``blob`` is not a result envelope. StoreError: not started
                or closed.
        """
        if type(self).save_results_nowait is not SQLiteStore.save_results_nowait:
            # a subclass changed how results are queued: go through its method
            fut = self.save_results_nowait([ResultRecord.from_result(result, blob)])
            _report_failure(fut, on_error)
            return
        if not isinstance(result, SerializableAgentResult):
            raise InvalidPayloadError(
                f"queue_result takes a SerializableAgentResult, got {type(result).__name__}"
            )
        check_result_envelope(blob)
        if not self._started:
            self._check_started()  # raises
        self._writer.queue_row(_RESULTS, schema.result_row_of(result, blob), on_error)

    async def _get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        def query(conn: sqlite3.Connection) -> StoredRun | None:
            row = conn.execute(
                f"SELECT {schema.RUN_COLUMNS} FROM runs WHERE run_id = ? AND user_id = ?",
                (run_id, user_id),
            ).fetchone()
            if row is None:
                return None
            rows = conn.execute(
                f"SELECT {schema.RESULT_COLUMNS} FROM results "
                "WHERE run_id = ? AND user_id = ? ORDER BY at, rowid",
                (run_id, user_id),
            ).fetchall()
            return StoredRun.model_construct(
                run=schema.row_to_run(row), results=[schema.row_to_result(r) for r in rows]
            )

        return await self._read(query)

    async def _list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[RunRecord]:
        where: list[str] = ["user_id = ?"]
        params: list[Any] = [user_id]
        if status is not None:
            where.append("status = ?")
            params.append(RunStatus(status).value)
            hint = schema.run_status_index_hint(RunStatus(status))
            if hint is not None:
                where.append(hint)
        _time_range(where, params, "submitted_at", since, until)
        sql = (
            f"SELECT {schema.RUN_COLUMNS} FROM runs WHERE {' AND '.join(where)} "
            "ORDER BY submitted_at DESC, rowid DESC LIMIT ?"
        )
        params.append(limit)

        def query(conn: sqlite3.Connection) -> list[RunRecord]:
            return [schema.row_to_run(r) for r in conn.execute(sql, params)]

        return await self._read(query)

    async def _list_results(
        self,
        user_id: str,
        *,
        run_id: str | None,
        agent: str | None,
        status: AgentStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[ResultRecord]:
        where: list[str] = ["user_id = ?"]
        params: list[Any] = [user_id]
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if agent is not None:
            where.append("agent = ?")
            params.append(agent)
        if status is not None:
            where.append("status = ?")
            params.append(AgentStatus(status).value)
            if status != AgentStatus.SUCCEEDED:
                where.append("status <> 'succeeded'")  # lets SQLite use the partial index
        _time_range(where, params, "at", since, until)
        sql = (
            f"SELECT {schema.RESULT_COLUMNS} FROM results WHERE {' AND '.join(where)} "
            "ORDER BY at DESC, rowid DESC LIMIT ?"
        )
        params.append(limit)

        def query(conn: sqlite3.Connection) -> list[ResultRecord]:
            return [schema.row_to_result(r) for r in conn.execute(sql, params)]

        return await self._read(query)

    async def _aclose(self) -> None:
        await self._writer.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        for conn in self._all_readers:
            conn.close()
        self._all_readers.clear()


def _report_failure(fut: asyncio.Future[None], on_error: Callable[[BaseException], None]) -> None:
    def done(f: asyncio.Future[None]) -> None:
        exc = None if f.cancelled() else f.exception()
        if exc is not None:
            on_error(exc)

    fut.add_done_callback(done)


def _time_range(
    where: list[str], params: list[Any], column: str, since: datetime | None, until: datetime | None
) -> None:
    """``since`` is inclusive, ``until`` exclusive."""
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(schema.to_us(since))
    if until is not None:
        where.append(f"{column} < ?")
        params.append(schema.to_us(until))


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)
