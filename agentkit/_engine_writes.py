"""How an engine's runs reach the cache and the store, and what every engine shares.

:class:`EngineRuntime` holds the backends of one Supervisor and the fast paths they offer
(writes taken without an await). :class:`EngineWrites` is the part of
:class:`~agentkit.engine.UserExecutionEngine` that writes: a stage's codec bytes, bound to
:func:`result_context`, go as they are to the cache under :func:`result_key` (best effort: a
fault is logged, counted and treated as a miss) and to the store (durable: the run's
``result()`` resolves only after every record is committed).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agentkit._engine_support import NO_SCOPE, pending, result_record
from agentkit._records import make_run_record
from agentkit.cache.base import Cache
from agentkit.codec import Codec
from agentkit.executor import Executor, error_type_name
from agentkit.keys import UserHasher, cache_key
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.result import SerializableAgentResult
from agentkit.run import RunState
from agentkit.sanitizer import ObjectSanitizer
from agentkit.status import RunStatus
from agentkit.store.base import Store
from agentkit.store.records import ResultRecord, RunRecord
from agentkit.telemetry import Telemetry

__all__ = ["EngineRuntime", "EngineStats", "EngineWrites", "result_context", "result_key"]

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
        # only when no subclass changed how writes are made (its set or its _set_many hook)
        if owner is not None and owner is _owner(cache_type, "set"):
            hook = _owner(cache_type, "_set_many")
            if hook is None or hook is owner:
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


class EngineWrites:
    """The writing half of a user's engine (a base of
    :class:`~agentkit.engine.UserExecutionEngine`, which holds the attributes below)."""

    __slots__ = ()

    _rt: EngineRuntime
    user_hash: str

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
        tel = rt.telemetry
        tel_on = rt.tel_on
        try:
            with tel.step_span("agentkit.cache.set") if tel_on else NO_SCOPE as span:
                if tel_on:
                    span.set(payload_bytes=len(blob))
                cache_set(key, blob, ttl=rt.limits.cache_ttl)
        except Exception as exc:
            self._cache_failed(run, name, exc)
        try:
            with (
                tel.step_span("agentkit.store.save", payload_bytes=len(blob))
                if tel_on
                else NO_SCOPE
            ):
                queue(result, blob, self._on_write_error(run))
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


def _write_failed(engine: EngineWrites, run: RunState, exc: BaseException) -> None:
    """The error callback of a run's queued store writes."""
    if isinstance(exc, Exception):
        engine._store_failed(run, exc)
