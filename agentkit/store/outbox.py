"""Nothing lost when the store is down: a local durable outbox and a store wrapper using it.

:class:`OutboxStore` wraps any :class:`~agentkit.store.base.Store`. A write goes to the inner
store; if that raises (a ``StoreError``, a connection error, a timeout — anything but a
:class:`~agentkit.errors.UsageError`, which means the call itself is wrong), the records are
appended to an :class:`Outbox` (a local SQLite file) and the write still counts as durable.
A background task then probes the inner store with exponential backoff and replays the outbox
**in order**; stores are idempotent by ``run_id`` and ``(run_id, agent)``, so a replay that is
interrupted and repeated never duplicates anything. While the outbox is not empty, new writes
go to the outbox too, so a run's records always reach the store in the order they were made.

Reads go to the inner store and are merged with the records of that user still waiting in the
outbox, so a caller sees its own acknowledged writes even while the store is catching up. When
the inner store cannot be read, reads raise :class:`~agentkit.errors.StoreError` rather than
answer from the outbox alone (which would turn "unavailable" into "not found").

The outbox file uses WAL with ``synchronous=FULL`` by default: while records sit in it, it
holds their only copy, so each group commit is fsynced and survives power loss, not only a
process crash. The cost (one fsync per group of concurrent writes) is paid only while the
store is failing.

On start, runs that the outbox holds as queued or running (their process stopped before the
store came back) get an ``interrupted`` record appended behind them, matching what the inner
store's own recovery does for runs it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentkit.errors import ConfigurationError, StoreError, UsageError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store._sqlite_writer import SQLiteWriter
from agentkit.store.base import BaseStore, Store
from agentkit.store.records import ResultRecord, RunRecord, StoredRun

__all__ = ["Outbox", "OutboxStore"]

log = logging.getLogger("agentkit.store.outbox")

Record = RunRecord | ResultRecord

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT NOT NULL CHECK (kind IN ('run', 'result')),
        user_id    TEXT NOT NULL,
        run_id     TEXT NOT NULL,
        body       TEXT NOT NULL,
        blob       BLOB,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_user ON outbox (user_id, seq)",
    "CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT OR IGNORE INTO outbox_meta (key, value) VALUES ('format', '1')",
)
_COLUMNS = "seq, kind, body, blob, created_at"


def _encode(rec: Record, now: str) -> tuple[Any, ...]:
    if isinstance(rec, ResultRecord):
        body = rec.model_dump_json(exclude={"blob"})
        return ("result", rec.user_id, rec.run_id, body, rec.blob, now)
    return ("run", rec.user_id, rec.run_id, rec.model_dump_json(), None, now)


def _decode(row: tuple[Any, ...]) -> tuple[int, Record, datetime]:
    seq, kind, body, blob, created = row
    rec: Record
    if kind == "result":
        data = json.loads(body)
        data["blob"] = bytes(blob)
        rec = ResultRecord.model_validate(data)
    else:
        rec = RunRecord.model_validate_json(body)
    return seq, rec, datetime.fromisoformat(created)


class Outbox:
    """An append-only local queue of store records in a SQLite file.

    Args:
        path: the outbox file (parent folders are created).
        synchronous: ``"FULL"`` (default, see the module docs) or ``"NORMAL"``.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        sync = str(synchronous).upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError(
                f"outbox synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}"
            )
        if str(path) == ":memory:":
            raise ConfigurationError("the outbox must be a file: it exists to survive restarts")
        self.path = Path(path)
        self.synchronous = sync
        self._writer = SQLiteWriter(self._connect, name=f"Outbox({self.path})")
        self._depth = 0
        self._opened = False

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, depth={self._depth})"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=1.0
        )
        # One process per outbox file: the exclusive lock, taken by the first transaction and
        # held until close, makes a second process fail to open it instead of replaying (and
        # "interrupting") the first one's records.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    @property
    def depth(self) -> int:
        """Records waiting in the outbox."""
        return self._depth

    async def open(self) -> None:
        """Open (creating if needed) the file and count what is waiting in it.

        Raises:
            StoreError: the file cannot be opened, or another outbox holds it.
        """
        if self._opened:
            return
        await self._writer.start()

        def setup(conn: sqlite3.Connection) -> int:
            for stmt in _SCHEMA:
                conn.execute(stmt)
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

        self._depth = await self._writer.run(setup, size=0)
        self._opened = True

    async def append(self, records: Sequence[Record]) -> None:
        """Durably append ``records`` (one group commit with concurrent appends)."""
        now = datetime.now(UTC).isoformat()
        rows = [_encode(r, now) for r in records]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO outbox (kind, user_id, run_id, body, blob, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._writer.run(write, size=len(rows))
        self._depth += len(rows)

    async def peek(self, limit: int) -> list[tuple[int, Record, datetime]]:
        """The oldest ``limit`` records as ``(seq, record, appended_at)``, oldest first."""

        def read(conn: sqlite3.Connection) -> list[tuple[int, Record, datetime]]:
            cur = conn.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY seq LIMIT ?", (limit,))
            return [_decode(r) for r in cur]

        return await self._writer.run(read, size=0)

    async def remove_through(self, seq: int) -> None:
        """Delete every record up to and including ``seq`` (after it reached the store)."""

        def delete(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM outbox WHERE seq <= ?", (seq,))
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])

        self._depth = await self._writer.run(delete, size=0)

    async def pending_for(
        self, user_id: str, run_id: str | None = None
    ) -> list[tuple[int, Record, datetime]]:
        """This user's waiting records (optionally of one run), oldest first."""

        def read(conn: sqlite3.Connection) -> list[tuple[int, Record, datetime]]:
            if run_id is None:
                cur = conn.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE user_id = ? ORDER BY seq", (user_id,)
                )
            else:
                cur = conn.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE user_id = ? AND run_id = ? ORDER BY seq",
                    (user_id, run_id),
                )
            return [_decode(r) for r in cur]

        return await self._writer.run(read, size=0)

    async def interrupt_unfinished_runs(self) -> int:
        """Append an ``interrupted`` record for each run whose last outbox record is queued or
        running (its process is gone); return how many."""

        def read(conn: sqlite3.Connection) -> list[RunRecord]:
            latest: dict[str, RunRecord] = {}
            cur = conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE kind = 'run' ORDER BY seq")
            for row in cur:
                _, rec, _ = _decode(row)
                assert isinstance(rec, RunRecord)
                latest[rec.run_id] = rec
            return [r for r in latest.values() if not r.status.is_terminal]

        unfinished = await self._writer.run(read, size=0)
        if unfinished:
            now = datetime.now(UTC)
            await self.append(
                [
                    r.model_copy(
                        update={
                            "status": RunStatus.INTERRUPTED,
                            "finished_at": now,
                            "error": r.error
                            or {
                                "type": "Interrupted",
                                "message": "the process running this run stopped before "
                                "it finished",
                            },
                        }
                    )
                    for r in unfinished
                ]
            )
        return len(unfinished)

    async def close(self) -> None:
        """Close the file; waiting records stay in it for the next process."""
        await self._writer.close()


class OutboxStore(BaseStore):
    """A store that never loses an acknowledged write: the inner store, or else the outbox.

    Args:
        inner: the real store (any :class:`~agentkit.store.base.Store`).
        outbox: an :class:`Outbox`, or a path for one.
        write_timeout: seconds an inner write may take before it is spooled instead.
        probe_initial: first delay (s) before probing a failed store again.
        probe_max: cap (s) of the exponential backoff between probes.
        replay_batch: records replayed per step.
        on_depth: called with the new outbox depth whenever it changes (telemetry hook,
            e.g. ``telemetry.set_outbox_depth``).

    Example:
        >>> store = OutboxStore(store_from_url("postgresql://…"), "outbox.db")  # doctest: +SKIP
    """

    def __init__(
        self,
        inner: Store,
        outbox: Outbox | str | Path,
        *,
        write_timeout: float | None = 10.0,
        probe_initial: float = 0.2,
        probe_max: float = 30.0,
        replay_batch: int = 500,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(inner, Store):
            raise ConfigurationError(f"inner must be a Store, got {type(inner).__name__}")
        if probe_initial <= 0 or probe_max < probe_initial:
            raise ConfigurationError("need 0 < probe_initial <= probe_max")
        if replay_batch < 1:
            raise ConfigurationError("replay_batch must be >= 1")
        self.inner = inner
        self.outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
        self.write_timeout = write_timeout
        self.probe_initial = probe_initial
        self.probe_max = probe_max
        self.replay_batch = replay_batch
        self.on_depth = on_depth
        #: records spooled to the outbox / replayed from it since start
        self.spooled = 0
        self.replayed = 0
        #: runs the outbox held unfinished at start and that were marked interrupted
        self.interrupted_on_start = 0
        self._inner_started = False
        self._healthy = False
        self._appending = 0
        self._replay_task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._last_depth = -1

    def __repr__(self) -> str:
        return f"OutboxStore({self.inner!r}, depth={self.depth}, healthy={self._healthy})"

    @property
    def depth(self) -> int:
        """Records waiting in the outbox for the inner store."""
        return self.outbox.depth

    @property
    def healthy(self) -> bool:
        """True when writes go straight to the inner store."""
        return self._healthy

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until the outbox is empty and the store is healthy; False on timeout."""
        if self._healthy and self.depth == 0:
            return True
        self._kick()
        try:
            async with asyncio.timeout(timeout):
                while not (self._healthy and self.depth == 0):
                    self._drained.clear()
                    await self._drained.wait()
        except TimeoutError:
            return False
        return True

    # --- BaseStore hooks ----------------------------------------------------------------------

    async def _start(self) -> None:
        await self.outbox.open()
        self.interrupted_on_start = await self.outbox.interrupt_unfinished_runs()
        self._report_depth()
        try:
            await self.inner.start()
            self._inner_started = True
        except UsageError:
            raise
        except Exception as exc:
            log.warning("store unavailable at start (%s); writes go to the outbox", exc)
        if self._inner_started and self.depth == 0:
            self._healthy = True
        else:
            if self.depth:
                log.info("outbox holds %d record(s) from before; replaying", self.depth)
            self._kick()

    async def _save_run(self, run: RunRecord) -> None:
        if self._direct():
            try:
                async with asyncio.timeout(self.write_timeout):
                    await self.inner.save_run(run)
                self._healthy = self._direct()  # unless others spooled meanwhile
                return
            except UsageError:
                raise
            except Exception as exc:
                self._degrade(exc)
        await self._spool([run])

    async def _save_results(self, records: list[ResultRecord]) -> None:
        if self._direct():
            try:
                async with asyncio.timeout(self.write_timeout):
                    await self.inner.save_results(records)
                self._healthy = self._direct()  # unless others spooled meanwhile
                return
            except UsageError:
                raise
            except Exception as exc:
                self._degrade(exc)
        await self._spool(records)

    async def _get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        stored = await self.inner.get_run(user_id, run_id)
        if self.depth == 0:
            return stored
        pending = await self.outbox.pending_for(user_id, run_id)
        if not pending:
            return stored
        run = stored.run if stored is not None else None
        results = {r.agent: r for r in stored.results} if stored is not None else {}
        for _, rec, _ in pending:
            if isinstance(rec, RunRecord):
                run = rec
            else:
                results[rec.agent] = rec
        if run is None:
            return None
        return StoredRun(run=run, results=list(results.values()))

    async def _list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[RunRecord]:
        pending: dict[str, RunRecord] = {}
        if self.depth:
            for _, rec, _ in await self.outbox.pending_for(user_id):
                if isinstance(rec, RunRecord):
                    pending[rec.run_id] = rec
        stored = await self.inner.list_runs(
            user_id, status=status, since=since, until=until, limit=limit + len(pending)
        )
        if not pending:
            return stored
        merged = {r.run_id: r for r in stored if r.run_id not in pending}
        for rec in pending.values():
            if (status is None or rec.status == status) and _in_range(
                rec.submitted_at, since, until
            ):
                merged[rec.run_id] = rec
        return sorted(merged.values(), key=lambda r: _utc(r.submitted_at), reverse=True)[:limit]

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
        pending: dict[tuple[str, str], tuple[ResultRecord, datetime]] = {}
        if self.depth:
            for _, rec, appended in await self.outbox.pending_for(user_id, run_id):
                if isinstance(rec, ResultRecord):
                    pending[rec.run_id, rec.agent] = (rec, appended)
        stored = await self.inner.list_results(
            user_id,
            run_id=run_id,
            agent=agent,
            status=status,
            since=since,
            until=until,
            limit=limit + len(pending),
        )
        if not pending:
            return stored
        merged: dict[tuple[str, str], tuple[ResultRecord, datetime]] = {
            (r.run_id, r.agent): (r, _result_time(r, None))
            for r in stored
            if (r.run_id, r.agent) not in pending
        }
        for key, (rec, appended) in pending.items():
            at = _result_time(rec, appended)
            if (
                (agent is None or rec.agent == agent)
                and (status is None or rec.status == status)
                and _in_range(at, since, until)
            ):
                merged[key] = (rec, at)
        ordered = sorted(merged.values(), key=lambda pair: pair[1], reverse=True)
        return [rec for rec, _ in ordered[:limit]]

    async def _aclose(self) -> None:
        task, self._replay_task = self._replay_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._healthy = False
        try:
            await self.outbox.close()
        finally:
            await self.inner.aclose()

    # --- spooling and replay ------------------------------------------------------------------

    def _direct(self) -> bool:
        """Write straight to the inner store? Only when nothing waits (or is being appended)
        in the outbox: then a direct write cannot overtake an older record."""
        return self._inner_started and self.outbox.depth == 0 and self._appending == 0

    def _degrade(self, exc: BaseException) -> None:
        if self._healthy:
            log.warning(
                "store write failed (%s: %s); spooling to the outbox until it recovers",
                type(exc).__name__,
                exc,
            )
        self._healthy = False

    async def _spool(self, records: Sequence[Record]) -> None:
        if self._closed:
            raise StoreError("this OutboxStore is closed; records were not saved")
        self._appending += 1
        try:
            await self.outbox.append(records)
        except Exception as exc:
            raise StoreError(
                f"the store failed and the outbox at {self.outbox.path} could not take the "
                f"records either ({exc}); nothing was saved: check disk space and permissions"
            ) from exc
        finally:
            self._appending -= 1
        self.spooled += len(records)
        self._report_depth()
        self._kick()

    def _kick(self) -> None:
        if self._closed or (self._replay_task is not None and not self._replay_task.done()):
            return
        self._replay_task = asyncio.get_running_loop().create_task(
            self._replay(), name="agentkit-outbox-replay"
        )

    async def _replay(self) -> None:
        delay = self.probe_initial
        while not self._closed:
            try:
                if not self._inner_started:
                    await self.inner.start()
                    self._inner_started = True
                batch = await self.outbox.peek(self.replay_batch)
                if not batch:
                    if self._appending == 0:
                        self._healthy = True
                        log.info("outbox drained; writes go to the store again")
                        self._drained.set()
                    return  # a spool still in flight kicks a new replay when it lands
                await self._write_batch([rec for _, rec, _ in batch])
                await self.outbox.remove_through(batch[-1][0])
                self.replayed += len(batch)
                self._report_depth()
                delay = self.probe_initial
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "outbox replay failed (%s: %s); %d record(s) waiting, retrying in %.1fs",
                    type(exc).__name__,
                    exc,
                    self.depth,
                    delay,
                )
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.probe_max)

    async def _write_batch(self, records: list[Record]) -> None:
        """Replay a batch: the last record per key wins (writes are full upserts)."""
        runs: dict[str, RunRecord] = {}
        results: dict[tuple[str, str], ResultRecord] = {}
        for rec in records:
            if isinstance(rec, RunRecord):
                runs.pop(rec.run_id, None)
                runs[rec.run_id] = rec
            else:
                results.pop((rec.run_id, rec.agent), None)
                results[rec.run_id, rec.agent] = rec
        async with asyncio.timeout(self.write_timeout):
            for run in runs.values():
                await self.inner.save_run(run)
            if results:
                await self.inner.save_results(list(results.values()))

    def _report_depth(self) -> None:
        depth = self.depth
        if depth != self._last_depth:
            self._last_depth = depth
            if self.on_depth is not None:
                try:
                    self.on_depth(depth)
                except Exception:
                    log.exception("on_depth callback failed")


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _in_range(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    at = _utc(at)
    return (since is None or at >= _utc(since)) and (until is None or at < _utc(until))


def _result_time(rec: ResultRecord, appended: datetime | None) -> datetime:
    at = rec.finished_at or rec.started_at or appended
    return _utc(at) if at is not None else datetime.min.replace(tzinfo=UTC)
