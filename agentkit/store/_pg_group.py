"""Group writes: concurrent calls that arrive together become one statement.

A call on an idle group is written at once (no added latency). Calls that arrive while a
write is on the wire queue up and go out together in the next statement, so batches grow with
load without any timer ("group commit"). Each caller's ``await`` returns when the statement
holding its items has committed, or raises that statement's error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["WriteGroup"]

T = TypeVar("T")


class WriteGroup(Generic[T]):
    """Coalesce concurrent ``submit(items)`` calls into calls of ``write(all_items)``.

    Args:
        write: writes a list of items in one statement; raises on failure.
        max_items: most items in one ``write`` call (callers' lists are never split).
        clone_error: builds a fresh exception for each caller from the statement's error
            (one exception object must not be raised in several tasks).
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        max_items: int,
        clone_error: Callable[[BaseException], BaseException],
    ) -> None:
        self._write = write
        self._max = max_items
        self._clone = clone_error
        self._pending: deque[tuple[list[T], asyncio.Future[None]]] = deque()
        self._inflight = 0
        self._drainer: asyncio.Task[None] | None = None
        #: statements written, and items they carried (for tests and benchmarks)
        self.statements = 0
        self.items = 0

    async def submit(self, items: list[T]) -> None:
        """Write ``items``, together with whatever else arrives meanwhile."""
        if self._inflight == 0 and self._drainer is None:
            self._inflight += 1
            try:
                await self._write(items)
            finally:
                self._inflight -= 1
            self.statements += 1
            self.items += len(items)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((items, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain(), name="agentkit-pg-group")
        await future

    async def wait_idle(self) -> None:
        """Wait until every queued call has been written (or failed)."""
        while self._drainer is not None:
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        try:
            while self._pending:
                group: list[tuple[list[T], asyncio.Future[None]]] = []
                count = 0
                while self._pending and (
                    not group or count + len(self._pending[0][0]) <= self._max
                ):
                    entry = self._pending.popleft()
                    if entry[1].done():  # the caller was cancelled before we got to it
                        continue
                    group.append(entry)
                    count += len(entry[0])
                if not group:
                    continue
                try:
                    await self._write([item for items, _ in group for item in items])
                except asyncio.CancelledError:
                    for _, fut in group:
                        if not fut.done():
                            fut.cancel()
                    raise
                except Exception as exc:
                    for _, fut in group:
                        if not fut.done():
                            fut.set_exception(self._clone(exc))
                            fut.add_done_callback(_retrieve)
                    continue
                self.statements += 1
                self.items += count
                for _, fut in group:
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._drainer = None
            if self._pending:
                self._drainer = asyncio.get_running_loop().create_task(self._drain())


def _retrieve(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
