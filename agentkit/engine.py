"""One user's runs: DAG execution, timeouts, retries, cancellation, events, persistence.

For each stage attempt the engine builds a :class:`~agentkit.executor.StageJob` and awaits the
executor, which returns only a clean result and its codec bytes, bound to the stage's
:func:`result_context`. The engine then writes those same bytes to the cache under the stage's
:func:`result_key` (best effort: a cache fault is logged, counted and treated as a miss) and
to the store (durable: the run's ``result()`` resolves only after every record is committed),
emits events and telemetry. Downstream stages see ``result.output`` — clean — in
``ctx.upstream``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentkit._engine_support import (
    COMPLETED_KEYS,
    NO_SCOPE,
    RUN_COMPLETED_KEYS,
    STARTED_KEYS,
    Deadline,
    Emitter,
    failure_data,
    pending,
    result_record,
    run_error,
)
from agentkit._records import make_run_record
from agentkit.cache.base import Cache
from agentkit.codec import Codec
from agentkit.errors import AgentTimeoutError, RunCancelledError
from agentkit.events import (
    AGENT_COMPLETED,
    AGENT_FAILED,
    AGENT_STARTED,
    RUN_COMPLETED,
    RUN_STARTED,
)
from agentkit.executor import EmitFn, Executor, StageJob, StageOutcome, error_type_name
from agentkit.keys import UserHasher, cache_key
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.result import ErrorInfo, SerializableAgentResult
from agentkit.run import RunResult, RunState
from agentkit.sanitizer import ObjectSanitizer
from agentkit.scheduler import Lane
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.base import Store
from agentkit.store.records import ResultRecord, RunRecord
from agentkit.telemetry import Telemetry

__all__ = ["EngineRuntime", "EngineStats", "UserExecutionEngine", "result_context", "result_key"]

log = logging.getLogger("agentkit.engine")


@dataclass(slots=True)
class EngineStats:
    """Counters shared by all engines of a Supervisor (for tests, benchmarks, health)."""

    runs_started: int = 0
    runs_finished: int = 0
    stages_run: int = 0
    retries: int = 0
    cache_errors: int = 0
    store_errors: int = 0
    engines_created: int = 0
    engines_evicted: int = 0


@dataclass(slots=True)
class EngineRuntime:
    """What every engine of one Supervisor shares."""

    registry: AgentRegistry
    executor: Executor
    codec: Codec
    sanitizer: ObjectSanitizer
    cache: Cache
    store: Store
    telemetry: Telemetry
    limits: Limits
    hasher: UserHasher
    owner: str
    stats: EngineStats = field(default_factory=EngineStats)
    #: also write the run record when a run starts (not only when queued and when done)
    record_running: bool = True
    #: the store's queued writes (``SQLiteStore.save_run_nowait``/``save_results_nowait``):
    #: a run's writes before its final record are queued, not awaited one by one
    save_run_nowait: Callable[[RunRecord], asyncio.Future[None]] | None = None
    save_results_nowait: Callable[[Sequence[ResultRecord]], asyncio.Future[None]] | None = None
    #: the same without futures (``SQLiteStore.queue_run``/``queue_result``): a failure is
    #: reported to a callback before the run's later writes resolve
    queue_run: Callable[[RunRecord, Callable[[BaseException], None]], None] | None = None
    queue_result: (
        Callable[[SerializableAgentResult, bytes, Callable[[BaseException], None]], None] | None
    ) = None
    #: the cache's write that needs no await (``MemoryCache.set_nowait``), if it has one
    cache_set_nowait: Callable[..., None] | None = None
    #: stage results are persisted without awaiting (the cache and the store both take
    #: writes without waiting)
    persist_now: bool = False
    #: the telemetry records something (False for the no-op one: its calls are skipped)
    tel_on: bool = True

    def __post_init__(self) -> None:
        run_nowait = getattr(self.store, "save_run_nowait", None)
        results_nowait = getattr(self.store, "save_results_nowait", None)
        if callable(run_nowait) and callable(results_nowait):
            self.save_run_nowait = run_nowait
            self.save_results_nowait = results_nowait
            queue_run = getattr(self.store, "queue_run", None)
            queue_result = getattr(self.store, "queue_result", None)
            if callable(queue_run) and callable(queue_result):
                self.queue_run = queue_run
                self.queue_result = queue_result
        cache_type = type(self.cache)
        owner = _owner(cache_type, "set_nowait")
        if owner is not None and owner is _owner(cache_type, "set"):  # not a subclass's set
            self.cache_set_nowait = self.cache.set_nowait  # type: ignore[attr-defined]
        self.persist_now = self.cache_set_nowait is not None and self.queue_result is not None
        self.tel_on = bool(self.telemetry.enabled)


def _owner(cls: type, name: str) -> type | None:
    """The class of ``cls``'s MRO that defines ``name``."""
    return next((c for c in cls.__mro__ if name in c.__dict__), None)


def result_key(user_hash: str, run_id: str, agent: str) -> str:
    """The cache key of a stage result."""
    return cache_key("agentkit", user_hash, run_id, agent)


def result_context(run_id: str, agent: str) -> bytes:
    """The codec context a stage result's bytes are bound to, in the store and in the cache
    alike: one blob serves both, and moved to another run's or stage's key or row it fails to
    verify. The user is bound by the result itself (its signed ``user_id``, which readers
    compare with the user they read for). The ``store:`` prefix predates the cache sharing
    the blob; it is kept so stored results stay readable."""
    return f"store:{run_id}:{agent}".encode()


class UserExecutionEngine:
    """Runs one user's runs; holds nothing another user can reach.

    Created by the Supervisor on demand, reused while the user is active, evicted when idle.
    """

    __slots__ = ("_rt", "lane", "last_active", "runs", "user_hash", "user_id")

    def __init__(self, user_id: str, runtime: EngineRuntime) -> None:
        self.user_id = user_id
        self._rt = runtime
        self.user_hash = runtime.hasher.hash(user_id)
        self.lane: Lane[RunState] = Lane()
        #: this user's runs that are queued or running, by id
        self.runs: dict[str, RunState] = {}
        self.last_active = time.monotonic()

    @property
    def idle(self) -> bool:
        """No run of this user is queued or running."""
        return not self.runs and self.lane.idle

    # --- records ---------------------------------------------------------------------------

    def run_record(self, run: RunState, status: RunStatus) -> RunRecord:
        """The store record of ``run`` with ``status``."""
        return make_run_record(
            {
                "run_id": run.run_id,
                "user_id": run.user_id,
                "session_id": run.session_id,
                "pipeline": list(run.plan.order),
                "status": status,
                "submitted_at": run.submitted_at,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "error": run.error,
                "owner": self._rt.owner,
            }
        )

    # --- a run -----------------------------------------------------------------------------

    def execute(self, run: RunState) -> Coroutine[Any, Any, None]:
        """Start ``run``; awaiting what this returns runs it to its end. That never raises
        (failures end up in the run's result)."""
        rt = self._rt
        run.started_mono = now = time.monotonic()
        run.started_at = datetime.now(UTC)
        run.status = RunStatus.RUNNING
        rt.stats.runs_started += 1
        run.events.push(RUN_STARTED, None, {"pipeline": list(run.plan.order)})
        if not rt.tel_on:
            return self._execute(run, now)  # one coroutine less held while the run lasts
        return self._execute_traced(run, now)

    async def _execute_traced(self, run: RunState, now: float) -> None:
        tel = self._rt.telemetry
        queue_wait = now - run.submitted_mono
        tel.record_queue_wait(queue_wait)
        with tel.workflow_span(
            run.plan.name,
            run_id=run.run_id,
            user_hash=self.user_hash,
            session_id=run.session_id,
            queue_wait=queue_wait,
            parent=run.otel_parent,
        ) as wspan:
            await self._execute(run, now)
            wspan.set_outcome(run.status, None if run.error is None else run.error["type"])

    async def _execute(self, run: RunState, now: float) -> None:
        rt = self._rt
        if rt.record_running:
            if rt.save_run_nowait is not None or rt.queue_run is not None:
                self._queue_run(run, RunStatus.RUNNING)
            else:
                await self._save_run(run, RunStatus.RUNNING)
        deadline = math.inf if rt.limits.run_deadline is None else now + rt.limits.run_deadline
        task = asyncio.current_task()
        assert task is not None
        timer = Deadline(task)
        try:
            if run.cancel_reason is None:
                run.task = task  # from here on, cancelling the run cancels this task
                for level in run.plan.levels:
                    if len(level) == 1:
                        await self._stage(run, level[0], deadline, timer)
                    else:
                        async with asyncio.TaskGroup() as tg:
                            for name in level:
                                tg.create_task(self._stage(run, name, deadline, None))
        except asyncio.CancelledError:
            run.task = None
            if run.cancel_reason is None:  # not ours (event loop shutdown): record, re-raise
                run.cancel_reason = RunStatus.INTERRUPTED
                await self._finish(run)
                raise
            task.uncancel()
        except Exception as exc:  # a bug or a backend failure outside a stage
            log.exception("run %s failed inside the engine", run.run_id)
            run.error = {"type": error_type_name(exc), "message": str(exc)[:500]}
        finally:
            timer.close()
        run.task = None
        await self._finish(run)

    async def finish_unstarted(self, run: RunState) -> None:
        """End a run that never started (cancelled or interrupted while queued)."""
        await self._finish(run)

    async def _stage(
        self, run: RunState, name: str, deadline: float, timer: Deadline | None
    ) -> None:
        """Run stage ``name`` (with its retries) and persist its result. ``timer`` is the
        running task's; None in a task of its own (a stage of a concurrent level)."""
        rt = self._rt
        plan = run.plan
        cls = plan.agents[name]
        results = run.results
        for dep in cls.depends_on:
            dep_result = results.get(dep)
            if dep_result is None or dep_result.status is not AgentStatus.SUCCEEDED:
                return  # recorded as skipped by _finish
        if timer is None:  # a task of its own: the deadline timer is this task's
            task = asyncio.current_task()
            assert task is not None
            timer = Deadline(task)
            try:
                await self._stage(run, name, deadline, timer)
            finally:
                timer.close()
            return
        tel = rt.telemetry
        tel_on = rt.tel_on
        upstream = {a: results[a].output for a in plan.ancestors[name]}
        timeout = cls.timeout if cls.timeout is not None else rt.limits.stage_timeout
        emit = self._emitter(run, name)
        run_id = run.run_id
        key = self._result_key(run, name)
        ctx_bytes = result_context(run_id, name)
        run.running.add(name)
        attempt = 0
        while True:
            attempt += 1
            start = time.monotonic()
            stage_deadline = deadline if timeout is None else min(deadline, start + timeout)
            if stage_deadline == math.inf:
                job_timeout = job_deadline = None
            else:
                job_timeout = stage_deadline - start
                job_deadline = time.time() + job_timeout
            job = StageJob(
                name,
                cls.version,
                run_id,
                run.user_id,
                self.user_hash,
                run.session_id,
                run.input,
                upstream,
                attempt,
                job_timeout,
                job_deadline,
                ctx_bytes,
            )
            run.events.push_items(AGENT_STARTED, name, STARTED_KEYS, (attempt,))
            with (
                tel.agent_span(
                    name,
                    cls.version,
                    run_id=run_id,
                    user_hash=self.user_hash,
                    session_id=run.session_id,
                    attempt=attempt,
                )
                if tel_on
                else NO_SCOPE
            ) as span:
                if job_timeout is not None:
                    timer.arm(stage_deadline)
                else:
                    timer.fired = False
                try:
                    outcome = await rt.executor.run_stage(job, emit)
                except asyncio.CancelledError:
                    if not timer.fired:
                        raise
                    timer.task.uncancel()  # take back the timer's own cancel request
                    if run.cancel_reason is not None:
                        raise
                    outcome = self._timeout_outcome(run, job, cls.retry_on, deadline, timeout)
                except Exception as exc:  # the executor itself failed (e.g. a lost worker)
                    outcome = self._failure_outcome(run, job, exc, cls.retry_on)
                finally:
                    timer.disarm()
                if run.cancel_reason is not None:
                    # the agent swallowed the cancellation; the run stops all the same
                    raise asyncio.CancelledError
                result = outcome.result
                duration = time.monotonic() - start
                if tel_on:
                    tel.record_agent(name, result.status, duration, outcome.error_type)
                rt.stats.stages_run += 1
                retry_after: float | None = None
                if (
                    result.status is not AgentStatus.SUCCEEDED
                    and outcome.retryable
                    and attempt <= cls.retries
                ):
                    delay = self._backoff(attempt)
                    if time.monotonic() + delay < deadline:
                        rt.stats.retries += 1
                        span.mark_retry(
                            outcome.error_type or result.status.value,
                            next_attempt=attempt + 1,
                            delay_s=delay,
                        )
                        run.events.push(
                            AGENT_FAILED,
                            name,
                            failure_data(result, attempt, will_retry=True, delay=delay),
                        )
                        retry_after = delay
                if retry_after is None:
                    span.set_outcome(result.status, outcome.error_type)
                    if tel_on and result.output is not None:
                        span.record_output(result.output)  # only if record_content is on
                    results[name] = result
                    run.running.discard(name)
                    # if the run is cancelled meanwhile, _finish() persists what is unsaved
                    run.unsaved[name] = outcome.blob
                    if rt.persist_now:
                        self._persist_now(run, name, result, outcome.blob, key)
                    else:
                        await self._persist(run, name, result, outcome.blob, key)
            if retry_after is not None:
                await asyncio.sleep(retry_after)
                continue
            if result.status is AgentStatus.SUCCEEDED:
                run.events.push_items(
                    AGENT_COMPLETED,
                    name,
                    COMPLETED_KEYS,
                    (attempt, "succeeded", duration, result.report.total),
                )
            else:
                run.events.push(AGENT_FAILED, name, failure_data(result, attempt))
            return

    def _timeout_outcome(
        self,
        run: RunState,
        job: StageJob,
        retry_on: tuple[type[BaseException], ...],
        deadline: float,
        timeout: float | None,
    ) -> StageOutcome:
        if time.monotonic() >= deadline - 1e-3:
            exc = AgentTimeoutError(
                f"run {run.run_id} passed its deadline of {self._rt.limits.run_deadline} s "
                f"during stage {job.agent!r}; raise Limits.run_deadline or speed the agent up"
            )
            retryable = False
        else:
            exc = AgentTimeoutError(
                f"stage {job.agent!r} took longer than its timeout of {timeout} s; raise "
                "the agent's timeout (or Limits.stage_timeout) or speed it up"
            )
            retryable = isinstance(exc, retry_on)
        result = self._error_result(run, job.agent, exc, AgentStatus.TIMED_OUT, job.attempt)
        blob = self._rt.codec.encode_result(result, context=job.blob_context)
        return StageOutcome(result, blob, retryable=retryable, error_type=error_type_name(exc))

    def _failure_outcome(
        self,
        run: RunState,
        job: StageJob,
        exc: Exception,
        retry_on: tuple[type[BaseException], ...],
    ) -> StageOutcome:
        log.warning(
            "executor failed running stage %r of run %s (user %s): %s",
            job.agent,
            run.run_id,
            self.user_hash,
            error_type_name(exc),
        )
        result = self._error_result(run, job.agent, exc, AgentStatus.FAILED, job.attempt)
        blob = self._rt.codec.encode_result(result, context=job.blob_context)
        return StageOutcome(
            result, blob, retryable=isinstance(exc, retry_on), error_type=error_type_name(exc)
        )

    def _error_result(
        self,
        run: RunState,
        name: str,
        exc: BaseException | ErrorInfo,
        status: AgentStatus,
        attempt: int = 1,
    ) -> SerializableAgentResult:
        cls = run.plan.agents[name]
        now = datetime.now(UTC)
        return SerializableAgentResult.from_error(
            exc,
            status=status,
            agent=name,
            agent_version=cls.version,
            user_id=run.user_id,
            run_id=run.run_id,
            session_id=run.session_id,
            started_at=now,
            finished_at=now,
            attempt=attempt,
        )

    def _backoff(self, attempt: int) -> float:
        lim = self._rt.limits
        base: float = min(lim.retry_backoff * 2.0 ** (attempt - 1), lim.retry_backoff_max)
        return base * (1.0 + random.random() * lim.retry_jitter)

    def _emitter(self, run: RunState, agent: str) -> EmitFn:
        return Emitter(run.events, agent, self._rt.sanitizer, self._rt.telemetry)

    # --- persistence -----------------------------------------------------------------------

    def _result_key(self, run: RunState, name: str) -> str:
        """:func:`result_key` of stage ``name`` of ``run``."""
        prefix = run.cache_prefix
        if prefix is None:  # validated once per run; agent names are validated by SubAgent
            prefix = run.cache_prefix = cache_key("agentkit", self.user_hash, run.run_id)
        return f"{prefix}:{name}"

    async def _persist(
        self,
        run: RunState,
        name: str,
        result: SerializableAgentResult,
        blob: bytes,
        key: str,
    ) -> None:
        """Write ``blob`` (bound to :func:`result_context`) to the cache under ``key`` and
        to the store."""
        rt = self._rt
        tel = rt.telemetry
        tel_on = rt.tel_on
        try:
            with tel.step_span("agentkit.cache.set") if tel_on else NO_SCOPE as span:
                if tel_on:
                    span.set(payload_bytes=len(blob))
                timeout = rt.limits.cache_timeout
                if timeout is None:
                    await rt.cache.set(key, blob, ttl=rt.limits.cache_ttl)
                else:
                    async with asyncio.timeout(timeout):
                        await rt.cache.set(key, blob, ttl=rt.limits.cache_ttl)
        except Exception as exc:
            self._cache_failed(run, name, exc)
        try:
            with (
                tel.step_span("agentkit.store.save", payload_bytes=len(blob))
                if tel_on
                else NO_SCOPE
            ):
                queue = rt.queue_result
                if queue is not None:
                    queue(result, blob, self._on_write_error(run))
                elif rt.save_results_nowait is not None:
                    pending(run).append(rt.save_results_nowait([result_record(result, blob)]))
                else:
                    await rt.store.save_results([result_record(result, blob)])
        except Exception as exc:
            self._store_failed(run, exc)
        run.unsaved.pop(name, None)

    def _persist_now(
        self,
        run: RunState,
        name: str,
        result: SerializableAgentResult,
        blob: bytes,
        key: str,
    ) -> None:
        """:meth:`_persist` for a cache and a store that take writes without awaiting
        (``EngineRuntime.persist_now``): no coroutine per stage."""
        rt = self._rt
        cache_set = rt.cache_set_nowait
        queue = rt.queue_result
        assert cache_set is not None and queue is not None
        tel_on = rt.tel_on
        try:
            if tel_on:
                with rt.telemetry.step_span("agentkit.cache.set") as span:
                    span.set(payload_bytes=len(blob))
                    cache_set(key, blob, ttl=rt.limits.cache_ttl)
            else:
                cache_set(key, blob, ttl=rt.limits.cache_ttl)
        except Exception as exc:
            self._cache_failed(run, name, exc)
        on_error = self._on_write_error(run)
        try:
            if tel_on:
                with rt.telemetry.step_span("agentkit.store.save", payload_bytes=len(blob)):
                    queue(result, blob, on_error)
            else:
                queue(result, blob, on_error)
        except Exception as exc:
            self._store_failed(run, exc)
        run.unsaved.pop(name, None)

    def _on_write_error(self, run: RunState) -> Callable[[BaseException], None]:
        """The error callback of ``run``'s queued store writes (made once per run)."""
        on_error = run.on_write_error
        if on_error is None:
            on_error = run.on_write_error = functools.partial(_write_failed, self, run)
        return on_error

    def _cache_failed(self, run: RunState, name: str, exc: Exception) -> None:
        rt = self._rt
        rt.stats.cache_errors += 1
        rt.telemetry.record_cache_error("set")
        log.warning(
            "cache write failed for run %s stage %r (user %s): %s; treated as a miss",
            run.run_id,
            name,
            self.user_hash,
            error_type_name(exc),
        )

    def _queue_run(self, run: RunState, status: RunStatus) -> None:
        rt = self._rt
        try:
            if rt.queue_run is not None:
                rt.queue_run(self.run_record(run, status), self._on_write_error(run))
            else:
                assert rt.save_run_nowait is not None
                pending(run).append(rt.save_run_nowait(self.run_record(run, status)))
        except Exception as exc:
            self._store_failed(run, exc)

    async def _settle_writes(self, run: RunState) -> None:
        """Wait for the run's queued writes (they committed before its final record, which
        was queued last) and record any failure. Writes queued with an error callback have
        reported theirs by now."""
        run.on_write_error = None  # it refers to the run: no cycle outlives the run
        pending = run.pending_writes
        if not pending:
            return
        run.pending_writes = None
        waiting = [f for f in pending if not f.done()]
        if waiting:
            await asyncio.wait(waiting)
        for fut in pending:
            exc = fut.exception() if not fut.cancelled() else None
            if isinstance(exc, Exception):
                self._store_failed(run, exc)

    async def _save_run(self, run: RunState, status: RunStatus) -> None:
        try:
            await self._rt.store.save_run(self.run_record(run, status))
        except Exception as exc:
            self._store_failed(run, exc)

    def _store_failed(self, run: RunState, exc: Exception) -> None:
        self._rt.stats.store_errors += 1
        run.persisted = False
        log.error(
            "store write failed for run %s (user %s): %s: %s",
            run.run_id,
            self.user_hash,
            error_type_name(exc),
            str(exc)[:300],
        )

    async def _finish(self, run: RunState) -> None:
        """Record every stage without a result, then the run; resolve the handle."""
        rt = self._rt
        results = run.results
        for name, blob in list(run.unsaved.items()):
            await self._persist(run, name, results[name], blob, self._result_key(run, name))
        for name in run.plan.order:
            if name in results:
                continue
            if name in run.running:
                status = run.stage_status_on_cancel()
                exc: BaseException | ErrorInfo = RunCancelledError(
                    f"run {run.run_id} was {status.value} while stage {name!r} ran"
                )
            else:
                status = AgentStatus.SKIPPED
                blocking = [
                    d
                    for d in run.plan.agents[name].depends_on
                    if d in results and results[d].status is not AgentStatus.SUCCEEDED
                ]
                why = (
                    f"upstream stage {blocking[0]!r} did not succeed"
                    if blocking
                    else f"the run was {(run.cancel_reason or RunStatus.FAILED).value} first"
                )
                exc = ErrorInfo(
                    type="agentkit.skipped", message=f"stage {name!r} did not run: {why}"
                )
            result = self._error_result(run, name, exc, status)
            results[name] = result
            run.running.discard(name)
            key = self._result_key(run, name)
            blob = rt.codec.encode_result(result, context=result_context(run.run_id, name))
            await self._persist(run, name, result, blob, key)
            run.events.push(AGENT_FAILED, name, failure_data(result, 0))

        if run.cancel_reason is not None:
            status_ = run.cancel_reason
        elif run.error is None and all(r.status is AgentStatus.SUCCEEDED for r in results.values()):
            status_ = RunStatus.SUCCEEDED
        else:
            status_ = RunStatus.FAILED
        if run.error is None and status_ is not RunStatus.SUCCEEDED:
            run.error = run_error(run, status_)
        run.finished_at = datetime.now(UTC)
        finished_mono = time.monotonic()
        await self._save_run(run, status_)
        await self._settle_writes(run)
        run.status = status_
        rt.stats.runs_finished += 1
        if rt.tel_on:
            rt.telemetry.record_run(status_)
        started = run.started_mono
        timings = {
            "queued_s": (started if started is not None else finished_mono) - run.submitted_mono,
            "run_s": 0.0 if started is None else finished_mono - started,
            "total_s": finished_mono - run.submitted_mono,
        }
        run.events.push_items(
            RUN_COMPLETED, None, RUN_COMPLETED_KEYS, (status_.value, timings["total_s"])
        )
        run.events.close()
        run_result = RunResult(
            run.run_id,
            run.user_id,
            run.session_id,
            run.plan.order,
            status_,
            {n: results[n] for n in run.plan.order},
            timings,
            run.error,
            run.persisted,
        )
        run.settle(run_result)


def _write_failed(engine: UserExecutionEngine, run: RunState, exc: BaseException) -> None:
    """The error callback of a run's queued store writes."""
    if isinstance(exc, Exception):
        engine._store_failed(run, exc)
