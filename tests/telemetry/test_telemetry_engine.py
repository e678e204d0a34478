"""Acceptance: the span tree and metrics of real Supervisor runs (in-memory exporters)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from otel_helpers import Otel, make_otel

from agentkit.agent import AgentContext, SubAgent
from agentkit.events import AGENT_STARTED
from agentkit.keys import UserHasher, derive_key
from agentkit.limits import Limits
from agentkit.status import AgentStatus, RunStatus
from agentkit.supervisor import Supervisor

KEY = b"telemetry-test-signing-key-0123456789"
PIPELINE = ["collect", "enrich", "flaky", "broken"]
STEPS = (
    "agentkit.clean_result",
    "agentkit.codec.encode",
    "agentkit.cache.set",
    "agentkit.store.save",
)


class Collect(SubAgent):
    name = "collect"
    version = "3"

    async def run(self, ctx: AgentContext) -> Any:
        ctx.emit("progress", pct=50, note="halfway")
        # a live object the clean hook must replace
        return {"total": 12, "lock": threading.Lock()}


class Enrich(SubAgent):
    name = "enrich"
    depends_on = ("collect",)

    def run(self, ctx: AgentContext) -> Any:  # plain def: runs in a worker thread
        ctx.emit("progress", pct=100)
        return {"enriched": ctx.upstream["collect"]["total"] * 2}


class Flaky(SubAgent):
    name = "flaky"
    depends_on = ("collect",)
    retries = 1
    calls: ClassVar[dict[str, int]] = {}

    async def run(self, ctx: AgentContext) -> Any:
        if ctx.attempt == 1:
            raise ConnectionError("upstream reset")
        return "ok"


class Broken(SubAgent):
    name = "broken"
    depends_on = ("enrich",)

    async def run(self, ctx: AgentContext) -> Any:
        raise ValueError("cannot compute")


class Slow(SubAgent):
    name = "slow"
    timeout = 0.05

    async def run(self, ctx: AgentContext) -> Any:
        await anyio.sleep(5)


class Sleeper(SubAgent):
    name = "sleeper"
    timeout = None

    async def run(self, ctx: AgentContext) -> Any:
        await anyio.sleep(30)


AGENTS: list[type[SubAgent]] = [Collect, Enrich, Flaky, Broken, Slow, Sleeper]
LIMITS = Limits(retry_backoff=0.01, retry_jitter=0.0, max_runs_per_user=8, max_active_runs=64)


@pytest.fixture
async def sup_otel(tmp_path: Path) -> AsyncIterator[tuple[Supervisor, Otel]]:
    otel = make_otel()
    sup = Supervisor(
        AGENTS,
        cache="memory://",
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=KEY,
        limits=LIMITS,
        telemetry=otel.tel,
    )
    async with sup:
        yield sup, otel
    otel.shutdown()


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _children(otel: Otel, parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s
        for s in otel.spans()
        if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


async def test_four_stage_run_span_tree(sup_otel: tuple[Supervisor, Otel]) -> None:
    sup, otel = sup_otel
    user_hash = UserHasher(derive_key(KEY, "user-hash")).hash("user-1")
    result = await sup.run("user-1", PIPELINE, input={"q": 1}, session_id="sess-9")
    assert result.status is RunStatus.FAILED
    assert result.stages["flaky"].status is AgentStatus.SUCCEEDED
    assert result.stages["broken"].status is AgentStatus.FAILED

    root = otel.one("invoke_workflow collect+enrich+flaky+broken")
    ra = _attrs(root)
    assert root.parent is None and root.kind is SpanKind.INTERNAL
    assert ra["gen_ai.operation.name"] == "invoke_workflow"
    assert ra["agentkit.run.id"] == result.run_id
    assert ra["agentkit.user.hash"] == user_hash
    assert ra["gen_ai.conversation.id"] == "sess-9"
    assert ra["agentkit.run.status"] == "failed"
    assert isinstance(ra["agentkit.queue.wait"], float)
    assert root.status.status_code is StatusCode.ERROR
    assert "error.type" in ra

    agent_spans = [s for s in otel.spans() if s.name.startswith("invoke_agent ")]
    assert sorted(s.name for s in agent_spans) == [
        "invoke_agent broken",
        "invoke_agent collect",
        "invoke_agent enrich",
        "invoke_agent flaky",
        "invoke_agent flaky",
    ]
    for s in agent_spans:
        a = _attrs(s)
        assert s.kind is SpanKind.INTERNAL
        assert s.parent is not None and s.parent.span_id == root.context.span_id
        assert s.context.trace_id == root.context.trace_id
        assert a["gen_ai.operation.name"] == "invoke_agent"
        assert a["gen_ai.agent.name"] == s.name.split(" ", 1)[1]
        assert a["agentkit.run.id"] == result.run_id
        assert a["agentkit.user.hash"] == user_hash
        assert a["gen_ai.conversation.id"] == "sess-9"
    assert _attrs(otel.one("invoke_agent collect"))["gen_ai.agent.version"] == "3"

    # succeeded stages: OK, with the four step spans as children
    for name in ("collect", "enrich"):
        span = otel.one(f"invoke_agent {name}")
        assert span.status.status_code is StatusCode.OK
        assert _attrs(span)["agentkit.agent.status"] == "succeeded"
        assert sorted(c.name for c in _children(otel, span)) == sorted(STEPS)

    collect = otel.one("invoke_agent collect")
    (clean,) = [c for c in _children(otel, collect) if c.name == "agentkit.clean_result"]
    assert _attrs(clean)["agentkit.sanitizer.replaced"] >= 1  # the lock was replaced
    (enc,) = [c for c in _children(otel, collect) if c.name == "agentkit.codec.encode"]
    assert _attrs(enc)["agentkit.codec.layer"] in ("pickle", "json")
    assert _attrs(enc)["agentkit.payload.bytes"] > 0

    # emits become events, from async agents and from worker threads
    assert [e.name for e in collect.events] == ["progress"]
    assert dict(collect.events[0].attributes or {})["agentkit.event.pct"] == 50
    enrich = otel.one("invoke_agent enrich")
    assert [e.name for e in enrich.events] == ["progress"]

    # the retried stage: one span per attempt, the first failed with a retry event
    first, second = sorted(otel.named("invoke_agent flaky"), key=lambda s: s.start_time or 0)
    assert _attrs(first)["agentkit.retry.attempt"] == 1
    assert _attrs(second)["agentkit.retry.attempt"] == 2
    assert first.status.status_code is StatusCode.ERROR
    assert _attrs(first)["error.type"] == "ConnectionError"
    assert [e.name for e in first.events] == ["agentkit.retry"]
    assert dict(first.events[0].attributes or {})["agentkit.retry.next_attempt"] == 2
    assert second.status.status_code is StatusCode.OK
    assert "agentkit.cache.set" not in {c.name for c in _children(otel, first)}
    assert sorted(c.name for c in _children(otel, second)) == sorted(STEPS)

    # the failed stage
    broken = otel.one("invoke_agent broken")
    assert broken.status.status_code is StatusCode.ERROR
    assert _attrs(broken)["error.type"] == "ValueError"
    assert _attrs(broken)["agentkit.agent.status"] == "failed"
    assert "cannot compute" not in str(broken.to_json())

    # every span of the run is in the run's trace
    assert {s.context.trace_id for s in otel.spans()} == {root.context.trace_id}


async def test_four_stage_run_metrics(sup_otel: tuple[Supervisor, Otel]) -> None:
    sup, otel = sup_otel
    await sup.run("user-2", PIPELINE)
    dur = otel.points("gen_ai.invoke_agent.duration")
    by = {
        (p.attributes["gen_ai.agent.name"], p.attributes["agentkit.agent.status"]): p.count
        for p in dur
    }
    assert by == {
        ("collect", "succeeded"): 1,
        ("enrich", "succeeded"): 1,
        ("flaky", "failed"): 1,
        ("flaky", "succeeded"): 1,
        ("broken", "failed"): 1,
    }
    for p in dur:
        assert "agentkit.user.hash" not in p.attributes
    assert otel.value("agentkit.runs", **{"agentkit.run.status": "failed"}) == 1
    assert otel.value("agentkit.queue.wait") == 1
    assert otel.value("agentkit.codec.encodings") >= 5
    assert sum(p.count for p in otel.points("agentkit.payload.size")) >= 5
    assert otel.value("agentkit.sanitizer.replacements", **{"agentkit.sanitizer.kind": "replaced"})
    assert otel.value("agentkit.engines.active") is not None


async def test_timeout_and_cancellation_set_status(sup_otel: tuple[Supervisor, Otel]) -> None:
    sup, otel = sup_otel
    timed = await sup.run("user-3", ["slow"])
    assert timed.stages["slow"].status is AgentStatus.TIMED_OUT
    slow = otel.one("invoke_agent slow")
    assert slow.status.status_code is StatusCode.ERROR
    assert _attrs(slow)["error.type"] == "timeout"
    assert _attrs(slow)["agentkit.agent.status"] == "timed_out"
    wf_slow = otel.one("invoke_workflow slow")
    assert wf_slow.status.status_code is StatusCode.ERROR

    handle = await sup.submit("user-3", ["sleeper"])
    with anyio.fail_after(5):
        async for event in handle.events():
            if event.kind == AGENT_STARTED:
                break
    await anyio.sleep(0.05)
    await handle.cancel()
    res = await handle.result()
    assert res.status is RunStatus.CANCELLED
    sleeper = otel.one("invoke_agent sleeper")
    assert sleeper.status.status_code is StatusCode.ERROR
    assert _attrs(sleeper)["error.type"] == "cancelled"
    wf = otel.one("invoke_workflow sleeper")
    assert _attrs(wf)["error.type"] == "cancelled"
    assert _attrs(wf)["agentkit.run.status"] == "cancelled"


async def test_caller_span_becomes_the_parent_of_the_run(sup_otel: tuple[Supervisor, Otel]) -> None:
    sup, otel = sup_otel
    tracer = otel.tracer_provider.get_tracer("web")
    with tracer.start_as_current_span("POST /reports"):
        handle = await sup.submit("user-4", ["collect"])
    await handle.result()
    request = otel.one("POST /reports")
    wf = otel.one("invoke_workflow collect")
    assert wf.parent is not None and wf.parent.span_id == request.context.span_id
    assert wf.context.trace_id == request.context.trace_id


async def test_fifty_concurrent_runs_never_cross_attach(sup_otel: tuple[Supervisor, Otel]) -> None:
    sup, otel = sup_otel
    tracer = otel.tracer_provider.get_tracer("web")
    run_of_request: dict[str, str] = {}

    async def one(i: int) -> None:
        with tracer.start_as_current_span(f"request {i}") as req:
            handle = await sup.submit(f"user-{i % 10}", PIPELINE)
            run_of_request[format(req.get_span_context().span_id, "016x")] = handle.run_id
        await handle.result()

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)

    spans = otel.spans()
    by_id = {s.context.span_id: s for s in spans}
    workflows = [s for s in spans if s.name.startswith("invoke_workflow")]
    assert len(workflows) == 50
    assert len({_attrs(w)["agentkit.run.id"] for w in workflows}) == 50
    for w in workflows:
        parent = by_id[w.parent.span_id]  # type: ignore[union-attr]
        assert (
            run_of_request[format(parent.context.span_id, "016x")] == _attrs(w)["agentkit.run.id"]
        )

    def run_of(span: ReadableSpan) -> str:
        s = span
        while not s.name.startswith("invoke_workflow"):
            assert s.parent is not None, s.name
            s = by_id[s.parent.span_id]
            assert s.context.trace_id == span.context.trace_id
        return str(_attrs(s)["agentkit.run.id"])

    agent_spans = [s for s in spans if s.name.startswith("invoke_agent")]
    assert len(agent_spans) == 50 * 5
    for s in agent_spans:
        assert run_of(s) == _attrs(s)["agentkit.run.id"]
    steps = [s for s in spans if s.name in STEPS]
    assert len(steps) == 50 * (4 * 4 + 2)  # 4 final attempts x 4 steps + the failed attempt's 2
    for s in steps:
        parent = by_id[s.parent.span_id]  # type: ignore[union-attr]
        assert parent.name.startswith("invoke_agent")
        run_of(s)
    assert otel.value("agentkit.runs", **{"agentkit.run.status": "failed"}) == 50
