"""Unit tests of the Telemetry facade against the OpenTelemetry SDK (in-memory exporters)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from otel_helpers import Otel

from agentkit.errors import AgentTimeoutError, StoreError
from agentkit.status import AgentStatus, RunStatus
from agentkit.telemetry import SpanHandle, Telemetry
from agentkit.telemetry._spans import NOOP_SCOPE, NOOP_SPAN, error_type_of


def _stage(tel: Telemetry, agent: str, attempt: int = 1) -> SpanHandle:
    with tel.agent_span(
        agent, "2", run_id="run-1", user_hash="uh-1", session_id="sess-1", attempt=attempt
    ) as span:
        with tel.step_span("agentkit.clean_result", replaced=2, lossy=True):
            pass
        with tel.step_span("agentkit.codec.encode") as enc:
            enc.set(layer="json", payload_bytes=321)
        with tel.step_span("agentkit.cache.set"):
            pass
        with tel.step_span("agentkit.store.save", attributes={"agentkit.store.backend": "sqlite"}):
            pass
        span.set_outcome(AgentStatus.SUCCEEDED)
    return span


def test_span_tree_names_parents_kinds_and_attributes(otel: Otel) -> None:
    with otel.tel.workflow_span(
        "report", run_id="run-1", user_hash="uh-1", session_id="sess-1", queue_wait=0.25
    ) as wf:
        _stage(otel.tel, "collector")
        wf.set_outcome(RunStatus.SUCCEEDED)

    root = otel.one("invoke_workflow report")
    agent = otel.one("invoke_agent collector")
    assert root.parent is None
    assert agent.parent is not None and agent.parent.span_id == root.context.span_id
    assert agent.context.trace_id == root.context.trace_id
    assert agent.kind is SpanKind.INTERNAL and root.kind is SpanKind.INTERNAL
    for step in (
        "agentkit.clean_result",
        "agentkit.codec.encode",
        "agentkit.cache.set",
        "agentkit.store.save",
    ):
        s = otel.one(step)
        assert s.parent is not None and s.parent.span_id == agent.context.span_id, step
        assert s.kind is SpanKind.INTERNAL

    assert dict(root.attributes or {}) == {
        "gen_ai.operation.name": "invoke_workflow",
        "agentkit.pipeline": "report",
        "agentkit.run.id": "run-1",
        "agentkit.user.hash": "uh-1",
        "gen_ai.conversation.id": "sess-1",
        "agentkit.queue.wait": 0.25,
        "agentkit.run.status": "succeeded",
    }
    assert root.status.status_code is StatusCode.OK
    attrs = dict(agent.attributes or {})
    assert attrs == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "collector",
        "gen_ai.agent.version": "2",
        "gen_ai.conversation.id": "sess-1",
        "agentkit.run.id": "run-1",
        "agentkit.user.hash": "uh-1",
        "agentkit.retry.attempt": 1,
        "agentkit.agent.status": "succeeded",
    }
    assert agent.status.status_code is StatusCode.OK
    assert dict(otel.one("agentkit.codec.encode").attributes or {}) == {
        "agentkit.codec.layer": "json",
        "agentkit.payload.bytes": 321,
    }
    assert dict(otel.one("agentkit.clean_result").attributes or {}) == {
        "agentkit.sanitizer.replaced": 2,
        "agentkit.sanitizer.lossy": True,
    }
    assert otel.one("agentkit.store.save").attributes == {"agentkit.store.backend": "sqlite"}


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (AgentStatus.FAILED, ValueError("boom"), "ValueError"),
        (AgentStatus.FAILED, StoreError("x"), "agentkit.errors.StoreError"),
        (AgentStatus.FAILED, "KeyError", "KeyError"),
        (AgentStatus.FAILED, None, "_OTHER"),
        (AgentStatus.TIMED_OUT, None, "timeout"),
        (AgentStatus.TIMED_OUT, AgentTimeoutError("late"), "timeout"),
        (AgentStatus.CANCELLED, None, "cancelled"),
        (AgentStatus.CANCELLED, asyncio.CancelledError(), "cancelled"),
        (AgentStatus.INTERRUPTED, None, "interrupted"),
    ],
)
def test_failed_outcomes_set_error_status_and_type(
    otel: Otel, status: AgentStatus, error: BaseException | str | None, expected: str
) -> None:
    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
        span.set_outcome(status, error)
    s = otel.one("invoke_agent a")
    assert s.status.status_code is StatusCode.ERROR
    assert s.status.description == expected
    assert (s.attributes or {})["error.type"] == expected
    assert (s.attributes or {})["agentkit.agent.status"] == status.value


def test_error_message_never_recorded(otel: Otel) -> None:
    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
        span.set_outcome(AgentStatus.FAILED, RuntimeError("user alice@example.com secret"))
    s = otel.one("invoke_agent a")
    assert "alice" not in repr(s.to_json())
    assert not s.events


def test_skipped_stage_leaves_status_unset(otel: Otel) -> None:
    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
        span.set_outcome(AgentStatus.SKIPPED)
    s = otel.one("invoke_agent a")
    assert s.status.status_code is StatusCode.UNSET
    assert "error.type" not in (s.attributes or {})


def test_exception_leaving_scope_marks_span_and_propagates(otel: Otel) -> None:
    with pytest.raises(KeyError), otel.tel.step_span("agentkit.cache.set"):
        raise KeyError("k")
    s = otel.one("agentkit.cache.set")
    assert s.status.status_code is StatusCode.ERROR
    assert (s.attributes or {})["error.type"] == "KeyError"
    assert s.end_time is not None


def test_explicit_outcome_wins_over_exception(otel: Otel) -> None:
    with (
        pytest.raises(asyncio.CancelledError),
        otel.tel.agent_span("a", "1", run_id="r", user_hash="h") as span,
    ):
        span.set_outcome(AgentStatus.CANCELLED)
        raise asyncio.CancelledError
    s = otel.one("invoke_agent a")
    assert (s.attributes or {})["error.type"] == "cancelled"


async def test_cancellation_through_scope_is_cancelled() -> None:
    from otel_helpers import make_otel

    o = make_otel()

    async def work() -> None:
        with o.tel.agent_span("slow", "1", run_id="r", user_hash="h"):
            await asyncio.sleep(10)

    task = asyncio.create_task(work())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    s = o.one("invoke_agent slow")
    assert (s.attributes or {})["error.type"] == "cancelled"
    assert s.status.status_code is StatusCode.ERROR


def test_retries_are_one_span_per_attempt_with_retry_event(otel: Otel) -> None:
    with otel.tel.workflow_span("p", run_id="r", user_hash="h"):
        with otel.tel.agent_span("flaky", "1", run_id="r", user_hash="h", attempt=1) as s1:
            s1.mark_retry(ConnectionError("reset"), next_attempt=2, delay_s=0.05)
        _stage(otel.tel, "flaky", attempt=2)
    spans = sorted(otel.named("invoke_agent flaky"), key=lambda s: s.start_time or 0)
    assert [(s.attributes or {})["agentkit.retry.attempt"] for s in spans] == [1, 2]
    first, second = spans
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "ConnectionError"
    assert (first.attributes or {})["agentkit.retry.will_retry"] is True
    (event,) = first.events
    assert event.name == "agentkit.retry"
    assert dict(event.attributes or {}) == {
        "error.type": "ConnectionError",
        "agentkit.retry.next_attempt": 2,
        "agentkit.retry.delay": 0.05,
    }
    assert second.status.status_code is StatusCode.OK
    assert first.parent == second.parent


def test_agent_events_withhold_strings_unless_content_on(otel: Otel, otel_content: Otel) -> None:
    for o in (otel, otel_content):
        with o.tel.agent_span("a", "1", run_id="r", user_hash="h"):
            o.tel.agent_event("progress", {"pct": 40, "done": False, "note": "alice's invoice"})
    (ev,) = otel.one("invoke_agent a").events
    assert ev.name == "progress"
    assert dict(ev.attributes or {}) == {
        "agentkit.event.pct": 40,
        "agentkit.event.done": False,
        "agentkit.event.withheld": ("note",),
    }
    (ev2,) = otel_content.one("invoke_agent a").events
    assert (ev2.attributes or {})["agentkit.event.note"] == "alice's invoice"


def test_agent_event_without_span_is_dropped(otel: Otel) -> None:
    otel.tel.agent_event("progress", {"pct": 1})
    assert otel.spans() == []


def test_output_recorded_only_with_record_content(otel: Otel, otel_content: Otel) -> None:
    for o in (otel, otel_content):
        with o.tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
            span.record_output({"total": 3, "items": ["x"]})
    assert "agentkit.output" not in (otel.one("invoke_agent a").attributes or {})
    out = (otel_content.one("invoke_agent a").attributes or {})["agentkit.output"]
    assert out == '{"items": ["x"], "total": 3}'


def test_output_content_is_truncated(otel_content: Otel) -> None:
    with otel_content.tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
        span.record_output("x" * 100_000)
    out = (otel_content.one("invoke_agent a").attributes or {})["agentkit.output"]
    assert isinstance(out, str) and len(out) < 9000 and out.endswith("[truncated]")


def test_parent_context_is_used(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("caller")
    with tracer.start_as_current_span("http request"):
        captured = otel.tel.capture_context()
    with otel.tel.workflow_span("p", run_id="r", user_hash="h", parent=captured):
        pass
    caller = otel.one("http request")
    wf = otel.one("invoke_workflow p")
    assert wf.parent is not None and wf.parent.span_id == caller.context.span_id


def test_handle_context_parents_spans_started_elsewhere(otel: Otel) -> None:
    with otel.tel.workflow_span("p", run_id="r", user_hash="h") as wf:
        ctx = wf.context
    with otel.tel.agent_span("late", "1", run_id="r", user_hash="h", parent=ctx):
        pass
    assert otel.one("invoke_agent late").parent.span_id == (  # type: ignore[union-attr]
        otel.one("invoke_workflow p").context.span_id
    )


def test_metrics_values(otel: Otel) -> None:
    tel = otel.tel
    tel.record_agent("a", AgentStatus.SUCCEEDED, 0.5)
    tel.record_agent("a", AgentStatus.SUCCEEDED, 1.5)
    tel.record_agent("a", AgentStatus.FAILED, 0.1, error_type="ValueError")
    tel.record_encoding("json", 100)
    tel.record_encoding("json", 300)
    tel.record_encoding("pickle", 50)
    tel.record_sanitizer({"replaced": 2, "redacted": 1, "cycle": 0})
    tel.record_sanitizer({"replaced": 1})
    tel.record_queue_wait(0.2)
    tel.record_cache_error("set")
    tel.record_cache_error("get", backend="redis")
    tel.record_run(RunStatus.SUCCEEDED)
    tel.record_run(RunStatus.FAILED)
    tel.record_run(RunStatus.SUCCEEDED)
    tel.set_active_engines(3)
    tel.set_active_engines(2)
    tel.set_outbox_depth(7)
    tel.set_circuit_state("redis-cache", "open")

    dur = [
        p
        for p in otel.points("gen_ai.invoke_agent.duration")
        if p.attributes["agentkit.agent.status"] == "succeeded"
    ]
    assert len(dur) == 1 and dur[0].count == 2 and dur[0].sum == pytest.approx(2.0)
    assert dict(dur[0].attributes) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "a",
        "agentkit.agent.status": "succeeded",
    }
    assert otel.value("gen_ai.invoke_agent.duration", **{"error.type": "ValueError"}) == 1
    assert otel.value("agentkit.codec.encodings", **{"agentkit.codec.layer": "json"}) == 2
    assert otel.value("agentkit.codec.encodings", **{"agentkit.codec.layer": "pickle"}) == 1
    size = [
        p
        for p in otel.points("agentkit.payload.size")
        if p.attributes["agentkit.codec.layer"] == "json"
    ]
    assert size[0].sum == 400
    assert (
        otel.value("agentkit.sanitizer.replacements", **{"agentkit.sanitizer.kind": "replaced"})
        == 3
    )
    assert (
        otel.value("agentkit.sanitizer.replacements", **{"agentkit.sanitizer.kind": "redacted"})
        == 1
    )
    assert (
        otel.value("agentkit.sanitizer.replacements", **{"agentkit.sanitizer.kind": "cycle"})
        is None
    )
    assert otel.value("agentkit.queue.wait") == 1
    assert otel.value("agentkit.cache.errors") == 2
    assert otel.value("agentkit.cache.errors", **{"agentkit.cache.backend": "redis"}) == 1
    assert otel.value("agentkit.runs", **{"agentkit.run.status": "succeeded"}) == 2
    assert otel.value("agentkit.runs", **{"agentkit.run.status": "failed"}) == 1
    assert otel.value("agentkit.engines.active") == 2
    assert otel.value("agentkit.store.outbox.depth") == 7
    assert (
        otel.value("agentkit.cache.circuit.state", **{"agentkit.circuit.name": "redis-cache"}) == 2
    )


def test_circuit_state_rejects_unknown_names(otel: Otel) -> None:
    otel.tel.set_circuit_state("c", "half-open")
    assert otel.value("agentkit.cache.circuit.state") == 1
    with pytest.raises(ValueError, match="closed"):
        otel.tel.set_circuit_state("c", "ajar")


def test_noop_records_nothing_and_shares_one_scope(otel: Otel) -> None:
    tel = Telemetry.noop()
    assert tel is Telemetry.noop()
    assert not tel.enabled and otel.tel.enabled
    assert tel.capture_context() is None
    scope = tel.agent_span("a", "1", run_id="r", user_hash="h")
    assert scope is NOOP_SCOPE
    with scope as span, tel.step_span("agentkit.cache.set", layer="json") as step:
        assert span is NOOP_SPAN and step is NOOP_SPAN
        assert span.context is None and not span.is_recording
        span.set_outcome(AgentStatus.FAILED, ValueError())
        span.mark_retry(ValueError(), next_attempt=2)
        span.record_output("x")
        span.set(layer="json")
        tel.agent_event("e", {"a": 1})
    tel.record_agent("a", "succeeded", 1.0)
    tel.record_encoding("json", 1)
    tel.record_sanitizer({"replaced": 1})
    tel.record_queue_wait(1.0)
    tel.record_cache_error("get")
    tel.record_run("failed")
    tel.set_active_engines(1)
    tel.set_outbox_depth(1)
    tel.set_circuit_state("c", "open")
    with tel.use_context(tel.capture_context()):
        pass
    assert otel.spans() == []


def test_noop_exception_propagates() -> None:
    with pytest.raises(KeyError), Telemetry.noop().workflow_span("p", run_id="r", user_hash="h"):
        raise KeyError


def test_global_providers_are_used_when_none_given() -> None:
    # No global SDK is installed in tests: the API's proxy records nothing but works.
    tel = Telemetry()
    with tel.workflow_span("p", run_id="r", user_hash="h") as span:
        span.set_outcome("succeeded")
        tel.agent_event("e", {"x": 1})
    tel.record_run("succeeded")


def test_error_type_of() -> None:
    assert error_type_of(TimeoutError()) == "timeout"
    assert error_type_of(asyncio.CancelledError()) == "cancelled"
    assert error_type_of("") == "_OTHER"
    assert error_type_of(None, "timed_out") == "timeout"
    assert error_type_of(None) == "_OTHER"


def test_timeout_and_cancel_type_names_are_normalised(otel: Otel) -> None:
    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
        span.set_outcome(AgentStatus.TIMED_OUT, "agentkit.errors.AgentTimeoutError")
    with otel.tel.agent_span("b", "1", run_id="r", user_hash="h") as span:
        span.mark_retry("agentkit.errors.AgentTimeoutError", next_attempt=2)
    assert (otel.one("invoke_agent a").attributes or {})["error.type"] == "timeout"
    assert (otel.one("invoke_agent b").attributes or {})["error.type"] == "timeout"
    otel.tel.record_agent("a", AgentStatus.TIMED_OUT, 1.0, "agentkit.errors.AgentTimeoutError")
    otel.tel.record_agent("a", AgentStatus.CANCELLED, 1.0)
    otel.tel.record_agent("a", AgentStatus.FAILED, 1.0)
    types = {p.attributes["error.type"] for p in otel.points("gen_ai.invoke_agent.duration")}
    assert types == {"timeout", "cancelled", "_OTHER"}


def test_event_fields_under_secret_keys_are_redacted(otel: Otel, otel_content: Otel) -> None:
    for o in (otel, otel_content):
        with o.tel.agent_span("a", "1", run_id="r", user_hash="h"):
            o.tel.agent_event("login", {"api_key": "sk-live-123", "token": 98765, "n": 2})
    for o in (otel, otel_content):
        (ev,) = o.one("invoke_agent a").events
        a = dict(ev.attributes or {})
        assert a["agentkit.event.api_key"] == "***"
        assert a["agentkit.event.token"] == "***"
        assert a["agentkit.event.n"] == 2
        assert "sk-live-123" not in str(a) and "98765" not in str(a)


async def test_bind_backends_reports_breaker_and_outbox(otel: Otel, tmp_path: Path) -> None:
    from agentkit.cache._breaker import CircuitBreaker
    from agentkit.store.outbox import OutboxStore
    from agentkit.store.sqlite import SQLiteStore

    class WithBreaker:
        def __init__(self) -> None:
            self.breaker = CircuitBreaker(name="redis", failure_threshold=1, cooldown=60)

    cache = WithBreaker()
    store = OutboxStore(SQLiteStore(str(tmp_path / "s.db")), str(tmp_path / "outbox.db"))
    otel.tel.bind_backends(cache, store)
    circuit = {"agentkit.circuit.name": "redis"}
    assert otel.value("agentkit.cache.circuit.state", **circuit) == 0
    cache.breaker.record_failure()
    assert otel.value("agentkit.cache.circuit.state", **circuit) == 2
    assert store.on_depth is not None
    store.on_depth(4)
    assert otel.value("agentkit.store.outbox.depth") == 4
    Telemetry.noop().bind_backends(cache, object())  # no-op, no error


def test_children_of_a_sampled_out_run_are_skipped() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    exporter = InMemorySpanExporter()
    tp = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tel = Telemetry(tracer_provider=tp)
    with tel.workflow_span("p", run_id="r", user_hash="h") as wf:
        assert not wf.is_recording
        assert tel.agent_span("a", "1", run_id="r", user_hash="h") is NOOP_SCOPE
        assert tel.step_span("agentkit.cache.set") is NOOP_SCOPE
        captured = tel.capture_context()
    assert tel.workflow_span("q", run_id="r", user_hash="h", parent=captured) is NOOP_SCOPE
    # without a parent, a step span is still created (and sampled by the sampler)
    assert tel.step_span("agentkit.cache.set") is not NOOP_SCOPE
    assert exporter.get_finished_spans() == ()


def test_set_attributes_by_full_name_skips_none(otel: Otel) -> None:
    with otel.tel.step_span("agentkit.store.save") as span:
        span.set_attributes({"agentkit.store.backend": "postgres", "agentkit.x": None})
        span.set(rows=3, tags=["a", "b"], status=AgentStatus.FAILED)
        span.add_event("flushed", {"n": 2})
    s = otel.one("agentkit.store.save")
    assert dict(s.attributes or {}) == {
        "agentkit.store.backend": "postgres",
        "agentkit.rows": 3,
        "agentkit.tags": ("a", "b"),
        "agentkit.status": "failed",
    }
    assert [e.name for e in s.events] == ["flushed"]
