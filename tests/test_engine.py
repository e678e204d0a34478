"""The engine's data flow, stage control (timeouts, retries, failures), events and faults."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentkit.agent import AgentContext, SubAgent
from agentkit.errors import AgentTimeoutError, UsageError
from agentkit.events import RunEvent
from agentkit.executor import EmitFn, InProcessExecutor, StageJob, StageOutcome
from agentkit.limits import Limits
from agentkit.result import SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer
from agentkit.status import AgentStatus, RunStatus
from agentkit.supervisor import Supervisor
from agentkit.testing import RecordingCache, RecordingStore, contaminated, make_agent

KEY = b"engine-test-signing-key-0123456789"


async def _sup(agents: list[type[SubAgent]], **kw: Any) -> Supervisor:
    kw.setdefault("store", RecordingStore())
    kw.setdefault("signing_key", KEY)
    sup = Supervisor(agents, **kw)
    await sup.start()
    return sup


@pytest.fixture
async def closing() -> AsyncIterator[list[Supervisor]]:
    sups: list[Supervisor] = []
    yield sups
    for s in sups:
        await s.aclose(timeout=5)


async def test_downstream_sees_only_clean_upstream_outputs(closing: list[Supervisor]) -> None:
    seen: dict[str, Any] = {}

    def consume(ctx: AgentContext) -> str:
        seen.update(ctx.upstream)
        return "done"

    Dirty = make_agent("dirty", returns=contaminated())
    Mid = make_agent("mid", returns={"n": 1}, depends_on=["dirty"])
    Last = make_agent("last", consume, depends_on=["mid"])
    sup = await _sup([Dirty, Mid, Last])
    closing.append(sup)
    res = await sup.run("alice", ["dirty", "mid", "last"], input={"q": "x"})
    assert res.status is RunStatus.SUCCEEDED and res.ok
    # transitive upstream, and only clean values (placeholders instead of live objects)
    assert set(seen) == {"dirty", "mid"}
    assert seen["dirty"]["lock"]["__agentkit_placeholder__"] == "lock"
    assert seen["dirty"]["module"]["__agentkit_placeholder__"] == "module"
    assert not isinstance(seen["dirty"]["lock"], type(threading.Lock()))
    assert res.output("mid") == {"n": 1}
    assert list(res.stages) == ["dirty", "mid", "last"]
    assert set(res.timings) == {"queued_s", "run_s", "total_s"}


async def test_independent_stages_run_concurrently(closing: list[Supervisor]) -> None:
    A = make_agent("a", delay=0.5, returns=1)
    B = make_agent("b", delay=0.5, returns=2)
    C = make_agent("c", fn=lambda ctx: sum(ctx.upstream.values()), depends_on=["a", "b"])
    sup = await _sup([A, B, C])
    closing.append(sup)
    t0 = time.monotonic()
    res = await sup.run("u", ["c", "a", "b"])
    assert time.monotonic() - t0 < 0.95  # one after the other would take 1 s
    assert res.output("c") == 3
    assert list(res.stages) == ["a", "b", "c"]


async def test_events_order_and_payloads(closing: list[Supervisor]) -> None:
    def body(ctx: AgentContext) -> int:
        ctx.emit("progress", pct=10)
        ctx.emit(
            "progress",
            detail={"lock": threading.Lock()},
            pct=90,
            api_key="sk-live-1234567890abcdef",
        )
        return 7

    sup = await _sup(
        [make_agent("worker", body), make_agent("next", returns=1, depends_on=["worker"])]
    )
    closing.append(sup)
    handle = await sup.submit("carol", ["worker", "next"])
    events = [e async for e in handle.events()]
    await handle.result()
    kinds = [(e.kind, e.agent) for e in events]
    assert kinds == [
        ("run_started", None),
        ("agent_started", "worker"),
        ("progress", "worker"),
        ("progress", "worker"),
        ("agent_completed", "worker"),
        ("agent_started", "next"),
        ("agent_completed", "next"),
        ("run_completed", None),
    ]
    assert [e.seq for e in events] == list(range(1, 9))
    assert all(e.run_id == handle.run_id and e.user_id == "carol" for e in events)
    assert all(isinstance(e, RunEvent) and e.time > 0 for e in events)
    # agent payloads are sanitized: the lock became a placeholder
    assert events[3].data["detail"]["lock"]["__agentkit_placeholder__"] == "lock"
    assert events[3].data["api_key"] != "sk-live-1234567890abcdef"  # redacted
    assert events[-1].data["status"] == "succeeded"
    assert events[-1].timestamp.tzinfo is not None


async def test_event_buffer_drops_oldest_and_never_blocks_the_run(
    closing: list[Supervisor],
) -> None:
    def chatty(ctx: AgentContext) -> int:
        for i in range(100):
            ctx.emit("tick", i=i)
        return 1

    sup = await _sup([make_agent("chatty", chatty)], limits=Limits(event_buffer=10))
    closing.append(sup)
    handle = await sup.submit("dave", ["chatty"])
    res = await handle.result()  # nobody reads while it runs: the run still finishes
    assert res.ok
    events = [e async for e in handle.events()]
    assert len(events) == 10
    assert events[-1].kind == "run_completed"
    assert handle.events_dropped == events[-1].seq - 10
    assert [e.seq for e in events] == list(range(events[0].seq, events[-1].seq + 1))


async def test_failure_propagates_as_skipped(closing: list[Supervisor]) -> None:
    Ok = make_agent("ok", returns=1)
    Bad = make_agent("bad", raises=ValueError("no data"), depends_on=["ok"])
    After = make_agent("after", returns=2, depends_on=["bad"])
    Side = make_agent("side", returns=3, depends_on=["ok"])
    sup = await _sup([Ok, Bad, After, Side])
    closing.append(sup)
    handle = await sup.submit("erin", ["ok", "bad", "after", "side"])
    res = await handle.result()
    assert res.status is RunStatus.FAILED
    st = {n: r.status for n, r in res.stages.items()}
    assert st == {
        "ok": AgentStatus.SUCCEEDED,
        "bad": AgentStatus.FAILED,
        "side": AgentStatus.SUCCEEDED,
        "after": AgentStatus.SKIPPED,
    }
    bad = res.stages["bad"].error
    assert bad is not None and bad.type.endswith("ValueError") and "no data" in bad.message
    skipped = res.stages["after"].error
    assert skipped is not None and "'bad' did not succeed" in skipped.message
    assert res.error is not None and res.error["agent"] == "bad"
    # the skipped stage is recorded in the store too, with its status
    stored = await sup.get_run("erin", handle.run_id)
    assert stored.status is RunStatus.FAILED
    assert stored.stages["after"].status is AgentStatus.SKIPPED


async def test_stage_timeout(closing: list[Supervisor]) -> None:
    cancelled = asyncio.Event()

    async def slow(ctx: AgentContext) -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    Slow = make_agent("slow", slow, timeout=0.2)
    After = make_agent("after", returns=1, depends_on=["slow"])
    sup = await _sup([Slow, After])
    closing.append(sup)
    t0 = time.monotonic()
    res = await sup.run("u", ["slow", "after"])
    assert 0.15 < time.monotonic() - t0 < 2
    assert cancelled.is_set()  # the agent's task really stopped
    assert res.stages["slow"].status is AgentStatus.TIMED_OUT
    err = res.stages["slow"].error
    assert err is not None and "AgentTimeoutError" in err.type
    assert res.stages["after"].status is AgentStatus.SKIPPED
    assert res.status is RunStatus.FAILED


async def test_run_deadline(closing: list[Supervisor]) -> None:
    A = make_agent("a", delay=0.1, returns=1, timeout=None)
    B = make_agent("b", delay=5, returns=1, timeout=None, depends_on=["a"])
    C = make_agent("c", returns=1, depends_on=["b"])
    sup = await _sup([A, B, C], limits=Limits(run_deadline=0.5))
    closing.append(sup)
    res = await sup.run("u", ["a", "b", "c"])
    assert res.stages["a"].status is AgentStatus.SUCCEEDED
    assert res.stages["b"].status is AgentStatus.TIMED_OUT
    err = res.stages["b"].error
    assert err is not None and "deadline" in err.message
    assert res.stages["c"].status is AgentStatus.SKIPPED


async def test_retries_with_exponential_backoff(closing: list[Supervisor]) -> None:
    calls: list[float] = []

    def flaky(ctx: AgentContext) -> str:
        calls.append(time.monotonic())
        if ctx.attempt < 3:
            raise ConnectionError(f"attempt {ctx.attempt} failed")
        return f"ok on {ctx.attempt}"

    Flaky = make_agent("flaky", flaky, retries=3, retry_on=(ConnectionError,))
    sup = await _sup([Flaky], limits=Limits(retry_backoff=0.1, retry_jitter=0.5))
    closing.append(sup)
    handle = await sup.submit("u", ["flaky"])
    res = await handle.result()
    events = [e async for e in handle.events()]
    assert res.output("flaky") == "ok on 3"
    assert res.stages["flaky"].attempt == 3
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert 0.1 <= gaps[0] < 0.15 + 0.25  # base delay, plus up to 50 % jitter (+ slack)
    assert 0.2 <= gaps[1] < 0.3 + 0.25  # doubled
    failed = [e for e in events if e.kind == "agent_failed"]
    assert [e.data["will_retry"] for e in failed] == [True, True]
    assert [e.data["attempt"] for e in failed] == [1, 2]
    assert [e.data["attempt"] for e in events if e.kind == "agent_started"] == [1, 2, 3]
    assert sup.stats.retries == 2


async def test_errors_outside_retry_on_are_not_retried(closing: list[Supervisor]) -> None:
    calls = []

    def bad(ctx: AgentContext) -> None:
        calls.append(ctx.attempt)
        raise ValueError("a bug, not a blip")

    sup = await _sup([make_agent("bad", bad, retries=5, retry_on=(ConnectionError,))])
    closing.append(sup)
    res = await sup.run("u", ["bad"])
    assert calls == [1]
    assert res.stages["bad"].status is AgentStatus.FAILED


async def test_timeouts_are_retried_when_retry_on_allows(closing: list[Supervisor]) -> None:
    async def sometimes_slow(ctx: AgentContext) -> int:
        if ctx.attempt == 1:
            await asyncio.sleep(5)
        return ctx.attempt

    Agent = make_agent("ss", sometimes_slow, timeout=0.1, retries=1, retry_on=(AgentTimeoutError,))
    sup = await _sup([Agent], limits=Limits(retry_backoff=0.01))
    closing.append(sup)
    res = await sup.run("u", ["ss"])
    assert res.output("ss") == 2


async def test_threaded_agent_and_its_events(closing: list[Supervisor]) -> None:
    def work(ctx: AgentContext) -> dict[str, Any]:
        ctx.emit("step", n=1)
        return {"thread": threading.current_thread().name != "MainThread"}

    sup = await _sup([make_agent("th", work, threaded=True)])
    closing.append(sup)
    handle = await sup.submit("u", ["th"])
    res = await handle.result()
    assert res.output("th") == {"thread": True}
    assert "step" in [e.kind async for e in handle.events()]


async def test_cache_fault_never_fails_a_run(closing: list[Supervisor]) -> None:
    cache = RecordingCache(fail=True)
    sup = await _sup([make_agent("a", returns={"x": 1})], cache=cache)
    closing.append(sup)
    res = await sup.run("u", ["a"])
    assert res.ok and res.persisted
    assert sup.stats.cache_errors == 1
    assert await sup.cached_result("u", res.run_id, "a") is None
    assert (await sup.get_run("u", res.run_id)).output("a") == {"x": 1}


async def test_hook_that_raises_fails_only_its_stage(closing: list[Supervisor]) -> None:
    class Picky(SerializableAgentResult):
        @classmethod
        def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
            raise RuntimeError("hook bug")

    sup = await _sup([make_agent("p", returns=1, result_type=Picky)])
    closing.append(sup)
    res = await sup.run("u", ["p"])
    assert res.stages["p"].status is AgentStatus.FAILED
    err = res.stages["p"].error
    assert err is not None and "hook bug" in err.message


async def test_results_are_durable_in_sqlite_and_cached(
    tmp_path: Path, closing: list[Supervisor]
) -> None:
    sup = await _sup(
        [make_agent("a", returns={"v": [1, 2]}), make_agent("b", returns="x", depends_on=["a"])],
        store=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    closing.append(sup)
    res = await sup.run("frank", ["a", "b"], session_id="s-1")
    stored = await sup.get_run("frank", res.run_id)
    assert stored.status is RunStatus.SUCCEEDED and stored.session_id == "s-1"
    assert stored.output("a") == {"v": [1, 2]} and stored.output("b") == "x"
    cached = await sup.cached_result("frank", res.run_id, "a")
    assert cached is not None and cached.output == {"v": [1, 2]}
    runs = await sup.list_runs("frank")
    assert [r.run_id for r in runs] == [res.run_id]
    assert runs[0].owner == sup.owner


class _FlakyExecutor(InProcessExecutor):
    """Fails like a lost remote worker on the first ``fail`` calls, then runs normally."""

    def __init__(self, fail: int) -> None:
        super().__init__()
        self.fail = fail
        self.calls = 0

    async def run_stage(self, job: StageJob, emit: EmitFn) -> StageOutcome:
        self.calls += 1
        if self.calls <= self.fail:
            raise ConnectionResetError("worker lost")
        return await super().run_stage(job, emit)


async def test_executor_failure_is_a_failed_attempt_and_can_be_retried(
    closing: list[Supervisor],
) -> None:
    ex = _FlakyExecutor(fail=1)
    Agent = make_agent("a", returns="ok", retries=1, retry_on=(ConnectionError,))
    sup = await _sup([Agent], executor=ex, limits=Limits(retry_backoff=0.01))
    closing.append(sup)
    assert (await sup.run("u", ["a"])).output("a") == "ok"
    assert ex.calls == 2

    ex2 = _FlakyExecutor(fail=100)
    sup2 = await _sup([make_agent("a"), make_agent("b", depends_on=["a"])], executor=ex2)
    closing.append(sup2)
    res = await sup2.run("u", ["a", "b"])
    assert res.stages["a"].status is AgentStatus.FAILED
    err = res.stages["a"].error
    assert err is not None and "ConnectionResetError" in err.type
    assert res.stages["b"].status is AgentStatus.SKIPPED


async def test_telemetry_spans_of_a_run(closing: list[Supervisor]) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from agentkit.telemetry import Telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tel = Telemetry(tracer_provider=provider, record_content=True)
    Dirty = make_agent("dirty", returns={"lock": threading.Lock(), "n": 1})
    sup = await _sup([Dirty], telemetry=tel)
    closing.append(sup)
    await sup.run("user-with-a-raw-id", ["dirty"])
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert {
        "invoke_workflow dirty",
        "invoke_agent dirty",
        "agentkit.clean_result",
        "agentkit.codec.encode",
        "agentkit.cache.set",
        "agentkit.store.save",
    } <= set(spans)
    agent = spans["invoke_agent dirty"]
    for step in ("agentkit.clean_result", "agentkit.codec.encode", "agentkit.cache.set"):
        assert spans[step].parent is not None
        assert spans[step].parent.span_id == agent.context.span_id
    assert agent.parent is not None
    assert agent.parent.span_id == spans["invoke_workflow dirty"].context.span_id
    dumped = repr([dict(s.attributes or {}) for s in exporter.get_finished_spans()])
    assert "user-with-a-raw-id" not in dumped  # only the keyed hash
    assert "_thread.lock object" not in dumped  # content only after the clean hook
    assert agent.attributes is not None
    assert agent.attributes["agentkit.user.hash"] == sup.hasher.hash("user-with-a-raw-id")
    assert "__agentkit_placeholder__" in str(agent.attributes["agentkit.output"])


async def test_events_have_one_reader_at_a_time(closing: list[Supervisor]) -> None:
    started = asyncio.Event()

    async def slow(ctx: AgentContext) -> int:
        started.set()
        await asyncio.sleep(0.2)
        return 1

    sup = await _sup([make_agent("slow", slow)])
    closing.append(sup)
    handle = await sup.submit("u", ["slow"])
    first = handle.events()
    assert (await anext(first)).kind == "run_started"
    with pytest.raises(UsageError, match="one reader"):
        await anext(handle.events())
    rest = [e.kind async for e in first]
    assert rest[-1] == "run_completed"
    assert [e async for e in handle.events()] == []  # a later reader is fine: nothing left


async def test_threaded_agent_timeout(closing: list[Supervisor]) -> None:
    saw_cancel = threading.Event()

    def spin(ctx: AgentContext) -> int:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if ctx.cancelled:
                saw_cancel.set()
                return 0
            time.sleep(0.005)
        return 1

    sup = await _sup([make_agent("spin", spin, threaded=True, timeout=0.2)])
    closing.append(sup)
    t0 = time.monotonic()
    res = await sup.run("u", ["spin"])
    assert time.monotonic() - t0 < 2
    assert res.stages["spin"].status is AgentStatus.TIMED_OUT
    assert await asyncio.to_thread(saw_cancel.wait, 5)
    # the task's cancellation count is back to zero: later runs are not disturbed
    assert (await sup.run("u2", ["spin"])).stages["spin"].status is AgentStatus.TIMED_OUT


async def test_queued_store_writes_are_durable_before_the_result(
    closing: list[Supervisor], tmp_path: Path
) -> None:
    """With SQLiteStore the engine queues stage writes without awaiting each one; result()
    still resolves only after every record committed, and a failed one is reported."""
    from agentkit.errors import StoreError
    from agentkit.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "q.db")
    agents = [make_agent("a", returns=1), make_agent("b", returns=2, depends_on=("a",))]
    sup = await _sup(agents, store=store)
    closing.append(sup)
    assert sup._rt.save_results_nowait is not None
    res = await sup.run("u", ["a", "b"])
    assert res.ok and res.persisted
    raw = sqlite3.connect(tmp_path / "q.db")  # another connection sees everything at once
    assert raw.execute("SELECT status FROM runs").fetchall() == [("succeeded",)]
    assert raw.execute("SELECT count(*) FROM results").fetchone()[0] == 2
    raw.close()

    class FailingResults(SQLiteStore):
        def save_results_nowait(self, records: Any) -> asyncio.Future[None]:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(StoreError("disk on fire"))
            return fut

    failing = FailingResults(tmp_path / "f.db")
    sup2 = await _sup(agents, store=failing)
    closing.append(sup2)
    res2 = await sup2.run("u", ["a", "b"])
    assert res2.ok and not res2.persisted
    assert sup2.stats.store_errors == 2
    await store.aclose()
    await failing.aclose()


async def test_each_stage_keeps_its_own_timeout_under_one_run_timer(
    closing: list[Supervisor],
) -> None:
    """One deadline timer serves a run's sequential stages: a short timeout after a long one
    still fires on time, a long one after a short one does not fire early, and a timeout
    does not leak into the next stage or run."""
    Quick = make_agent("quick", returns=1, timeout=0.2)  # done long before its 0.2 s
    Patient = make_agent("patient", delay=0.5, returns=2, timeout=5, depends_on=["quick"])
    Hasty = make_agent("hasty", delay=5, returns=3, timeout=0.2, depends_on=["patient"])
    sup = await _sup([Quick, Patient, Hasty])
    closing.append(sup)
    t0 = time.monotonic()
    res = await sup.run("u", ["quick", "patient", "hasty"])
    elapsed = time.monotonic() - t0
    assert res.stages["quick"].status is AgentStatus.SUCCEEDED
    assert res.stages["patient"].status is AgentStatus.SUCCEEDED  # 0.2 s passed meanwhile
    assert res.stages["hasty"].status is AgentStatus.TIMED_OUT
    assert 0.65 < elapsed < 2
    # the timer's cancellation is taken back: the same user's next run is undisturbed
    again = await sup.run("u", ["quick", "patient"])
    assert again.ok


async def test_a_timed_out_stage_is_not_mistaken_for_a_cancel_in_the_next_one(
    closing: list[Supervisor],
) -> None:
    first_attempts: list[int] = []

    async def flaky(ctx: AgentContext) -> int:
        first_attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            await asyncio.sleep(5)  # times out
        return ctx.attempt

    Flaky = make_agent("flaky", flaky, timeout=0.2, retries=1)
    Free = make_agent("free", delay=0.3, returns=1, timeout=None, depends_on=["flaky"])
    sup = await _sup([Flaky, Free], limits=Limits(retry_backoff=0.01, run_deadline=None))
    closing.append(sup)
    res = await sup.run("u", ["flaky", "free"])
    assert first_attempts == [1, 2]
    assert res.ok and res.output("flaky") == 2 and res.output("free") == 1


async def test_a_result_type_overriding_from_raw_is_still_used(closing: list[Supervisor]) -> None:
    class Tagged(SerializableAgentResult):
        @classmethod
        def from_raw(cls, raw: Any, **kw: Any) -> Tagged:  # type: ignore[override]
            return super().from_raw({"tagged": raw}, **kw)

    sup = await _sup([make_agent("t", returns=3, result_type=Tagged)])
    closing.append(sup)
    res = await sup.run("u", ["t"])
    assert res.output("t") == {"tagged": 3}
    stored = await sup.get_run("u", res.run_id)
    assert stored.output("t") == {"tagged": 3}


async def test_memory_cache_and_sqlite_take_stage_writes_without_awaits(
    closing: list[Supervisor], tmp_path: Path
) -> None:
    from agentkit.cache.memory import MemoryCache

    small = MemoryCache(max_bytes=300)  # smaller than one result: every write is refused
    sup = await _sup(
        [make_agent("a", returns={"x": 1}), make_agent("b", returns={"y": 2}, depends_on=("a",))],
        cache=small,
        store=f"sqlite:///{tmp_path / 'r.db'}",
    )
    closing.append(sup)
    assert sup._rt.persist_now
    res = await sup.run("u", ["a", "b"])
    assert res.ok and res.persisted  # a cache fault never fails a run
    assert sup.stats.cache_errors == 2 and small.stats.oversize == 2
    assert (await sup.get_run("u", res.run_id)).output("b") == {"y": 2}

    roomy = MemoryCache()
    sup2 = await _sup([make_agent("a", returns={"x": 1})], cache=roomy, store=sup.store)
    closing.append(sup2)
    res2 = await sup2.run("u", ["a"])
    assert (await sup2.cached_result("u", res2.run_id, "a")).output == {"x": 1}  # type: ignore[union-attr]


def _memory_cache_subclasses(seen: list[str]) -> dict[str, type]:
    from agentkit.cache.memory import MemoryCache

    class OverridesSet(MemoryCache):
        async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
            seen.append(key)
            await super().set(key, value, ttl=ttl)

    class HooksSetMany(MemoryCache):
        async def _set_many(self, items: list[tuple[str, bytes]], ttl: float | None) -> None:
            seen.extend(k for k, _ in items)
            await super()._set_many(items, ttl)

    return {"overrides set": OverridesSet, "hooks _set_many": HooksSetMany}


@pytest.mark.parametrize("which", ["overrides set", "hooks _set_many"])
async def test_a_memory_cache_subclass_that_changes_writes_is_awaited(
    closing: list[Supervisor], tmp_path: Path, which: str
) -> None:
    seen: list[str] = []
    cache = _memory_cache_subclasses(seen)[which]()
    sup = await _sup(
        [make_agent("a", returns={"x": 1})], cache=cache, store=f"sqlite:///{tmp_path / 'r.db'}"
    )
    closing.append(sup)
    assert not sup._rt.persist_now  # set_nowait would bypass the subclass
    res = await sup.run("u", ["a"])
    assert res.ok and sup.stats.cache_errors == 0
    assert len(seen) == 1 and seen[0].endswith(f"{res.run_id}:a")
