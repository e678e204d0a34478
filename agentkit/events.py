"""Run events: what a run reports to its caller while it runs.

Each run has one bounded :class:`EventStream`; only that run's :class:`~agentkit.RunHandle`
reads it (design invariant 2). When the reader is slower than the run, the oldest unread
event is dropped — a run never waits for its reader — and the gap shows in ``seq``.
Payloads are clean values: the engine builds its own, and agents' ``emit`` data passes
through the sanitizer first.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from agentkit.errors import UsageError

__all__ = [
    "AGENT_COMPLETED",
    "AGENT_FAILED",
    "AGENT_STARTED",
    "RUN_COMPLETED",
    "RUN_STARTED",
    "EventStream",
    "RunEvent",
]

RUN_STARTED: Final = "run_started"
AGENT_STARTED: Final = "agent_started"
AGENT_COMPLETED: Final = "agent_completed"
AGENT_FAILED: Final = "agent_failed"
RUN_COMPLETED: Final = "run_completed"
#: kinds the engine emits itself; agents' own ``emit`` kinds must differ from these
ENGINE_KINDS: Final = frozenset(
    {RUN_STARTED, AGENT_STARTED, AGENT_COMPLETED, AGENT_FAILED, RUN_COMPLETED}
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class RunEvent(NamedTuple):
    """One event of one run (an immutable named tuple).

    Attributes:
        kind: ``run_started``, ``agent_started``, ``agent_completed``, ``agent_failed``,
            ``run_completed``, or the kind an agent passed to ``ctx.emit``.
        run_id: the run.
        user_id: the run's user (the caller's own id; events never reach anyone else).
        agent: the stage's agent name; ``None`` for run-level events.
        seq: 1, 2, 3… per run; a gap means older events were dropped from a full buffer.
        time: wall-clock time in seconds since the epoch.
        data: clean payload (plain values only).
    """

    kind: str
    run_id: str
    user_id: str
    agent: str | None
    seq: int
    time: float
    data: Mapping[str, Any] = _EMPTY

    @property
    def timestamp(self) -> datetime:
        """:attr:`time` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time, UTC)


class EventStream:
    """A bounded, single-reader buffer of one run's events (drop-oldest on overflow).

    Producers call :meth:`push` on the event loop thread; the reader iterates
    :meth:`__aiter__` until the stream is closed and drained.
    """

    __slots__ = ("_buf", "_closed", "_reading", "_run_id", "_seq", "_user_id", "_waiter", "dropped")

    def __init__(self, run_id: str, user_id: str, maxlen: int) -> None:
        # (kind, agent, seq, time, data), or (kind, agent, seq, time, keys, *values) from
        # push_items; the RunEvent (and then its data dict) is made when the event is read
        self._buf: deque[tuple[Any, ...]] = deque(maxlen=maxlen)
        self._run_id = run_id
        self._user_id = user_id
        self._seq = 0
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._reading = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        """True once the run has emitted its last event."""
        return self._closed

    def push(self, kind: str, agent: str | None, data: Mapping[str, Any] = _EMPTY) -> None:
        """Append an event; drops the oldest unread one when the buffer is full."""
        if self._closed:
            return
        self._seq = seq = self._seq + 1
        self._append((kind, agent, seq, time.time(), data))

    def push_items(
        self, kind: str, agent: str | None, keys: tuple[str, ...], values: tuple[Any, ...]
    ) -> None:
        """:meth:`push` with data ``dict(zip(keys, values))``, built only when the event is
        read. With plain values the buffered event holds no dict, so the garbage collector
        stops tracking it (a run's unread events are otherwise traversed by every
        collection while the run lasts)."""
        if self._closed:
            return
        self._seq = seq = self._seq + 1
        buf = self._buf  # _append, inlined: two events per stage
        if len(buf) == buf.maxlen:
            self.dropped += 1
        # one flat tuple: nested in another, even a plain tuple keeps the outer one tracked
        buf.append((kind, agent, seq, time.time(), keys, *values))
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _append(self, entry: tuple[Any, ...]) -> None:
        buf = self._buf
        if len(buf) == buf.maxlen:
            self.dropped += 1
        buf.append(entry)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        """No more events; wakes the reader so it can finish."""
        self._closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def __aiter__(self) -> AsyncIterator[RunEvent]:
        if self._reading:
            raise UsageError(
                "this run's events are already being read; a run has one reader (iterate "
                "handle.events() once and fan out yourself if several consumers need them)"
            )
        self._reading = True
        buf = self._buf
        run_id = self._run_id
        user_id = self._user_id
        try:
            while True:
                while buf:
                    entry = buf.popleft()
                    data = entry[4]
                    if type(data) is tuple:  # push_items: the keys, then the values
                        data = dict(zip(data, entry[5:], strict=True))
                    yield RunEvent(entry[0], run_id, user_id, entry[1], entry[2], entry[3], data)
                if self._closed:
                    return
                waiter = asyncio.get_running_loop().create_future()
                self._waiter = waiter
                try:
                    await waiter
                finally:
                    if self._waiter is waiter:
                        self._waiter = None
        finally:
            self._reading = False
