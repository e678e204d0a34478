"""The Supervisor: the one entry point callers use to run agent pipelines for many users.

::

    async with Supervisor(agents=registry, store="sqlite:///runs.db", signing_key=key) as sup:
        handle = await sup.submit("user-42", ["triage", "data", "reporting"], input={...})
        async for event in handle.events():
            ...
        result = await handle.result()

It owns one :class:`~agentkit.engine.UserExecutionEngine` per active user (created on demand,
reused, evicted when idle), the global capacity limit, fair round-robin scheduling across
users, per-user queue bounds (backpressure), and a graceful drain on :meth:`aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

from agentkit._dag import Plan, build_plan
from agentkit._run_ids import RunIds
from agentkit._supervisor_backends import (
    DEFAULT_OUTBOX_DIR,
    backend,
    resolve_executor,
    store_with_outbox,
)
from agentkit.agent import SubAgent
from agentkit.backends import cache_from_url
from agentkit.cache.base import Cache
from agentkit.codec import Codec
from agentkit.engine import (
    EngineRuntime,
    EngineStats,
    UserExecutionEngine,
    result_context,
    result_key,
)
from agentkit.errors import (
    ConfigurationError,
    QueueFullError,
    RunNotFoundError,
    SupervisorClosedError,
    TamperedError,
)
from agentkit.executor import Executor, ExecutorRuntime
from agentkit.keys import UserHasher, derive_key, validate_user_id
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.result import SerializableAgentResult
from agentkit.run import RunHandle, RunResult, RunState
from agentkit.sanitizer import ObjectSanitizer
from agentkit.scheduler import FairScheduler, Lane
from agentkit.signing import build_codec
from agentkit.status import RunStatus
from agentkit.store.base import Store
from agentkit.store.records import RunRecord, StoredRun
from agentkit.telemetry import Telemetry

__all__ = ["DEFAULT_OUTBOX_DIR", "Supervisor", "build_codec"]

log = logging.getLogger("agentkit.supervisor")
#: a backend type (Cache or Store) chosen by URL or given as an object
B = TypeVar("B")

_PLAN_CACHE_SIZE = 256


class Supervisor:
    """Schedules users' runs on per-user engines; the only entry point for callers.

    Args:
        agents: an :class:`~agentkit.AgentRegistry`, or SubAgent classes to register.
        cache: a cache URL (``memory://``, ``redis://…``) or a :class:`~agentkit.Cache`.
        store: a store URL (``sqlite:///runs.db``, ``postgresql://…``) or a
            :class:`~agentkit.Store`.
        signing_key: root key (at least 16 bytes). Sub-keys are derived from it for the codec
            (results are HMAC-signed, and the pickle layer is enabled) and for the keyed user
            hash. Without it the codec writes unsigned JSON (pickle is off) and the user hash
            key is random per process, so cache keys do not survive a restart and are not
            shared between processes.
        limits: concurrency, queue, time and buffer bounds (:class:`~agentkit.Limits`).
        executor: where stages run: an :class:`~agentkit.executor.Executor`, a
            ``dask://host:8786`` URL, or None for in-process.
        telemetry: an :class:`agentkit.telemetry.Telemetry`; None records nothing.
        codec: a ready :class:`~agentkit.codec.Codec` (e.g. with a keyring for rotation);
            overrides the one derived from ``signing_key``.
        sanitizer: the :class:`~agentkit.sanitizer.ObjectSanitizer` used by the clean hook
            and for event payloads; None builds a default one.
        outbox: for a remote store given as a URL (anything but ``sqlite://``): where its
            local durable outbox goes (:class:`~agentkit.store.outbox.OutboxStore`), so a
            store outage spools records instead of failing runs. ``None`` (default) uses
            ``agentkit-outbox/<scheme>-<hash of the URL>.db`` in the working directory; a
            path sets the file (one process per file); ``False`` turns the outbox off. A
            store given as an object is used as it is (wrap it in ``OutboxStore`` yourself).

    Raises:
        UnknownBackendError: a URL names a scheme no backend is registered for.
        ConfigurationError: an option is invalid.

    Backends given as URLs are owned (started and closed by the supervisor); backends given
    as objects are started but left open for their owner to close.
    """

    def __init__(
        self,
        agents: AgentRegistry | Iterable[type[SubAgent]] = (),
        *,
        cache: str | Cache = "memory://",
        store: str | Store = "sqlite:///agentkit.db",
        signing_key: bytes | None = None,
        limits: Limits | None = None,
        executor: Executor | str | None = None,
        telemetry: Telemetry | None = None,
        codec: Codec | None = None,
        sanitizer: ObjectSanitizer | None = None,
        outbox: str | os.PathLike[str] | bool | None = None,
    ) -> None:
        self.registry = agents if isinstance(agents, AgentRegistry) else AgentRegistry(agents)
        self.limits = limits if limits is not None else Limits()
        if not isinstance(self.limits, Limits):
            raise ConfigurationError("limits must be an agentkit.Limits instance")
        if signing_key is not None and (
            not isinstance(signing_key, bytes) or len(signing_key) < 16
        ):
            raise ConfigurationError("signing_key must be bytes of at least 16 bytes, or None")
        self._owned: list[Any] = []
        self.telemetry = telemetry if telemetry is not None else Telemetry.noop()
        self.cache: Cache = self._backend(cache, cache_from_url, "cache")
        self.store: Store = self._store(store, outbox)
        self.executor: Executor = resolve_executor(executor)
        if executor is None or isinstance(executor, str):
            self._owned.append(self.executor)
        self.codec = codec if codec is not None else build_codec(signing_key)
        self.hasher = UserHasher(
            None if signing_key is None else derive_key(signing_key, "user-hash")
        )
        self.sanitizer = sanitizer if sanitizer is not None else ObjectSanitizer()
        #: unique id of this supervisor process (stored as each run's ``owner``)
        self.owner = uuid.uuid4().hex
        self._run_ids = RunIds()
        self.stats = EngineStats()
        self._rt = EngineRuntime(
            registry=self.registry,
            executor=self.executor,
            codec=self.codec,
            sanitizer=self.sanitizer,
            cache=self.cache,
            store=self.store,
            telemetry=self.telemetry,
            limits=self.limits,
            hasher=self.hasher,
            owner=self.owner,
            stats=self.stats,
        )
        self._engines: dict[str, UserExecutionEngine] = {}
        self._scheduler: FairScheduler[RunState] = FairScheduler(
            self.limits.max_active_runs, self.limits.max_runs_per_user, self._start_run
        )
        self._lane_owner: dict[int, UserExecutionEngine] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._plans: dict[tuple[str, ...], Plan] = {}
        self._live = 0
        self._all_done: asyncio.Event | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._started = False
        self._closing = False
        self._closed = False

    def _backend(self, value: B | str | None, from_url: Callable[[str], B], kind: str) -> B:
        return backend(value, from_url, kind, self._owned)

    def _store(self, value: str | Store, outbox: str | os.PathLike[str] | bool | None) -> Store:
        return store_with_outbox(value, outbox, self._owned, self.telemetry.set_outbox_depth)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the store and the executor; called by ``async with``."""
        if self._started:
            return
        if self._closing:
            raise SupervisorClosedError("this Supervisor was closed; create a new one")
        try:
            self.telemetry.bind_backends(self.cache, self.store)
            await self.store.start()
            await self.executor.start(
                ExecutorRuntime(self.registry, self.codec, self.sanitizer, self.telemetry)
            )
        except BaseException:
            await self._close_owned()
            raise
        self._all_done = asyncio.Event()
        self._all_done.set()
        self._sweeper = asyncio.create_task(self._sweep(), name="agentkit-engine-sweeper")
        self._started = True

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self, timeout: float | None = None) -> None:
        """Drain and shut down.

        Stops accepting runs (``submit`` raises :class:`~agentkit.SupervisorClosedError`),
        lets queued and running runs finish for up to ``timeout`` seconds
        (``Limits.drain_timeout`` by default), then cancels the rest and records them as
        ``interrupted``. Closes the backends it owns. Idempotent.
        """
        if self._closed or self._closing:
            return
        self._closing = True
        drain = self.limits.drain_timeout if timeout is None else timeout
        try:
            if self._started and self._all_done is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(drain):
                        await self._all_done.wait()
                if self._live:
                    log.warning("drain timed out; interrupting %d run(s)", self._live)
                    await self._interrupt_all()
        finally:
            if self._sweeper is not None:
                self._sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sweeper
            await self._close_owned()
            self._engines.clear()
            self._closed = True

    async def _close_owned(self) -> None:
        for obj in reversed(self._owned):
            try:
                await obj.aclose()
            except Exception as exc:
                log.warning("closing %s failed: %s", type(obj).__name__, exc)

    async def _interrupt_all(self) -> None:
        runs = [(e, r) for e in list(self._engines.values()) for r in list(e.runs.values())]
        await self._stop_many(runs, RunStatus.INTERRUPTED)

    # --- submitting ------------------------------------------------------------------------

    def plan(self, pipeline: Sequence[str]) -> Plan:
        """Validate ``pipeline`` and return its plan (cached).

        Raises:
            UnknownAgentError, MissingUpstreamError, DependencyCycleError, PipelineError.
        """
        key = tuple(pipeline) if not isinstance(pipeline, str) else (pipeline,)
        plan = self._plans.get(key)
        if plan is None:
            plan = build_plan(self.registry, pipeline)
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.pop(next(iter(self._plans)))
            self._plans[key] = plan
        return plan

    async def submit(
        self,
        user_id: str,
        pipeline: Sequence[str],
        *,
        input: Any = None,
        session_id: str | None = None,
    ) -> RunHandle:
        """Queue a run of ``pipeline`` for ``user_id``; returns at once with its handle.

        The run is recorded in the store as ``queued`` before this returns.

        Raises:
            InvalidUserIdError: ``user_id`` is not usable.
            UnknownAgentError, MissingUpstreamError, DependencyCycleError, PipelineError:
                the pipeline cannot run (nothing was started).
            QueueFullError: this user already has ``Limits.max_queued_per_user`` runs queued.
            SupervisorClosedError: :meth:`aclose` has started.
        """
        if self._closing:
            raise SupervisorClosedError("the Supervisor is closing and accepts no new runs")
        if not self._started:
            raise SupervisorClosedError(
                "the Supervisor is not started; use 'async with Supervisor(...)' or await start()"
            )
        validate_user_id(user_id)
        if session_id is not None and not isinstance(session_id, str):
            raise ConfigurationError("session_id must be a str or None")
        plan = self.plan(pipeline)
        engine = self._engine_for(user_id)
        queued = len(engine.runs) - engine.lane.active
        if queued >= self.limits.max_queued_per_user:
            raise QueueFullError(
                f"this user already has {queued} runs queued (Limits.max_queued_per_user="
                f"{self.limits.max_queued_per_user}); wait for some to finish and retry"
            )
        run = RunState(
            run_id=self._run_ids.next(),
            user_id=user_id,
            session_id=session_id,
            input=input,
            plan=plan,
            submitted_at=datetime.now(UTC),
            submitted_mono=time.monotonic(),
            event_buffer=self.limits.event_buffer,
            otel_parent=self.telemetry.capture_context(),
        )
        engine.runs[run.run_id] = run
        self._live += 1
        assert self._all_done is not None
        self._all_done.clear()
        try:
            await self.store.save_run(engine.run_record(run, RunStatus.QUEUED))
        except BaseException:
            self._forget(engine, run)
            raise
        if run.cancel_reason is not None:  # cancelled (or drained) while being recorded
            await engine.finish_unstarted(run)
            self._forget(engine, run)
        else:
            self._scheduler.enqueue(engine.lane, run)
        return RunHandle(run, self._cancel_run)

    async def run(
        self,
        user_id: str,
        pipeline: Sequence[str],
        *,
        input: Any = None,
        session_id: str | None = None,
    ) -> RunResult:
        """Submit and wait: ``await (await submit(...)).result()``."""
        handle = await self.submit(user_id, pipeline, input=input, session_id=session_id)
        return await handle.result()

    # --- engines and scheduling --------------------------------------------------------------

    def _engine_for(self, user_id: str) -> UserExecutionEngine:
        engine = self._engines.get(user_id)
        if engine is None:
            engine = UserExecutionEngine(user_id, self._rt)
            self._engines[user_id] = engine
            self._lane_owner[id(engine.lane)] = engine
            self.stats.engines_created += 1
            self.telemetry.set_active_engines(len(self._engines))
        return engine

    @property
    def active_engines(self) -> int:
        """Per-user engines currently held (active users plus idle ones not yet evicted)."""
        return len(self._engines)

    @property
    def active_runs(self) -> int:
        """Runs executing now (all users)."""
        return self._scheduler.active

    def _start_run(self, lane: Lane[RunState], run: RunState) -> None:
        engine = self._lane_owner[id(lane)]
        task = asyncio.get_running_loop().create_task(
            self._run_task(engine, run), context=run.pyctx
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard, context=run.pyctx)  # no context copy

    async def _run_task(self, engine: UserExecutionEngine, run: RunState) -> None:
        try:
            await engine.execute(run)
        except BaseException as exc:  # execute() handles everything; this is a last resort
            log.exception("run %s crashed in the engine", run.run_id)
            run.settle(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._scheduler.release(engine.lane)
            self._forget(engine, run)

    def _forget(self, engine: UserExecutionEngine, run: RunState) -> None:
        if engine.runs.pop(run.run_id, None) is not None:
            self._live -= 1
            if self._live == 0 and self._all_done is not None:
                self._all_done.set()
        engine.last_active = time.monotonic()
        if self.limits.engine_idle_ttl == 0:
            self._evict(engine)

    def _evict(self, engine: UserExecutionEngine) -> None:
        if engine.idle and self._engines.get(engine.user_id) is engine:
            del self._engines[engine.user_id]
            del self._lane_owner[id(engine.lane)]
            self.stats.engines_evicted += 1
            self.telemetry.set_active_engines(len(self._engines))

    async def _sweep(self) -> None:
        ttl = self.limits.engine_idle_ttl
        interval = min(max(ttl / 2, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            self.evict_idle(ttl)

    def evict_idle(self, older_than: float = 0.0) -> int:
        """Evict engines idle for at least ``older_than`` seconds; returns how many."""
        cutoff = time.monotonic() - older_than
        stale = [e for e in self._engines.values() if e.idle and e.last_active <= cutoff]
        for engine in stale:
            self._evict(engine)
        return len(stale)

    # --- cancelling ------------------------------------------------------------------------

    async def _cancel_run(self, run: RunState) -> bool:
        engine = self._engines.get(run.user_id)
        if run.done.done() or engine is None or run.run_id not in engine.runs:
            await asyncio.shield(run.done)
            return False
        await self._stop(engine, run, RunStatus.CANCELLED)
        return True

    async def _stop(self, engine: UserExecutionEngine, run: RunState, reason: RunStatus) -> None:
        await self._stop_many([(engine, run)], reason)

    async def _stop_many(
        self, runs: list[tuple[UserExecutionEngine, RunState]], reason: RunStatus
    ) -> None:
        runs = [(e, r) for e, r in runs if not r.done.done()]
        # queued ones first, so none of them starts while running ones are being stopped
        unstarted = [(e, r) for e, r in runs if self._scheduler.remove(e.lane, r)]
        dequeued = {id(r) for _, r in unstarted}
        for _, r in runs:
            if id(r) not in dequeued:
                r.request_cancel(reason)
        for e, r in unstarted:
            r.cancel_reason = reason
            await e.finish_unstarted(r)
            self._forget(e, r)
        for _, r in runs:
            with contextlib.suppress(Exception):
                await asyncio.shield(r.done)

    async def cancel_user(self, user_id: str) -> int:
        """Cancel every queued and running run of ``user_id`` and wait until they stopped.

        Returns:
            How many runs were cancelled.
        """
        validate_user_id(user_id)
        engine = self._engines.get(user_id)
        if engine is None:
            return 0
        runs = [(engine, r) for r in engine.runs.values() if not r.done.done()]
        await self._stop_many(runs, RunStatus.CANCELLED)
        return len(runs)

    # --- reads (always scoped by user) -------------------------------------------------------

    async def get_run(self, user_id: str, run_id: str) -> RunResult:
        """The stored run ``run_id`` of ``user_id``, with its stage results decoded.

        Raises:
            RunNotFoundError: no such run *for this user* (another user's run id included).
        """
        validate_user_id(user_id)
        stored = (
            await self.store.get_run(user_id, run_id)
            if isinstance(run_id, str) and run_id
            else None
        )
        if stored is None or stored.run.user_id != user_id:
            raise RunNotFoundError(
                f"no run {run_id!r} for this user; list this user's runs with list_runs()"
            )
        return self._from_stored(stored)

    async def results(self, user_id: str, run_id: str) -> dict[str, SerializableAgentResult]:
        """The stored stage results of ``user_id``'s run ``run_id``, by agent name."""
        return (await self.get_run(user_id, run_id)).stages

    async def list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """``user_id``'s runs, newest first, optionally filtered."""
        validate_user_id(user_id)
        return await self.store.list_runs(
            user_id, status=status, since=since, until=until, limit=limit
        )

    async def cached_result(
        self, user_id: str, run_id: str, agent: str
    ) -> SerializableAgentResult | None:
        """``user_id``'s cached stage result, or None on a miss (cache errors are misses)."""
        validate_user_id(user_id)
        try:
            key = result_key(self.hasher.hash(user_id), run_id, agent)
            blob = await self.cache.get(key)
            if blob is None:
                return None
            result = self.codec.decode_result(
                blob, context=result_context(run_id, agent), result_type=self._result_type(agent)
            )
            if result.user_id != user_id:  # authentic, but another user's: planted here
                raise TamperedError(f"the cached result under {key!r} is another user's")
            return result
        except Exception as exc:
            self.telemetry.record_cache_error("get")
            log.warning("cache read failed: %s", type(exc).__name__)
            return None

    def _result_type(self, agent: str) -> type[SerializableAgentResult]:
        """The result type of a registered agent; the base class for one no longer known."""
        if agent in self.registry:
            return self.registry.get(agent).result_type
        return SerializableAgentResult

    def _from_stored(self, stored: StoredRun) -> RunResult:
        run = stored.run
        stages: dict[str, SerializableAgentResult] = {}
        for rec in stored.results:
            result = self.codec.decode_result(
                rec.blob,
                context=result_context(rec.run_id, rec.agent),
                result_type=self._result_type(rec.agent),
            )
            if result.user_id != run.user_id:
                raise TamperedError(
                    f"the stored result of stage {rec.agent!r} of run {rec.run_id} is another "
                    "user's: the store was written to outside agentkit"
                )
            stages[rec.agent] = result
        order = [n for n in run.pipeline if n in stages] + [
            n for n in stages if n not in run.pipeline
        ]
        timings: dict[str, float] = {}
        if run.started_at is not None and run.finished_at is not None:
            timings["run_s"] = (run.finished_at - run.started_at).total_seconds()
        if run.finished_at is not None:
            timings["total_s"] = (run.finished_at - run.submitted_at).total_seconds()
        return RunResult(
            run_id=run.run_id,
            user_id=run.user_id,
            session_id=run.session_id,
            pipeline=tuple(run.pipeline),
            status=run.status,
            stages={n: stages[n] for n in order},
            timings=timings,
            error=run.error,
        )
