"""A dedicated SQLite writer thread that commits concurrent writes together (group commit).

Callers on any event loop submit an operation (a function of the connection) and await it.
The thread takes every operation waiting in its queue, runs them in ONE transaction, commits,
and only then resolves the callers' futures: "acknowledged means persisted". While a commit is
in progress new operations pile up and form the next group, so the group size grows with the
load without any timer. Futures are settled with one ``call_soon_threadsafe`` per event loop
per group, not one per caller.

Rows for a :class:`BulkStatement` (an ``INSERT … VALUES (…)`` upsert) from all operations of a
group are written with multi-row ``VALUES`` statements: one ``sqlite3_step`` per few hundred
rows instead of one per row. That matters beyond SQLite's own cost: the sqlite3 module releases
the GIL around every step, and each re-acquisition competes with the busy event loop thread.

**Inline mode** (``inline=True``): no thread. Operations submitted during one turn of the event
loop are committed together at the end of that turn, on the loop's thread. Use it only when a
commit does not wait on the disk (WAL with ``synchronous=NORMAL`` or ``OFF``: a commit appends
to the WAL file in the OS page cache, no fsync): then a group costs tens of microseconds of
CPU, less than handing it to a thread — with a thread, every time the event loop releases the
GIL (hashing, I/O) the writer takes it, and the two threads trade the GIL many times per group.
A burst of operations is committed in chunks of at most ``inline_max_rows`` rows, one per loop
turn, so the loop is never held for long and the callers of the first chunk resume while the
rest waits its turn. A single operation larger than that (one big ``save_results`` call), or a
backlog of more than ``max_group`` rows, is committed in a worker thread instead; later groups
wait for it, keeping the order. Checkpoints (which fsync)
are kept off the loop: automatic checkpoints must be disabled on the
connection, and :meth:`SQLiteWriter.checkpoint_every` rows the writer runs a passive checkpoint
in a worker thread on a connection of its own.

If a group's transaction fails because of one operation, the thread retries each operation in
a transaction of its own, so one failing operation fails only its own caller; when the database
itself fails (locked, full, read-only), the whole group fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from agentkit.errors import StoreError

__all__ = ["BulkStatement", "SQLiteWriter"]

T = TypeVar("T")
log = logging.getLogger("agentkit.store.sqlite")

_STOP: Final = object()


class BulkStatement:
    """An ``INSERT … VALUES (?, …) [ON CONFLICT …]`` statement run for many rows at once.

    Args:
        sql: the statement for ONE row; its single ``VALUES (…)`` group is repeated.
        max_rows: most rows per executed statement.
        coalesce: drops rows that later rows of the same transaction make moot (it must
            leave the table as writing every row would); None: every row is written.
    """

    _CHUNKS = (512, 64, 8, 1)

    def __init__(
        self,
        sql: str,
        *,
        max_rows: int = 512,
        coalesce: Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]] | None = None,
    ) -> None:
        head, sep, rest = sql.partition("VALUES")
        end = _group_end(rest)
        if not sep or end < 0:
            raise ValueError("BulkStatement needs an INSERT … VALUES (…) statement")
        group, tail = rest[: end + 1], rest[end + 1 :]
        self.ncols = group.count("?")
        self._head = head + "VALUES "
        self._group = group.strip()
        self._tail = tail
        self.chunks = tuple(c for c in self._CHUNKS if c <= max_rows) or (1,)
        self.coalesce = coalesce
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        """The statement for exactly ``rows`` rows (cached)."""
        text = self._sql.get(rows)
        if text is None:
            text = self._head + ", ".join([self._group] * rows) + self._tail
            self._sql[rows] = text
        return text

    def execute(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Write ``rows`` in order, in as few statements as the chunk sizes allow."""
        i, n = 0, len(rows)
        for chunk in self.chunks:
            while n - i >= chunk:
                conn.execute(self.sql(chunk), list(_flatten(rows[i : i + chunk])))
                i += chunk


_flatten = itertools.chain.from_iterable


def _group_end(text: str) -> int:
    """Index of the parenthesis closing the first one in ``text`` (-1: none)."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
            if depth < 0:
                return -1
    return -1


class _Op:
    __slots__ = ("bulk", "fn", "future", "loop", "row", "rows", "size")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any] | None,
        size: int,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any] | Callable[[BaseException], None] | None,
        bulk: BulkStatement | None = None,
        rows: Sequence[tuple[Any, ...]] | None = None,
        row: tuple[Any, ...] | None = None,
    ) -> None:
        self.fn = fn
        self.size = size
        self.loop = loop
        #: the caller's future, or (:meth:`SQLiteWriter.queue_rows`) its error callback
        self.future = future
        self.bulk = bulk
        self.rows = rows
        #: the one row of :meth:`SQLiteWriter.queue_row` (``rows`` is None then)
        self.row = row


def _settle(items: list[tuple[Any, Any, BaseException | None]]) -> None:
    for fut, result, exc in items:
        if not isinstance(fut, asyncio.Future):
            if exc is not None and fut is not None:  # queue_rows: only failures are reported
                try:
                    fut(exc)
                except Exception:
                    log.exception("the error callback of a queued write raised")
            continue
        if fut.done():  # the caller was cancelled; its write still happened (or failed)
            continue
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)


class SQLiteWriter:
    """One thread, one connection, group commits.

    Args:
        connect: opens the connection; called in the writer thread. It must be opened with
            ``isolation_level=None`` (the writer issues ``BEGIN IMMEDIATE``/``COMMIT``).
        name: label for the thread and for error messages.
        max_group: most records (sum of operation sizes) committed in one transaction.
        inline: commit on the event loop's thread at the end of each loop turn instead of in a
            writer thread (see the module docs).
        checkpoint: in inline mode, opens a second connection and checkpoints the WAL on it
            (called in a worker thread every ``checkpoint_every`` rows); None: no checkpoints.
        checkpoint_every: rows written between two checkpoints in inline mode.
        inline_max_rows: in inline mode, most rows committed on the loop's thread per loop
            turn; a larger operation is committed in a worker thread.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        name: str,
        max_group: int = 4096,
        inline: bool = False,
        checkpoint: Callable[[], None] | None = None,
        checkpoint_every: int = 20_000,
        inline_max_rows: int = 512,
    ) -> None:
        self._connect = connect
        self.inline = inline
        self._checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self._rows_since_checkpoint = 0
        self._checkpointing: asyncio.Future[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._flush_scheduled = False
        self._inline_lock = threading.Lock()
        self.inline_max_rows = inline_max_rows
        self._offloaded: asyncio.Future[None] | None = None
        self.name = name
        self.max_group = max_group
        # Submitters append to a deque and wake the thread only when it sleeps: waking a
        # thread costs a futex syscall and a GIL hand-off, which under load cost more than
        # the write itself when paid per call.
        self._pending: deque[Any] = deque()
        #: rows of the pending operations (inline mode)
        self._pending_rows = 0
        self._wake = threading.Event()
        self._sleeping = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        #: transactions committed and operations they carried (for tests and benchmarks)
        self.commits = 0
        self.operations = 0
        #: CPU seconds the writer thread spent on groups (for benchmarks)
        self.cpu_seconds = 0.0

    async def start(self) -> None:
        """Start the thread and open the connection; after a failure it may be called again.

        Raises:
            StoreError: the database could not be opened.
        """
        if self._thread is not None or self._conn is not None:
            return
        if self.inline:
            try:
                self._conn = await asyncio.to_thread(self._connect)
            except Exception as exc:
                raise StoreError(
                    f"{self.name}: cannot open the database: {exc}; check the path exists "
                    "and is writable"
                ) from exc
            return
        self._thread = threading.Thread(
            target=self._main, name=f"agentkit-{self.name}", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        error, self._start_error = self._start_error, None
        if error is not None:
            self._thread = None  # start() may be called again once the cause is fixed
            self._ready.clear()
            raise StoreError(
                f"{self.name}: cannot open the database: {error}; check the path exists and "
                "is writable"
            ) from error

    async def run(self, fn: Callable[[sqlite3.Connection], T], size: int = 1) -> T:
        """Run ``fn(conn)`` inside the next group transaction; return once it is committed.

        Raises:
            StoreError: the writer is closed, or the transaction failed.
        """
        if self._closed or (self._thread is None and self._conn is None):
            raise StoreError(f"{self.name} is closed or not started; call start() first")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._submit(_Op(fn, size, loop, fut))
        return await fut

    async def write_rows(self, stmt: BulkStatement, rows: list[tuple[Any, ...]]) -> None:
        """Write ``rows`` with ``stmt`` in the next group transaction; return once committed.

        Rows of all operations of a group are merged per statement, in submission order.

        Raises:
            StoreError: the writer is closed, or the transaction failed.
        """
        await self.submit_rows(stmt, rows)

    def submit_rows(self, stmt: BulkStatement, rows: list[tuple[Any, ...]]) -> asyncio.Future[None]:
        """Queue ``rows`` for the next group transaction without waiting for it.

        Returns:
            A future of the running event loop, resolved once the rows are committed (or
            failed with :class:`~agentkit.errors.StoreError`). Operations commit in
            submission order, and futures of one loop are resolved in that order: when a
            later operation's future is resolved, every earlier one's already is.

        Raises:
            StoreError: the writer is closed or not started.
        """
        if self._closed or (self._thread is None and self._conn is None):
            raise StoreError(f"{self.name} is closed or not started; call start() first")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._submit(_Op(None, len(rows), loop, fut, stmt, rows))
        return fut

    def queue_rows(
        self,
        stmt: BulkStatement,
        rows: Sequence[tuple[Any, ...]],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """:meth:`submit_rows` without a future: a failure is reported by calling
        ``on_error(exc)`` on the event loop instead, before any later operation's future
        is resolved (operations are settled in submission order).

        Raises:
            StoreError: the writer is closed or not started.
        """
        if self._closed or (self._thread is None and self._conn is None):
            raise StoreError(f"{self.name} is closed or not started; call start() first")
        self._submit(_Op(None, len(rows), asyncio.get_running_loop(), on_error, stmt, rows))

    def queue_row(
        self,
        stmt: BulkStatement,
        row: tuple[Any, ...],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """:meth:`queue_rows` of one row (the engine's path: one write per stage result).

        Raises:
            StoreError: the writer is closed or not started.
        """
        if self._closed or (self._thread is None and self._conn is None):
            raise StoreError(f"{self.name} is closed or not started; call start() first")
        op = _Op(None, 1, asyncio.get_running_loop(), on_error, stmt, None, row)
        if not self.inline:
            self._submit(op)
            return
        self._pending.append(op)  # _submit's inline branch
        self._pending_rows += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            op.loop.call_soon(self._flush)

    async def close(self) -> None:
        """Commit what is queued, then stop the thread and close the connection."""
        if self._closed:
            return
        self._closed = True
        if self._conn is not None:
            while True:
                offloaded = self._offloaded
                if offloaded is not None:
                    with contextlib.suppress(Exception):
                        await offloaded
                    self._offloaded = None
                    continue
                if not self._pending:
                    break
                self._flush()
            if self._checkpointing is not None:
                with contextlib.suppress(Exception):
                    await self._checkpointing
            conn, self._conn = self._conn, None
            with self._inline_lock:
                conn.close()
            return
        thread = self._thread
        if thread is None:
            return
        self._submit(_STOP)
        await asyncio.to_thread(thread.join)

    def _submit(self, op: Any) -> None:
        if self.inline:
            self._pending.append(op)
            self._pending_rows += op.size
            if not self._flush_scheduled:
                self._flush_scheduled = True
                op.loop.call_soon(self._flush)
            return
        # The append happens before the check of _sleeping, and the thread sets _sleeping
        # before it re-checks _pending, so a wake-up is never lost (see _next).
        self._pending.append(op)
        if self._sleeping:
            self._sleeping = False
            self._wake.set()

    # --- inline mode ----------------------------------------------------------------------------

    def _flush(self) -> None:
        """Commit what is pending (inline mode): a chunk of at most ``inline_max_rows`` rows
        on the loop's thread, the rest in later loop turns; an operation larger than that, or
        a backlog over ``max_group`` rows, in a worker thread (up to ``max_group`` rows)."""
        self._flush_scheduled = False
        pending = self._pending
        conn = self._conn
        if conn is None or self._offloaded is not None or not pending:
            return  # (an offloaded group's end flushes what piled up meanwhile)
        head = pending.popleft()
        group = [head]
        size = head.size
        if size > self.inline_max_rows or self._pending_rows > self.max_group:
            while size < self.max_group and pending:
                op = pending.popleft()
                group.append(op)
                size += op.size
            self._pending_rows -= size
            task = asyncio.ensure_future(asyncio.to_thread(self._commit_timed, conn, group))
            task.add_done_callback(self._offload_done)
            self._offloaded = task
        else:
            cap = min(self.inline_max_rows, self.max_group)
            while pending and size + pending[0].size <= cap:
                op = pending.popleft()
                group.append(op)
                size += op.size
            self._pending_rows -= size
            self._commit_timed(conn, group)
            if pending and not self._flush_scheduled:
                # the rest in the next turn: the loop is never held for more than one chunk
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        self._rows_since_checkpoint += size
        if (
            self._checkpoint is not None
            and self._rows_since_checkpoint >= self.checkpoint_every
            and (self._checkpointing is None or self._checkpointing.done())
        ):
            self._rows_since_checkpoint = 0
            self._checkpointing = asyncio.ensure_future(asyncio.to_thread(self._run_checkpoint))

    def _commit_timed(self, conn: sqlite3.Connection, group: list[_Op]) -> None:
        with self._inline_lock:
            cpu = time.thread_time()
            self._commit(conn, group, retry_alone=len(group) > 1)
            self.cpu_seconds += time.thread_time() - cpu

    def _offload_done(self, task: asyncio.Future[None]) -> None:
        self._offloaded = None
        if not task.cancelled() and task.exception() is not None:  # _commit delivers errors
            log.error("%s: offloaded commit crashed: %s", self.name, task.exception())
        if self._pending and not self._flush_scheduled and self._conn is not None:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _run_checkpoint(self) -> None:
        assert self._checkpoint is not None
        try:
            self._checkpoint()
        except Exception as exc:  # the next one retries; the WAL only grows meanwhile
            log.warning("%s: WAL checkpoint failed: %s", self.name, exc)

    # --- the thread ---------------------------------------------------------------------------

    def _next(self) -> Any:
        """Block until an operation is pending; return it (the thread's side of _submit)."""
        pending = self._pending
        while not pending:
            self._sleeping = True
            if pending:
                self._sleeping = False
                break
            self._wake.wait()
            self._wake.clear()
        return pending.popleft()

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        pending = self._pending
        try:
            while True:
                op = self._next()
                if op is _STOP:
                    break
                group = [op]
                size = op.size
                stop = False
                while size < self.max_group and pending:
                    op = pending.popleft()
                    if op is _STOP:
                        stop = True
                        break
                    group.append(op)
                    size += op.size
                cpu = time.thread_time()
                self._commit(conn, group, retry_alone=len(group) > 1)
                self.cpu_seconds += time.thread_time() - cpu
                if stop:
                    break
        finally:
            self._fail_queued()
            conn.close()

    def _commit(self, conn: sqlite3.Connection, group: list[_Op], *, retry_alone: bool) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = self._apply(conn, group)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            # A failure of the database itself (locked, busy, full, read-only, I/O) would fail every
            # write alike: fail the group at once instead of waiting out each one alone.
            if retry_alone and not _database_failure(exc):
                for op in group:
                    self._commit(conn, [op], retry_alone=False)
                return
            log.warning("%s: transaction failed: %s", self.name, exc)
            err = exc if isinstance(exc, StoreError) else _store_error(self.name, exc)
            self._deliver(group, [None], err)
            return
        self.commits += 1
        self.operations += len(group)
        self._deliver(group, results, None)

    @staticmethod
    def _apply(conn: sqlite3.Connection, group: list[_Op]) -> list[Any]:
        results: list[Any] = []
        bulk: dict[BulkStatement, list[tuple[Any, ...]]] = {}
        for op in group:
            if op.bulk is not None:
                rows = bulk.get(op.bulk)
                if rows is None:
                    rows = bulk[op.bulk] = []
                if op.row is not None:
                    rows.append(op.row)
                else:
                    assert op.rows is not None
                    rows.extend(op.rows)
                results.append(None)
            else:
                assert op.fn is not None
                results.append(op.fn(conn))
        for stmt, rows in bulk.items():
            if stmt.coalesce is not None:
                rows = stmt.coalesce(rows)
            stmt.execute(conn, rows)
        return results

    def _deliver(self, group: list[_Op], results: list[Any], exc: BaseException | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        future_type = asyncio.Future
        for i, op in enumerate(group):
            fut = op.future
            if exc is None:
                if not isinstance(fut, future_type):
                    continue  # queue_rows: only failures are reported
                result = results[i]
            else:
                result = None
            items = by_loop.get(op.loop)
            if items is None:
                items = by_loop[op.loop] = []
            items.append((fut, result, exc))
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, items in by_loop.items():
            if loop is here:  # inline mode, on the loop's own thread: resolve now
                _settle(items)
                continue
            # a closed event loop raises RuntimeError: nobody is waiting any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, items)

    def _fail_queued(self) -> None:
        leftover: list[_Op] = []
        while self._pending:
            op = self._pending.popleft()
            if op is not _STOP:
                leftover.append(op)
        if leftover:
            self._deliver(leftover, [None], StoreError(f"{self.name} closed before this write"))


# primary result codes that mean the database failed, not one statement
_DATABASE_FAILURES = frozenset({5, 6, 7, 8, 10, 11, 13, 14, 15, 26})  # BUSY … NOTADB


def _database_failure(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _DATABASE_FAILURES


def _store_error(name: str, exc: BaseException) -> StoreError:
    err = StoreError(f"{name}: write failed and was rolled back: {exc}")
    err.__cause__ = exc
    return err
