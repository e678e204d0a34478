"""Where a stage attempt runs: the :class:`Executor` protocol and the in-process default.

The engine owns scheduling, timeouts, retries, events, the cache and the store. For each
stage attempt it builds a :class:`StageJob` (plain, picklable data) and awaits
``executor.run_stage(job, emit)``. The executor creates a fresh agent, runs it, passes the raw
return value through ``result_type.from_raw`` (the clean-result hook) and encodes the clean
result with the codec; it returns a :class:`StageOutcome` holding only that clean result and
its codec bytes. Nothing raw crosses this boundary, so an executor may run stages in another
process (see ``DaskExecutor``).

Cancellation: the engine cancels the awaiting task (timeout, run cancel, user cancel, drain);
executors must stop the stage's work when that happens.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import anyio.to_thread

from agentkit._fastinit import fast_frozen_init
from agentkit.agent import AgentContext, CancelToken, SubAgent
from agentkit.codec import Codec
from agentkit.envelope import LayerTag
from agentkit.registry import AgentRegistry
from agentkit.result import SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer
from agentkit.status import AgentStatus
from agentkit.telemetry import Telemetry

__all__ = [
    "EmitFn",
    "Executor",
    "ExecutorRuntime",
    "InProcessExecutor",
    "StageJob",
    "StageOutcome",
    "layer_name",
]

log = logging.getLogger("agentkit.executor")

#: ``emit(kind, data)``: forwards an agent's event to the engine (call on the event loop)
EmitFn = Callable[[str, dict[str, Any]], None]


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class StageJob:
    """One attempt of one stage, as plain data (picklable; safe to send to another process).

    Attributes:
        agent: registry name of the agent to run.
        agent_version: the version the engine planned with (the executor checks it).
        run_id: the run.
        user_id: the run's user.
        user_hash: keyed hash of ``user_id``, for logs and spans.
        session_id: the session, if any.
        input: the run input.
        upstream: clean outputs of the upstream stages, by agent name.
        attempt: 1 for the first attempt.
        timeout: seconds this attempt may take (already capped by the run deadline), or None.
        deadline: wall-clock (``time.time()``) instant this attempt must end by, or None.
        blob_context: the context the result's codec bytes must be bound to
            (``store:{run_id}:{agent}``).
    """

    agent: str
    agent_version: str
    run_id: str
    user_id: str
    user_hash: str
    session_id: str | None
    input: Any
    upstream: Mapping[str, Any]
    attempt: int
    timeout: float | None
    deadline: float | None
    blob_context: bytes


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class StageOutcome:
    """What an executor returns: the clean result and its codec bytes, nothing raw.

    Attributes:
        result: the clean :class:`~agentkit.SerializableAgentResult` (status
            ``succeeded`` or ``failed``).
        blob: ``codec.encode_result(result, context=job.blob_context)``.
        retryable: the attempt failed with an error matching the agent's ``retry_on``.
        error_type: qualified type name of the error, for telemetry (``None`` on success).
    """

    result: SerializableAgentResult
    blob: bytes
    retryable: bool = False
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutorRuntime:
    """What the Supervisor hands an executor at start: how to find agents and encode."""

    registry: AgentRegistry
    codec: Codec
    sanitizer: ObjectSanitizer
    telemetry: Telemetry


@runtime_checkable
class Executor(Protocol):
    """Runs stage attempts. Implement this to run agents somewhere else."""

    async def start(self, runtime: ExecutorRuntime) -> None:
        """Called once by the Supervisor before the first stage."""
        ...

    async def run_stage(self, job: StageJob, emit: EmitFn) -> StageOutcome:
        """Run one attempt: agent, clean hook, codec. Agent exceptions become a failed
        outcome; cancellation of the awaiting task must stop the work."""
        ...

    async def aclose(self) -> None:
        """Release resources; idempotent."""
        ...


_LAYER_NAMES: dict[int, str] = {int(t): t.name.lower() for t in LayerTag}


def layer_name(blob: bytes) -> str:
    """The codec layer of an envelope (``pickle``, ``json`` or ``str``), for telemetry."""
    try:
        return _LAYER_NAMES.get(blob[4], "unknown")
    except (IndexError, TypeError):
        return "unknown"


def error_type_name(exc: BaseException) -> str:
    """``module.Qualname`` of an exception type (builtins without the module)."""
    t = type(exc)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class InProcessExecutor:
    """The default executor: runs each attempt in this process, on the event loop.

    ``async def run`` runs as part of the engine's task; a plain ``def run`` runs in a worker
    thread (``anyio.to_thread``). A thread cannot be interrupted: on cancellation the engine
    stops waiting for it at once and sets ``ctx.cancelled``, which the agent should poll.
    """

    def __init__(self) -> None:
        self._rt: ExecutorRuntime | None = None

    async def start(self, runtime: ExecutorRuntime) -> None:
        self._rt = runtime

    async def aclose(self) -> None:
        return None

    @property
    def runtime(self) -> ExecutorRuntime:
        """The runtime given to :meth:`start`."""
        if self._rt is None:
            raise RuntimeError("InProcessExecutor.start() was not called")
        return self._rt

    async def run_stage(self, job: StageJob, emit: EmitFn) -> StageOutcome:
        rt = self._rt
        if rt is None:
            rt = self.runtime  # raises
        cls = rt.registry.get(job.agent)
        token = CancelToken()
        deadline = None if job.deadline is None else time.monotonic() + (job.deadline - time.time())
        ctx = AgentContext(
            job.user_id,
            job.run_id,
            job.session_id,
            job.agent,
            job.input,
            job.upstream,
            job.attempt,
            deadline,
            job.user_hash,
            emit if cls.run_is_async else _thread_safe(emit),
            token,
        )
        started_at = datetime.now(UTC)
        raw: Any
        failed: BaseException | None = None
        try:
            if cls.run_is_async and cls.setup is _BASE_SETUP and cls.teardown is _BASE_TEARDOWN:
                raw = await cls().run(ctx)  # _call_agent without its coroutine
            else:
                raw = await _call_agent(cls, ctx)
        except Exception as exc:
            raw = failed = exc
        except BaseException:
            token.cancel()
            raise
        finished_at = datetime.now(UTC)
        return encode_outcome(
            rt, cls, job, raw, failed=failed, started_at=started_at, finished_at=finished_at
        )


_BASE_SETUP = SubAgent.setup
_BASE_TEARDOWN = SubAgent.teardown


async def _call_agent(cls: type[SubAgent], ctx: AgentContext) -> Any:
    agent = cls()
    if cls.setup is not SubAgent.setup:
        await agent.setup(ctx)
    try:
        if cls.run_is_async:
            return await agent.run(ctx)
        return await anyio.to_thread.run_sync(agent.run, ctx, abandon_on_cancel=True)
    finally:
        if cls.teardown is not SubAgent.teardown:
            await agent.teardown(ctx)


def encode_outcome(
    rt: ExecutorRuntime,
    cls: type[SubAgent],
    job: StageJob,
    raw: Any,
    *,
    failed: BaseException | None,
    started_at: datetime,
    finished_at: datetime,
) -> StageOutcome:
    """Clean ``raw`` through ``cls.result_type`` and encode it: the one path results take.

    Executors running stages elsewhere call this on their side of the boundary. A
    ``clean_result`` override that raises, or a result the codec cannot encode, yields a
    failed base-type result naming that error instead.
    """
    tel = rt.telemetry
    common: dict[str, Any] = {
        "agent": job.agent,
        "agent_version": cls.version,
        "user_id": job.user_id,
        "run_id": job.run_id,
        "session_id": job.session_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "attempt": job.attempt,
    }
    try:
        if tel.enabled:
            with tel.step_span("agentkit.clean_result") as span:
                result, pickled = _clean(cls.result_type, raw, common, rt.sanitizer)
                report = result.report
                if report.total:
                    span.set(replaced=report.total, lossy=report.lossy)
                    tel.record_sanitizer(report.counts)
            with tel.step_span("agentkit.codec.encode") as span:
                blob = rt.codec._encode_result(result, job.blob_context, pickled)
                layer = layer_name(blob)
                span.set(layer=layer, payload_bytes=len(blob))
        else:
            result, pickled = _clean(cls.result_type, raw, common, rt.sanitizer)
            blob = rt.codec._encode_result(result, job.blob_context, pickled)
            layer = ""
    except Exception as exc:
        log.warning(
            "agent %r result could not be cleaned or encoded (%s); recording a failure",
            job.agent,
            error_type_name(exc),
        )
        result = SerializableAgentResult.from_error(exc, status=AgentStatus.FAILED, **common)
        blob = rt.codec.encode_result(result, context=job.blob_context)
        layer = layer_name(blob)
        failed = exc
        retryable = False
    else:
        if failed is None:
            if layer:
                tel.record_encoding(layer, len(blob))
            return StageOutcome(result, blob)
        retryable = isinstance(failed, cls.retry_on)
    if tel.enabled:
        tel.record_encoding(layer or layer_name(blob), len(blob))
    return StageOutcome(result, blob, retryable, error_type_name(failed))


_BASE_FROM_RAW = getattr(SerializableAgentResult.from_raw, "__func__", None)


def _clean(
    result_type: type[SerializableAgentResult],
    raw: Any,
    common: dict[str, Any],
    sanitizer: ObjectSanitizer,
) -> tuple[SerializableAgentResult, bytes | None]:
    """``result_type.from_raw(raw, **common)``, and the output's pickle for the codec."""
    if getattr(result_type.from_raw, "__func__", None) is _BASE_FROM_RAW:
        return result_type._clean_raw(raw, common, sanitizer=sanitizer)
    result = result_type.from_raw(raw, sanitizer=sanitizer, **common)  # a subclass's own
    return result, result._output_pickle_bytes()


def _thread_safe(emit: EmitFn) -> EmitFn:
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def emit_from_any_thread(kind: str, data: dict[str, Any]) -> None:
        if threading.get_ident() == loop_thread:
            emit(kind, data)
        else:
            loop.call_soon_threadsafe(emit, kind, data)

    return emit_from_any_thread
