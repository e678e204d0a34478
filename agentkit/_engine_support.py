"""Parts of the engine's stage loop that need none of its state: the per-task deadline
timer, a stage's ``emit``, and the records and event payloads built from results."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import threading
from typing import TYPE_CHECKING, Any

from agentkit._records import make_result_record
from agentkit.events import EventStream
from agentkit.result import SerializableAgentResult
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.records import ResultRecord
from agentkit.telemetry import SpanHandle, Telemetry

if TYPE_CHECKING:
    from agentkit.run import RunState
    from agentkit.sanitizer import ObjectSanitizer

__all__ = [
    "COMPLETED_KEYS",
    "NO_SCOPE",
    "RUN_COMPLETED_KEYS",
    "STARTED_KEYS",
    "Deadline",
    "Emitter",
    "failure_data",
    "pending",
    "result_record",
    "run_error",
]


class Deadline:
    """Cancels a task when the deadline of the stage it runs passes: one timer per task,
    not one per stage (a cheaper ``asyncio.timeout_at``).

    :meth:`arm` sets the stage's deadline and starts a timer only when none is due by then;
    :meth:`disarm` just forgets the deadline. A timer that comes due for a deadline that has
    since moved later (the next stage's) re-arms itself for it, so a run of short stages
    costs one timer in all. ``fired`` tells a timeout from any other cancellation. The
    timer's callback reads no context variables: it runs in an empty context of the thread,
    which spares each timer a copy of the current one.
    """

    __slots__ = ("_at", "_handle", "_loop", "deadline", "fired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self._loop = task.get_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the pending timer comes due
        self.deadline = math.inf
        self.fired = False

    def arm(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        if deadline < self._at:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self._loop.call_at(deadline, self._fire, context=_timer_context())
            self._at = deadline

    def disarm(self) -> None:
        self.deadline = math.inf

    def close(self) -> None:
        self.deadline = math.inf
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._at = math.inf

    def _fire(self) -> None:
        due = self._at
        self._handle = None
        self._at = math.inf
        deadline = self.deadline
        if deadline <= due:
            self.deadline = math.inf
            self.fired = True
            self.task.cancel()
        elif deadline != math.inf:
            self._handle = self._loop.call_at(deadline, self._fire, context=_timer_context())
            self._at = deadline


_TIMER_CONTEXTS = threading.local()


def _timer_context() -> contextvars.Context:
    """An empty context for this thread's deadline timers (see Deadline)."""
    ctx: contextvars.Context | None = getattr(_TIMER_CONTEXTS, "ctx", None)
    if ctx is None:
        ctx = _TIMER_CONTEXTS.ctx = contextvars.Context()
    return ctx


#: the data of engine events, as keys and values (see EventStream.push_items)
STARTED_KEYS = ("attempt",)
COMPLETED_KEYS = ("attempt", "status", "duration_s", "replaced")
RUN_COMPLETED_KEYS = ("status", "duration_s")

#: what stages use in place of a span when telemetry is off
NO_SCOPE = contextlib.nullcontext(SpanHandle())


class Emitter:
    """A stage's ``emit``: agents' events, sanitized, to the run's stream and telemetry
    (one object per stage rather than a closure and its cells)."""

    __slots__ = ("agent", "events", "sanitizer", "telemetry")

    def __init__(
        self, events: EventStream, agent: str, sanitizer: ObjectSanitizer, telemetry: Telemetry
    ) -> None:
        self.events = events
        self.agent = agent
        self.sanitizer = sanitizer
        self.telemetry = telemetry

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        # always sanitized: besides live objects, secrets under telling keys are redacted
        cleaned, _ = self.sanitizer.sanitize(data)
        clean = cleaned if isinstance(cleaned, dict) else {"data": cleaned}
        self.events.push(kind, self.agent, clean)
        self.telemetry.agent_event(kind, clean)


def pending(run: RunState) -> list[asyncio.Future[None]]:
    """The run's list of write futures to wait for, made on first use."""
    futures = run.pending_writes
    if futures is None:
        futures = run.pending_writes = []
    return futures


def result_record(result: SerializableAgentResult, blob: bytes) -> ResultRecord:
    # ResultRecord.from_result() without re-validating fields the result already validated;
    # the store checks the envelope on write
    return make_result_record(
        {
            "run_id": result.run_id,
            "user_id": result.user_id,
            "agent": result.agent,
            "agent_version": result.agent_version,
            "session_id": result.session_id,
            "status": result.status,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
            "duration_s": result.duration_s,
            "output_json": result.output_json(),
            "blob": blob,
        }
    )


def _error_dict(result: SerializableAgentResult) -> dict[str, Any]:
    err = result.error
    if err is None:
        return {"type": result.status.value, "message": ""}
    return {"type": err.type, "message": err.message}


def failure_data(
    result: SerializableAgentResult,
    attempt: int,
    *,
    will_retry: bool = False,
    delay: float | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "attempt": attempt,
        "status": result.status.value,
        "error": _error_dict(result),
        "will_retry": will_retry,
    }
    if delay is not None:
        data["retry_in_s"] = delay
    return data


def run_error(run: RunState, status: RunStatus) -> dict[str, Any]:
    for name in run.plan.order:
        r = run.results.get(name)
        if r is not None and r.status not in (AgentStatus.SUCCEEDED, AgentStatus.SKIPPED):
            return {"agent": name, **_error_dict(r)}
    return {"agent": None, "type": status.value, "message": f"run {status.value}"}
