"""``PostgresStore``: the durable store shared by many supervisors (extra ``agentkit[postgres]``).

URL: ``postgresql://user:password@host:5432/db?schema=agentkit`` (``postgres://`` too). The
``schema`` query parameter (or option) picks the schema the tables live in; it is created
and migrated on :meth:`PostgresStore.start`. asyncpg is imported only when the store starts.

Guarantees:

* every read is scoped by ``user_id`` in SQL; a row of another user is never returned;
* :meth:`~PostgresStore.save_results` is one statement per call (``INSERT … SELECT FROM
  unnest(…)``), idempotent by ``(run_id, agent)``: a replayed record updates its own row,
  never duplicates it, and never touches a row that belongs to another user;
* :meth:`~PostgresStore.save_run` upserts by ``run_id``; a terminal status is never
  overwritten by ``queued``/``running`` (an out-of-order replay cannot revive a run);
* every failure (connection, timeout, server error) raises
  :class:`~agentkit.errors.StoreError`, which the outbox catches and spools on.

Crash recovery with several supervisors on one database: every run row records the
:attr:`~PostgresStore.owner` id of the store that last wrote it, and each store heartbeats
its id (``owners`` table) every ``heartbeat_interval`` seconds while it is open. On start a
store marks ``interrupted`` only runs still ``queued``/``running`` that were last written
by its own id (a restarted process that kept its id), by a store that was closed cleanly,
or by an id that has not heartbeaten for ``stale_after`` seconds while the run itself was
not updated for as long (a crashed process). Runs of live supervisors are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agentkit.errors import ConfigurationError, MissingDependencyError, StoreError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store._pg_group import WriteGroup
from agentkit.store._pg_schema import apply_migrations, quote_schema
from agentkit.store._pg_util import clone_error, describe, jsonb_text, split_options, split_schema
from agentkit.store.base import BaseStore
from agentkit.store.records import ResultRecord, RunRecord, StoredRun

__all__ = ["PostgresStore"]

_log = logging.getLogger("agentkit.store.postgres")
_T = TypeVar("_T")
_LIVE = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]


def _import_asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError as exc:
        raise MissingDependencyError("asyncpg", "postgres") from exc
    return asyncpg


class PostgresStore(BaseStore):
    """A store on PostgreSQL through an asyncpg pool.

    Args:
        dsn: ``postgresql://…`` connection URL (a ``schema`` query parameter is read and
            removed; other parameters go to asyncpg).
        schema: schema for the tables (default ``agentkit``); overrides the URL's.
        min_size: connections opened on start.
        max_size: most connections in the pool.
        statement_timeout: seconds a statement may run (server-side ``statement_timeout``;
            the client gives up one second later).
        connect_timeout: seconds to open a connection.
        owner: id of this store for crash recovery; default a random id per instance. Pass
            a stable id per process (e.g. host name + service slot) to have a restarted
            process reclaim its own runs at once. Two live processes must never share one.
        heartbeat_interval: seconds between heartbeats of :attr:`owner` while open.
        stale_after: seconds without heartbeat (and without update of the run) after which
            another store's runs count as abandoned and are marked ``interrupted``.
        recover_on_start: run :meth:`recover_interrupted` in :meth:`start`.
        max_group: most records in one statement when concurrent saves are grouped.
    """

    url_schemes = ("postgresql", "postgres")

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        statement_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        owner: str | None = None,
        heartbeat_interval: float = 5.0,
        stale_after: float = 30.0,
        recover_on_start: bool = True,
        max_group: int = 2000,
    ) -> None:
        super().__init__()
        if not isinstance(dsn, str) or urlsplit(dsn).scheme.lower() not in self.url_schemes:
            shown = describe(dsn) if isinstance(dsn, str) else type(dsn).__name__
            raise ConfigurationError(f"PostgresStore needs a postgresql:// URL, got {shown!r}")
        dsn, url_schema = split_schema(dsn)
        self.schema = schema or url_schema or "agentkit"
        self._s = quote_schema(self.schema)
        if not 1 <= min_size <= max_size:
            raise ConfigurationError("pool sizes must satisfy 1 <= min_size <= max_size")
        for name, value in (
            ("statement_timeout", statement_timeout),
            ("connect_timeout", connect_timeout),
            ("heartbeat_interval", heartbeat_interval),
            ("stale_after", stale_after),
        ):
            if not value > 0:
                raise ConfigurationError(f"{name} must be positive seconds, got {value!r}")
        if not isinstance(max_group, int) or max_group < 1:
            raise ConfigurationError(f"max_group must be an int >= 1, got {max_group!r}")
        if stale_after < 2 * heartbeat_interval:
            raise ConfigurationError("stale_after must be at least 2 * heartbeat_interval")
        self._dsn = dsn
        self.min_size, self.max_size = min_size, max_size
        self.statement_timeout = float(statement_timeout)
        self.connect_timeout = float(connect_timeout)
        self.owner = owner or f"pgstore-{uuid.uuid4().hex[:16]}"
        self.heartbeat_interval = float(heartbeat_interval)
        self.stale_after = float(stale_after)
        self.recover_on_start = recover_on_start
        self._pool: Any = None
        self._asyncpg: Any = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._where = describe(dsn)
        self.recovered = 0  #: runs marked interrupted by the last recovery
        self._runs: WriteGroup[RunRecord] = WriteGroup(
            self._write_runs, max_items=max_group, clone_error=clone_error
        )
        self._results: WriteGroup[ResultRecord] = WriteGroup(
            self._write_results, max_items=max_group, clone_error=clone_error
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """Build a store for ``url``; ``options`` are the constructor's keyword arguments.

        Options may also be given in the URL query (``postgresql://h/db?schema=app&
        statement_timeout=5``); keyword arguments win. Other query parameters go to asyncpg.

        Raises:
            ConfigurationError: not a PostgreSQL URL, or an option has an invalid value.
        """
        if not isinstance(url, str) or urlsplit(url).scheme.lower() not in cls.url_schemes:
            shown = describe(url) if isinstance(url, str) else type(url).__name__
            raise ConfigurationError(f"PostgresStore needs a postgresql:// URL, got {shown!r}")
        rest, merged = split_options(url)
        merged.update(options)
        return cls(rest, **merged)

    # --- lifecycle -----------------------------------------------------------------------

    async def _start(self) -> None:
        asyncpg = self._asyncpg = _import_asyncpg()
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=self.connect_timeout,
                command_timeout=self.statement_timeout + 1.0,
                server_settings={
                    "statement_timeout": str(int(self.statement_timeout * 1000)),
                    "application_name": "agentkit",
                },
            )
            async with self._pool.acquire(timeout=self.connect_timeout) as conn:
                applied = await apply_migrations(conn, self.schema)
            if applied:
                _log.info("schema %s migrated to version %d", self.schema, applied[-1])
            await self._beat()
            if self.recover_on_start:
                await self.recover_interrupted()
        except (ConfigurationError, StoreError):
            await self._close_pool()
            raise
        except Exception as exc:
            await self._close_pool()
            raise self._error("start (connect and migrate)", exc) from exc
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._heartbeat_loop(), name="agentkit-pg-heartbeat"
        )

    async def _aclose(self) -> None:
        for group in (self._runs, self._results):
            try:
                await asyncio.wait_for(group.wait_idle(), self.statement_timeout + 2.0)
            except Exception:
                _log.warning("pending writes did not finish before close", exc_info=True)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._pool is not None:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await self._pool.execute(
                        f"DELETE FROM {self._s}.owners WHERE owner = $1",
                        self.owner,
                    )
            except Exception:
                _log.debug("could not retire owner heartbeats on close", exc_info=True)
        await self._close_pool()

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.connect_timeout)
            except Exception:
                pool.terminate()

    # --- crash recovery ------------------------------------------------------------------

    async def recover_interrupted(self) -> int:
        """Mark runs abandoned by crashed supervisors ``interrupted``; return how many.

        A run is abandoned when it is still ``queued``/``running`` and the store that last
        wrote it is this one (same :attr:`owner` id, i.e. a restarted process), or was
        closed (its heartbeat row is gone), or has not heartbeaten for ``stale_after``
        seconds while the run was not updated for as long (a crashed process).
        """
        stale = timedelta(seconds=self.stale_after)
        sql = f"""
            UPDATE {self._s}.runs AS r
               SET status = 'interrupted', finished_at = COALESCE(r.finished_at, now()),
                   updated_at = now()
             WHERE r.status = ANY($1::text[])
               AND (r.store_owner = $2
                    OR NOT EXISTS (SELECT 1 FROM {self._s}.owners AS o
                                    WHERE o.owner = r.store_owner)
                    OR (r.updated_at < now() - $3::interval
                        AND NOT EXISTS (SELECT 1 FROM {self._s}.owners AS o
                                         WHERE o.owner = r.store_owner
                                           AND o.heartbeat_at > now() - $3::interval)))"""
        status = await self._run("recover", lambda c: c.execute(sql, _LIVE, self.owner, stale))
        count = int(status.rsplit(" ", 1)[-1])
        self.recovered = count
        if count:
            _log.warning("marked %d abandoned run(s) interrupted", count)
        return count

    async def _beat(self) -> None:
        await self._run(
            "heartbeat",
            lambda c: c.execute(
                f"""INSERT INTO {self._s}.owners (owner, heartbeat_at) VALUES ($1, now())
                    ON CONFLICT (owner) DO UPDATE SET heartbeat_at = now()""",
                self.owner,
            ),
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._beat()
            except StoreError as exc:
                _log.warning("heartbeat failed (will retry): %s", exc)

    # --- writes --------------------------------------------------------------------------

    async def _save_run(self, run: RunRecord) -> None:
        await self._runs.submit([run])

    async def _save_results(self, records: list[ResultRecord]) -> None:
        await self._results.submit(records)

    async def _write_runs(self, runs: list[RunRecord]) -> None:
        latest: dict[str, RunRecord] = {}
        for run in runs:  # one row per run per statement, merged as the upsert would
            old = latest.get(run.run_id)
            if old is None or (
                old.user_id == run.user_id
                and not (old.status.is_terminal and not run.status.is_terminal)
            ):
                latest[run.run_id] = run
        rows = list(latest.values())
        sql = f"""
            INSERT INTO {self._s}.runs AS r (run_id, user_id, session_id, pipeline, status,
                submitted_at, started_at, finished_at, error, owner, store_owner, updated_at)
            SELECT u.run_id, u.user_id, u.session_id,
                   ARRAY(SELECT e FROM jsonb_array_elements_text(u.pipeline::jsonb)
                         WITH ORDINALITY AS p(e, i) ORDER BY i),
                   u.status, u.submitted_at, u.started_at, u.finished_at, u.error::jsonb,
                   u.owner, $11, now()
              FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                          $6::timestamptz[], $7::timestamptz[], $8::timestamptz[],
                          $9::text[], $10::text[])
                   AS u(run_id, user_id, session_id, pipeline, status, submitted_at,
                        started_at, finished_at, error, owner)
            ON CONFLICT (run_id) DO UPDATE SET
                session_id = EXCLUDED.session_id, pipeline = EXCLUDED.pipeline,
                status = EXCLUDED.status, submitted_at = EXCLUDED.submitted_at,
                started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
                error = EXCLUDED.error, owner = EXCLUDED.owner,
                store_owner = EXCLUDED.store_owner, updated_at = now()
            WHERE r.user_id = EXCLUDED.user_id
              AND NOT (r.status <> ALL($12::text[]) AND EXCLUDED.status = ANY($12::text[]))"""
        args = (
            [r.run_id for r in rows],
            [r.user_id for r in rows],
            [r.session_id for r in rows],
            [json.dumps(list(r.pipeline)) for r in rows],
            [r.status.value for r in rows],
            [r.submitted_at for r in rows],
            [r.started_at for r in rows],
            [r.finished_at for r in rows],
            [None if r.error is None else json.dumps(r.error, default=str) for r in rows],
            [r.owner for r in rows],
            self.owner,
            _LIVE,
        )
        await self._run("save_run", lambda c: c.execute(sql, *args))

    async def _write_results(self, records: list[ResultRecord]) -> None:
        latest: dict[tuple[str, str], ResultRecord] = {}
        for rec in records:  # one row per key per statement; the last write wins
            old = latest.get((rec.run_id, rec.agent))
            if old is None or old.user_id == rec.user_id:
                latest[(rec.run_id, rec.agent)] = rec
        rows = list(latest.values())
        try:
            await self._insert_results(rows, strict=False)
        except StoreError as exc:
            if not isinstance(exc.__cause__, self._asyncpg.exceptions.DataError):
                raise
            # an output the fast path let through is not valid JSON for jsonb: check each
            await self._insert_results(rows, strict=True)

    async def _insert_results(self, rows: list[ResultRecord], *, strict: bool) -> None:
        sql = f"""
            INSERT INTO {self._s}.results AS t (run_id, agent, user_id, agent_version,
                session_id, status, started_at, finished_at, duration_s, ts, output,
                output_json, blob)
            SELECT u.run_id, u.agent, u.user_id, u.agent_version, u.session_id, u.status,
                   u.started_at, u.finished_at, u.duration_s,
                   COALESCE(u.finished_at, u.started_at, now()), u.output::jsonb,
                   u.output_json, u.blob
              FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                          $6::text[], $7::timestamptz[], $8::timestamptz[], $9::float8[],
                          $10::text[], $11::text[], $12::bytea[])
                   AS u(run_id, agent, user_id, agent_version, session_id, status,
                        started_at, finished_at, duration_s, output, output_json, blob)
            ON CONFLICT (run_id, agent) DO UPDATE SET
                agent_version = EXCLUDED.agent_version, session_id = EXCLUDED.session_id,
                status = EXCLUDED.status, started_at = EXCLUDED.started_at,
                finished_at = EXCLUDED.finished_at, duration_s = EXCLUDED.duration_s,
                ts = EXCLUDED.ts, output = EXCLUDED.output,
                output_json = EXCLUDED.output_json, blob = EXCLUDED.blob, saved_at = now()
            WHERE t.user_id = EXCLUDED.user_id"""
        args = (
            [r.run_id for r in rows],
            [r.agent for r in rows],
            [r.user_id for r in rows],
            [r.agent_version for r in rows],
            [r.session_id for r in rows],
            [r.status.value for r in rows],
            [r.started_at for r in rows],
            [r.finished_at for r in rows],
            [r.duration_s for r in rows],
            [jsonb_text(r.output_json, strict=strict) for r in rows],
            [r.output_json for r in rows],
            [r.blob for r in rows],
        )
        await self._run("save_results", lambda c: c.execute(sql, *args))

    # --- reads ---------------------------------------------------------------------------

    async def _get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        async def query(conn: Any) -> StoredRun | None:
            row = await conn.fetchrow(
                f"SELECT {_RUN_COLS} FROM {self._s}.runs WHERE run_id = $1 AND user_id = $2",
                run_id,
                user_id,
            )
            if row is None:
                return None
            results = await conn.fetch(
                f"SELECT {_RESULT_COLS} FROM {self._s}.results"
                " WHERE run_id = $1 AND user_id = $2 ORDER BY ts, agent",
                run_id,
                user_id,
            )
            return StoredRun(run=_run_record(row), results=[_result_record(r) for r in results])

        return await self._run("get_run", query)

    async def _list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[RunRecord]:
        where: list[str] = ["user_id = $1"]
        args: list[Any] = [user_id]
        if status is not None:
            args.append(RunStatus(status).value)
            where.append(f"status = ${len(args)}")
        _time_filters("submitted_at", since, until, where, args)
        args.append(limit)
        sql = (
            f"SELECT {_RUN_COLS} FROM {self._s}.runs WHERE {' AND '.join(where)}"
            f" ORDER BY submitted_at DESC, run_id DESC LIMIT ${len(args)}"
        )
        rows = await self._run("list_runs", lambda c: c.fetch(sql, *args))
        return [_run_record(r) for r in rows]

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
        where: list[str] = ["user_id = $1"]
        args: list[Any] = [user_id]
        for column, value in (("run_id", run_id), ("agent", agent)):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        if status is not None:
            args.append(AgentStatus(status).value)
            where.append(f"status = ${len(args)}")
        _time_filters("ts", since, until, where, args)
        args.append(limit)
        sql = (
            f"SELECT {_RESULT_COLS} FROM {self._s}.results WHERE {' AND '.join(where)}"
            f" ORDER BY ts DESC, run_id DESC, agent LIMIT ${len(args)}"
        )
        rows = await self._run("list_results", lambda c: c.fetch(sql, *args))
        return [_result_record(r) for r in rows]

    # --- plumbing ------------------------------------------------------------------------

    async def _run(self, op: str, fn: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run ``fn(connection)``; retry once on a dropped connection; errors → StoreError."""
        if self._pool is None:
            raise StoreError(
                f"PostgresStore.{op}: the store is not started (or closed); "
                "call await store.start() first"
            )
        asyncpg = self._asyncpg
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self.connect_timeout + self.statement_timeout + 1):
                    async with self._pool.acquire(timeout=self.connect_timeout) as conn:
                        return await fn(conn)
            except (asyncpg.exceptions.ConnectionDoesNotExistError, ConnectionResetError) as exc:
                if attempt == 2:
                    raise self._error(op, exc) from exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise self._error(op, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, op: str, exc: BaseException) -> StoreError:
        if isinstance(exc, TimeoutError) and not str(exc):
            reason = "timed out"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return StoreError(
            f"PostgresStore.{op} on {self._where} failed ({reason}); writes are spooled to "
            "the outbox when one is configured; check that PostgreSQL is reachable"
        )

    def __repr__(self) -> str:
        return f"PostgresStore({self._where}, schema={self.schema!r}, owner={self.owner!r})"


_RUN_COLS = (
    "run_id, user_id, session_id, pipeline, status, submitted_at, started_at, finished_at,"
    " error::text AS error, owner"
)
_RESULT_COLS = (
    "run_id, user_id, agent, agent_version, session_id, status, started_at, finished_at,"
    " duration_s, output_json, blob"
)


def _run_record(row: Any) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        user_id=row["user_id"],
        session_id=row["session_id"],
        pipeline=list(row["pipeline"]),
        status=RunStatus(row["status"]),
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=None if row["error"] is None else json.loads(row["error"]),
        owner=row["owner"],
    )


def _result_record(row: Any) -> ResultRecord:
    return ResultRecord(
        run_id=row["run_id"],
        user_id=row["user_id"],
        agent=row["agent"],
        agent_version=row["agent_version"],
        session_id=row["session_id"],
        status=AgentStatus(row["status"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_s=row["duration_s"],
        output_json=row["output_json"],
        blob=bytes(row["blob"]),
    )


def _time_filters(
    column: str,
    since: datetime | None,
    until: datetime | None,
    where: list[str],
    args: list[Any],
) -> None:
    if since is not None:
        args.append(since)
        where.append(f"{column} >= ${len(args)}")
    if until is not None:
        args.append(until)
        where.append(f"{column} < ${len(args)}")
