"""Test doubles and helpers for agent authors (and agentkit's own tests).

* :class:`RecordingCache` / :class:`RecordingStore`: in-memory backends that record every
  write and check design invariant 1 on it — the value is codec bytes of a
  ``SerializableAgentResult`` whose output is clean. Violations are collected (the engine
  swallows cache errors) and raised by :meth:`~RecordingCache.assert_invariant`.
* :func:`make_agent`: build a SubAgent class from a function or a fixed return value.
* :func:`run_agent`: run one agent the way the engine does (fresh instance, clean hook,
  codec) and get its clean result back.
* :func:`assert_clean` / :func:`contaminated`: check a value is in the clean domain / build
  a value full of live objects.

Example::

    from agentkit.testing import run_agent

    async def test_triage() -> None:
        result = await run_agent(Triage, {"question": "why is my bill high?"})
        assert result.ok and result.output["category"] == "cost"
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import decimal
import inspect
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from agentkit.agent import AgentContext, SubAgent
from agentkit.cache.base import BaseCache
from agentkit.codec import Codec
from agentkit.engine import result_context
from agentkit.errors import CacheError
from agentkit.executor import ExecutorRuntime, InProcessExecutor, StageJob
from agentkit.registry import AgentRegistry
from agentkit.result import SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.base import BaseStore
from agentkit.store.records import ResultRecord, RunRecord, StoredRun
from agentkit.telemetry import Telemetry

__all__ = [
    "RecordingCache",
    "RecordingStore",
    "assert_clean",
    "contaminated",
    "make_agent",
    "run_agent",
]

_SCALAR_TYPES = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    uuid.UUID,
    decimal.Decimal,
)


def assert_clean(value: Any, path: str = "$") -> None:
    """Raise AssertionError unless ``value`` is in the clean value domain (exact types)."""
    t = type(value)
    if t in _SCALAR_TYPES:
        return
    if t is list or t is tuple:
        for i, v in enumerate(value):
            assert_clean(v, f"{path}[{i}]")
        return
    if t is set or t is frozenset:
        for v in value:
            assert_clean(v, f"{path}{{}}")
        return
    if t is dict:
        for k, v in value.items():
            assert_clean(k, f"{path}.<key>")
            assert_clean(v, f"{path}.{k}")
        return
    raise AssertionError(f"{path}: {t.__module__}.{t.__qualname__} is not a clean value")


def contaminated() -> dict[str, Any]:
    """A result full of live objects that break pickle and JSON (module, lock, lambda,
    socket, thread, generator, logger, event loop policy…)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.close()

    def gen() -> Any:
        yield 1

    return {
        "answer": 42,
        "module": socket,
        "lock": threading.Lock(),
        "callback": lambda x: x,
        "socket": sock,
        "thread": threading.current_thread(),
        "generator": gen(),
        "logger": logging.getLogger("agentkit.test"),
        "nested": {"rlock": threading.RLock(), "items": [1, "two", threading.Event()]},
        "api_key": "sk-test-0123456789abcdef0123456789abcdef",
    }


class _Checker:
    def __init__(self, codec: Codec | None) -> None:
        self.codec = codec
        self.violations: list[str] = []
        self.decoded: list[SerializableAgentResult] = []

    def check(self, blob: object, context: bytes, where: str) -> None:
        if not isinstance(blob, bytes):
            self.violations.append(f"{where}: got {type(blob).__name__}, not codec bytes")
            return
        if self.codec is None:
            return
        try:
            result: SerializableAgentResult = self.codec.decode_result(blob, context=context)
        except Exception as exc:
            self.violations.append(f"{where}: does not decode: {type(exc).__name__}: {exc}")
            return
        if not isinstance(result, SerializableAgentResult):
            self.violations.append(f"{where}: decodes to {type(result).__name__}")
            return
        try:
            assert_clean(result.output)
        except AssertionError as exc:
            self.violations.append(f"{where}: {exc}")
        self.decoded.append(result)

    def assert_invariant(self) -> None:
        if self.violations:
            raise AssertionError("invariant 1 violated:\n" + "\n".join(self.violations))


class RecordingCache(BaseCache):
    """An in-memory cache that records every write and checks invariant 1 on it.

    Args:
        codec: when given, every written blob must decode (bound to its context: the
            engine's :func:`~agentkit.engine.result_context` for a stage result's key, else
            the key) into a ``SerializableAgentResult`` with a clean output.
        fail: make every operation raise :class:`~agentkit.CacheError` (to test that a cache
            fault never fails a run).
    """

    def __init__(self, codec: Codec | None = None, *, fail: bool = False) -> None:
        super().__init__(default_ttl=None)
        self.data: dict[str, bytes] = {}
        self.writes: list[tuple[str, bytes]] = []
        self.fail = fail
        self._checker = _Checker(codec)

    @property
    def violations(self) -> list[str]:
        """Every invariant-1 violation seen so far."""
        return self._checker.violations

    @property
    def decoded(self) -> list[SerializableAgentResult]:
        """The decoded results of every checked write."""
        return self._checker.decoded

    def assert_invariant(self) -> None:
        """Raise AssertionError listing every violation, if any."""
        self._checker.assert_invariant()

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        await self.set_many([(key, value)], ttl=ttl)

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        for key, value in items:
            self._checker.check(value, _context_of_key(key), key)
            self.writes.append((key, value))
        await super().set_many(items, ttl=ttl)

    async def _get(self, key: str) -> bytes | None:
        if self.fail:
            raise CacheError("RecordingCache(fail=True)")
        return self.data.get(key)

    async def _set_many(self, items: list[tuple[str, bytes]], ttl: float | None) -> None:
        if self.fail:
            raise CacheError("RecordingCache(fail=True)")
        self.data.update(items)

    async def _delete(self, key: str) -> bool:
        if self.fail:
            raise CacheError("RecordingCache(fail=True)")
        return self.data.pop(key, None) is not None


def _context_of_key(key: object) -> bytes:
    """The engine's codec context of the stage result cached under ``key``
    (``agentkit:u:{user_hash}:{run_id}:{agent}``); the key itself for any other key."""
    if not isinstance(key, str):
        return b""
    parts = key.split(":")
    if len(parts) == 5 and parts[:2] == ["agentkit", "u"]:
        return result_context(parts[3], parts[4])
    return key.encode()


class RecordingStore(BaseStore):
    """An in-memory store that records every write and checks invariant 1 on results.

    Reads are scoped by user like a real store.

    Args:
        codec: when given, every result blob must decode (bound to the engine's context,
            :func:`agentkit.engine.result_context`) into a ``SerializableAgentResult`` with a
            clean output.
    """

    def __init__(self, codec: Codec | None = None) -> None:
        super().__init__()
        self.runs: dict[str, RunRecord] = {}
        self.results: dict[tuple[str, str], ResultRecord] = {}
        self.run_writes: list[RunRecord] = []
        self.result_writes: list[ResultRecord] = []
        self._checker = _Checker(codec)

    @property
    def violations(self) -> list[str]:
        """Every invariant-1 violation seen so far."""
        return self._checker.violations

    @property
    def decoded(self) -> list[SerializableAgentResult]:
        """The decoded results of every checked write."""
        return self._checker.decoded

    def assert_invariant(self) -> None:
        """Raise AssertionError listing every violation, if any."""
        self._checker.assert_invariant()

    async def save_results(self, records: Sequence[ResultRecord]) -> None:
        for rec in records:
            if isinstance(rec, ResultRecord):
                self._checker.check(
                    rec.blob,
                    result_context(rec.run_id, rec.agent),
                    f"{rec.run_id}/{rec.agent}",
                )
            else:
                self._checker.violations.append(f"save_results got {type(rec).__name__}")
        await super().save_results(records)

    async def _save_run(self, run: RunRecord) -> None:
        self.run_writes.append(run)
        self.runs[run.run_id] = run

    async def _save_results(self, records: list[ResultRecord]) -> None:
        for rec in records:
            self.result_writes.append(rec)
            self.results[(rec.run_id, rec.agent)] = rec

    async def _get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        run = self.runs.get(run_id)
        if run is None or run.user_id != user_id:
            return None
        results = [r for (rid, _), r in self.results.items() if rid == run_id]
        return StoredRun(run=run, results=results)

    async def _list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[RunRecord]:
        out = [
            r
            for r in self.runs.values()
            if r.user_id == user_id
            and (status is None or r.status == status)
            and (since is None or r.submitted_at >= since)
            and (until is None or r.submitted_at < until)
        ]
        out.sort(key=lambda r: r.submitted_at, reverse=True)
        return out[:limit]

    async def _list_results(
        self,
        user_id: str,
        *,
        run_id: str | None,
        agent: str | None,
        status: AgentStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[ResultRecord]:
        out = [
            r
            for r in self.results.values()
            if r.user_id == user_id
            and (run_id is None or r.run_id == run_id)
            and (agent is None or r.agent == agent)
            and (status is None or r.status == status)
        ]
        return out[:limit]


def make_agent(
    name: str,
    fn: Callable[[AgentContext], Any] | None = None,
    *,
    returns: Any = None,
    raises: BaseException | None = None,
    delay: float = 0.0,
    depends_on: Sequence[str] = (),
    timeout: float | None = 30.0,
    retries: int = 0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    version: str = "1",
    result_type: type[SerializableAgentResult] = SerializableAgentResult,
    threaded: bool = False,
) -> type[SubAgent]:
    """Build a SubAgent class named ``name``.

    ``fn(ctx)`` (sync or async) computes the result; without it the agent sleeps ``delay``
    seconds, then raises ``raises`` or returns ``returns``. ``threaded=True`` makes ``run`` a
    plain ``def`` (runs in a worker thread; ``fn`` must then be sync).
    """

    async def _default(ctx: AgentContext) -> Any:
        if delay:
            await asyncio.sleep(delay)
        if raises is not None:
            raise raises
        return returns

    body = fn if fn is not None else _default
    attrs: dict[str, Any] = {
        "name": name,
        "version": version,
        "depends_on": tuple(depends_on),
        "timeout": timeout,
        "retries": retries,
        "retry_on": retry_on,
        "result_type": result_type,
        "__module__": __name__,
    }
    if threaded:

        def run_sync(self: SubAgent, ctx: AgentContext) -> Any:
            return body(ctx)

        attrs["run"] = run_sync
    else:

        async def run_async(self: SubAgent, ctx: AgentContext) -> Any:
            value = body(ctx)
            if inspect.isawaitable(value):
                value = await value
            return value

        attrs["run"] = run_async
    return type(f"Agent_{name.replace('-', '_').replace('.', '_')}", (SubAgent,), attrs)


async def run_agent(
    agent_cls: type[SubAgent],
    input: Any = None,
    *,
    upstream: Mapping[str, Any] | None = None,
    user_id: str = "test-user",
    run_id: str | None = None,
    codec: Codec | None = None,
    sanitizer: ObjectSanitizer | None = None,
    events: list[tuple[str, dict[str, Any]]] | None = None,
) -> SerializableAgentResult:
    """Run ``agent_cls`` once, exactly as the engine does, and return its clean result.

    The result is the decoded codec bytes (so what you get is what a cache or store would
    hold). ``events`` collects the agent's ``ctx.emit`` calls. No timeout or retry applies.
    """
    codec = codec if codec is not None else Codec(layers=("json", "str"))
    executor = InProcessExecutor()
    await executor.start(
        ExecutorRuntime(
            AgentRegistry([agent_cls]),
            codec,
            sanitizer if sanitizer is not None else ObjectSanitizer(),
            Telemetry.noop(),
        )
    )
    rid = run_id or uuid.uuid4().hex
    context = result_context(rid, agent_cls.name)
    job = StageJob(
        agent=agent_cls.name,
        agent_version=agent_cls.version,
        run_id=rid,
        user_id=user_id,
        user_hash="test",
        session_id=None,
        input=input,
        upstream=dict(upstream or {}),
        attempt=1,
        timeout=None,
        deadline=None,
        blob_context=context,
    )

    def emit(kind: str, data: dict[str, Any]) -> None:
        if events is not None:
            events.append((kind, data))

    outcome = await executor.run_stage(job, emit)
    decoded: SerializableAgentResult = codec.decode_result(
        outcome.blob, context=context, result_type=agent_cls.result_type
    )
    assert_clean(decoded.output)
    return decoded
