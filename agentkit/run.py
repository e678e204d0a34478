"""A run as the caller sees it: :class:`RunHandle` while it runs, :class:`RunResult` at the end.

:class:`RunState` is the runtime's private bookkeeping of one run.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agentkit._fastinit import fast_frozen_init
from agentkit.events import EventStream, RunEvent
from agentkit.result import SerializableAgentResult
from agentkit.status import AgentStatus, RunStatus

if TYPE_CHECKING:
    from agentkit._dag import Plan

__all__ = ["RunHandle", "RunResult", "RunState"]

T = TypeVar("T")


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended.

    Attributes:
        run_id: the run.
        user_id: its user.
        session_id: its session, if any.
        pipeline: the stages, in execution order.
        status: the run's terminal status.
        stages: the clean result of every stage, by agent name (skipped and cancelled stages
            included, with their status and a structured error).
        timings: ``queued_s`` (waiting for a slot), ``run_s`` (running) and ``total_s``.
        error: for a run that did not succeed: ``type``, ``message`` and the ``agent``
            that caused it, if any.
        persisted: False when the store failed to save something of this run (the
            result is still complete; the failure is logged).
    """

    run_id: str
    user_id: str
    session_id: str | None
    pipeline: tuple[str, ...]
    status: RunStatus
    stages: dict[str, SerializableAgentResult]
    timings: dict[str, float] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    persisted: bool = True

    @property
    def ok(self) -> bool:
        """True when every stage succeeded."""
        return self.status is RunStatus.SUCCEEDED

    def output(self, agent: str) -> Any:
        """The clean output of ``agent``'s stage.

        Raises:
            KeyError: ``agent`` is not a stage of this run.
        """
        return self.stages[agent].output

    def output_as(self, agent: str, tp: type[T]) -> T:
        """``agent``'s output validated into ``tp`` (see ``SerializableAgentResult.output_as``)."""
        return self.stages[agent].output_as(tp)


class RunState:
    """Private: everything the runtime tracks about one run."""

    __slots__ = (
        "cache_prefix",
        "cancel_reason",
        "done",
        "error",
        "events",
        "finished_at",
        "input",
        "on_write_error",
        "otel_parent",
        "pending_writes",
        "persisted",
        "plan",
        "pyctx",
        "results",
        "run_id",
        "running",
        "session_id",
        "started_at",
        "started_mono",
        "status",
        "submitted_at",
        "submitted_mono",
        "task",
        "unsaved",
        "user_id",
        "waiters",
    )

    def __init__(
        self,
        *,
        run_id: str,
        user_id: str,
        session_id: str | None,
        input: Any,
        plan: Plan,
        submitted_at: datetime,
        submitted_mono: float,
        event_buffer: int,
        otel_parent: Any = None,
    ) -> None:
        self.run_id = run_id
        self.user_id = user_id
        self.session_id = session_id
        self.input = input
        self.plan = plan
        self.submitted_at = submitted_at
        self.submitted_mono = submitted_mono
        self.started_at: datetime | None = None
        self.started_mono: float | None = None
        self.finished_at: datetime | None = None
        self.events = EventStream(run_id, user_id, event_buffer)
        self.results: dict[str, SerializableAgentResult] = {}
        #: ``agentkit:u:{user_hash}:{run_id}``, built on the first cache write
        self.cache_prefix: str | None = None
        self.running: set[str] = set()
        #: stage results whose cache/store writes have not completed yet (blob by agent)
        self.unsaved: dict[str, bytes] = {}
        #: store writes queued without waiting (a store with ``save_results_nowait``); the
        #: run's end waits for them before its result resolves
        self.pending_writes: list[asyncio.Future[None]] | None = None
        #: the error callback of writes queued without a future (set by the engine)
        self.on_write_error: Callable[[BaseException], None] | None = None
        #: the task running the stages, while it does (cancelled to stop the run)
        self.task: asyncio.Task[Any] | None = None
        self.cancel_reason: RunStatus | None = None
        self.status = RunStatus.QUEUED
        self.error: dict[str, Any] | None = None
        self.persisted = True
        self.done: asyncio.Future[RunResult] = asyncio.get_running_loop().create_future()
        #: futures of RunHandle.result() calls waiting for ``done``; complete ``done`` only
        #: through :meth:`settle`, which wakes them
        self.waiters: list[asyncio.Future[None]] | None = None
        self.otel_parent = otel_parent
        self.pyctx = contextvars.copy_context()

    def settle(self, outcome: RunResult | BaseException) -> None:
        """Resolve ``done`` with ``outcome`` (a result, or the exception to raise) unless it
        is already, and wake the :meth:`RunHandle.result` calls waiting for it."""
        done = self.done
        if not done.done():
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)
        waiters = self.waiters
        if waiters:
            self.waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def request_cancel(self, reason: RunStatus) -> None:
        """Ask the run to stop; ``reason`` is CANCELLED or INTERRUPTED."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        task = self.task
        if task is not None:
            self.task = None
            task.cancel()

    def stage_status_on_cancel(self) -> AgentStatus:
        """Status for a stage that was running when the run was stopped."""
        if self.cancel_reason is RunStatus.INTERRUPTED:
            return AgentStatus.INTERRUPTED
        return AgentStatus.CANCELLED


class RunHandle:
    """A submitted run: its id, its events, its result, and a way to cancel it.

    Only the caller that submitted the run holds its handle; nothing of it is reachable
    from another user's runs.
    """

    __slots__ = ("_cancel", "_state")

    def __init__(self, state: RunState, cancel: Callable[[RunState], Awaitable[bool]]) -> None:
        self._state = state
        self._cancel = cancel

    @property
    def run_id(self) -> str:
        """The globally unique run id."""
        return self._state.run_id

    @property
    def user_id(self) -> str:
        """The user the run belongs to."""
        return self._state.user_id

    @property
    def status(self) -> RunStatus:
        """The current status (``queued``, ``running``, then terminal)."""
        return self._state.status

    @property
    def done(self) -> bool:
        """True once :meth:`result` would return at once."""
        return self._state.done.done()

    @property
    def events_dropped(self) -> int:
        """Events dropped because the buffer was full when they arrived."""
        return self._state.events.dropped

    def events(self) -> AsyncIterator[RunEvent]:
        """This run's events, from ``run_started`` to ``run_completed``.

        One reader per run: events are handed out once. The buffer is bounded
        (``Limits.event_buffer``); a slow reader loses the oldest events (gaps in ``seq``).
        """
        return aiter(self._state.events)

    async def result(self) -> RunResult:
        """Wait for the run to end; its records are durable in the store when this returns."""
        state = self._state
        done = state.done
        if not done.done():
            # like asyncio.shield(done): cancelling this call cancels only its own waiter
            waiter: asyncio.Future[None] = done.get_loop().create_future()
            waiters = state.waiters
            if waiters is None:
                waiters = state.waiters = []
            waiters.append(waiter)
            try:
                await waiter
            finally:
                waiters = state.waiters
                if waiter.cancelled() and waiters is not None and waiter in waiters:
                    waiters.remove(waiter)
        return done.result()

    async def cancel(self) -> bool:
        """Cancel the run (queued or running) and wait until it has stopped.

        Returns:
            True if this call cancelled it, False if it had already finished.
        """
        return await self._cancel(self._state)

    def __repr__(self) -> str:
        return f"RunHandle(run_id={self.run_id!r}, status={self.status.value!r})"
