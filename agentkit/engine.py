"""One user's runs: DAG execution, timeouts, retries, cancellation, events.

For each stage attempt the engine builds a :class:`~agentkit.executor.StageJob` and awaits the
executor, which returns only a clean result and its codec bytes, bound to the stage's
:func:`result_context`. The engine then writes those same bytes to the cache and the store
(:mod:`agentkit._engine_writes`), emits events and telemetry. Downstream stages see
``result.output`` — clean — in ``ctx.upstream``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Coroutine
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
    run_error,
)
from agentkit._engine_writes import (
    EngineRuntime,
    EngineStats,
    EngineWrites,
    result_context,
    result_key,
)
from agentkit.errors import AgentTimeoutError, RunCancelledError
from agentkit.events import (
    AGENT_COMPLETED,
    AGENT_FAILED,
    AGENT_STARTED,
    RUN_COMPLETED,
    RUN_STARTED,
)
from agentkit.executor import EmitFn, StageJob, StageOutcome, error_type_name
from agentkit.result import ErrorInfo, SerializableAgentResult
from agentkit.run import RunResult, RunState
from agentkit.scheduler import Lane
from agentkit.status import AgentStatus, RunStatus

__all__ = ["EngineRuntime", "EngineStats", "UserExecutionEngine", "result_context", "result_key"]

log = logging.getLogger("agentkit.engine")


class UserExecutionEngine(EngineWrites):
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
