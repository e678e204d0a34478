"""The cheap paths of the Telemetry facade: step spans off, in-process counters."""

from __future__ import annotations

import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.trace import StatusCode
from otel_helpers import Otel

from agentkit.status import AgentStatus, RunStatus
from agentkit.telemetry import Telemetry
from agentkit.telemetry._spans import NOOP_SCOPE


def test_step_spans_off_keeps_agent_spans_and_metrics(otel: Otel) -> None:
    tel = Telemetry(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, step_spans=False
    )
    with tel.workflow_span("p", run_id="r", user_hash="h") as wf:
        with tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
            scope = tel.step_span("agentkit.codec.encode")
            assert scope is NOOP_SCOPE
            with scope as step:
                step.set(layer="json", payload_bytes=10)
            tel.record_encoding("json", 10)
            tel.record_agent("a", AgentStatus.SUCCEEDED, 0.5)
            span.set_outcome(AgentStatus.SUCCEEDED)
        wf.set_outcome(RunStatus.SUCCEEDED)
    assert sorted(s.name for s in otel.spans()) == ["invoke_agent a", "invoke_workflow p"]
    agent = otel.one("invoke_agent a")
    assert agent.parent is not None
    assert agent.parent.span_id == otel.one("invoke_workflow p").context.span_id
    assert otel.value("agentkit.codec.encodings", **{"agentkit.codec.layer": "json"}) == 1
    assert otel.value("gen_ai.invoke_agent.duration", **{"gen_ai.agent.name": "a"}) == 1


def test_telemetries_on_one_provider_share_counters(otel: Otel) -> None:
    # An SDK meter registers an observable counter once; a second Telemetry on the same
    # provider must still be counted (it shares the first one's in-process counts).
    other = Telemetry(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    otel.tel.record_encoding("json", 5)
    other.record_encoding("json", 7)
    other.record_run(RunStatus.FAILED)
    otel.tel.record_run(RunStatus.FAILED)
    other.record_cache_error("set", backend="redis")
    other.record_sanitizer({"redacted": 3, "replaced": 0})
    assert otel.value("agentkit.codec.encodings", **{"agentkit.codec.layer": "json"}) == 2
    assert otel.value("agentkit.payload.size") == 2
    assert otel.value("agentkit.runs", **{"agentkit.run.status": "failed"}) == 2
    assert (
        otel.value(
            "agentkit.cache.errors",
            **{"agentkit.cache.operation": "set", "agentkit.cache.backend": "redis"},
        )
        == 1
    )
    assert (
        otel.value("agentkit.sanitizer.replacements", **{"agentkit.sanitizer.kind": "redacted"})
        == 3
    )
    assert (
        otel.value("agentkit.sanitizer.replacements", **{"agentkit.sanitizer.kind": "replaced"})
        is None
    )


def test_counters_of_separate_providers_stay_apart(otel: Otel) -> None:
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    try:
        Telemetry(meter_provider=mp).record_encoding("pickle", 1)
        otel.tel.record_encoding("json", 1)
        assert otel.value("agentkit.codec.encodings", **{"agentkit.codec.layer": "pickle"}) is None
        data = reader.get_metrics_data()
        assert data is not None
        points = [
            p
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "agentkit.codec.encodings"
            for p in m.data.data_points
        ]
        assert [(dict(p.attributes), p.value) for p in points] == [
            ({"agentkit.codec.layer": "pickle"}, 1)
        ]
    finally:
        mp.shutdown()


def test_counts_from_many_threads_are_exact(otel: Otel) -> None:
    def work() -> None:
        for _ in range(2000):
            otel.tel.record_encoding("json", 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert otel.value("agentkit.codec.encodings", **{"agentkit.codec.layer": "json"}) == 8000
    # cumulative: a second collection reports the same total, not a delta
    assert otel.value("agentkit.codec.encodings", **{"agentkit.codec.layer": "json"}) == 8000


def test_leaf_steps_are_not_current_io_steps_are(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("driver")
    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h"):
        for step in ("agentkit.codec.encode", "agentkit.clean_result", "agentkit.cache.set"):
            with otel.tel.step_span(step) as handle:
                assert handle.is_recording
                with tracer.start_as_current_span(f"inner {step}"):
                    pass
    agent = otel.one("invoke_agent a")
    for step in ("agentkit.codec.encode", "agentkit.clean_result", "agentkit.cache.set"):
        assert otel.one(step).parent.span_id == agent.context.span_id  # type: ignore[union-attr]
    # leaves: a span started inside parents to the agent span; the cache step nests it
    for leaf in ("agentkit.codec.encode", "agentkit.clean_result"):
        inner = otel.one(f"inner {leaf}")
        assert inner.parent.span_id == agent.context.span_id  # type: ignore[union-attr]
    inner = otel.one("inner agentkit.cache.set")
    assert inner.parent.span_id == otel.one("agentkit.cache.set").context.span_id  # type: ignore[union-attr]


def test_leaf_step_failure_is_recorded_and_context_restored(otel: Otel) -> None:
    from opentelemetry import trace

    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h"):
        before = trace.get_current_span()
        try:
            with otel.tel.step_span("agentkit.codec.encode"):
                raise ValueError("boom")
        except ValueError:
            pass
        assert trace.get_current_span() is before
    s = otel.one("agentkit.codec.encode")
    assert (s.attributes or {})["error.type"] == "ValueError"


def test_leaf_step_is_recorded_in_one_go_when_it_ends(otel: Otel) -> None:
    import time

    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h"):
        with otel.tel.step_span("agentkit.codec.encode", layer="json") as handle:
            assert handle.is_recording
            assert otel.named("agentkit.codec.encode") == []  # nothing started yet
            inside = time.time_ns()
            handle.set(payload_bytes=42)
            handle.add_event("note", {"n": 1})
        with otel.tel.step_span("agentkit.clean_result") as handle:
            handle.mark_retry(ValueError("x"), next_attempt=2)
        with otel.tel.step_span("agentkit.clean_result") as handle:
            handle.set_outcome(AgentStatus.SUCCEEDED)
            handle.set_error("Late")  # as the SDK: a span that is OK stays OK
    enc = otel.one("agentkit.codec.encode")
    assert enc.start_time is not None and enc.end_time is not None
    assert enc.start_time <= inside <= enc.end_time
    assert dict(enc.attributes or {}) == {
        "agentkit.codec.layer": "json",
        "agentkit.payload.bytes": 42,
    }
    assert [(e.name, dict(e.attributes or {})) for e in enc.events] == [
        ("note", {"agentkit.event.n": 1})
    ]
    assert enc.status.status_code is StatusCode.UNSET
    retried, ok = sorted(otel.named("agentkit.clean_result"), key=lambda s: s.start_time or 0)
    assert retried.status.status_code is StatusCode.ERROR
    assert (retried.attributes or {})["error.type"] == "ValueError"
    assert (retried.attributes or {})["agentkit.retry.will_retry"] is True
    assert [e.name for e in retried.events] == ["agentkit.retry"]
    assert ok.status.status_code is StatusCode.OK


def test_leaf_step_under_a_sampled_out_run_is_skipped() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    exporter = InMemorySpanExporter()
    tp = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tel = Telemetry(tracer_provider=tp, meter_provider=MeterProvider())
    with tel.workflow_span("p", run_id="r", user_hash="h"):
        assert tel.step_span("agentkit.codec.encode") is NOOP_SCOPE
        assert tel.step_span("agentkit.cache.set") is NOOP_SCOPE
    assert exporter.get_finished_spans() == ()
    tp.shutdown()
