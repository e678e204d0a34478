"""configure(): SDK setup from arguments and OTEL_* variables, over a real OTLP/HTTP receiver."""

from __future__ import annotations

import io
import json
import sys

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otlp_receiver import OtlpReceiver, attrs

from agentkit.errors import ConfigurationError, MissingDependencyError
from agentkit.status import AgentStatus
from agentkit.telemetry import Telemetry, configure


def _emit_one_stage(tel: Telemetry) -> None:
    with tel.workflow_span("wire", run_id="run-w", user_hash="uh") as wf:
        with tel.agent_span("a", "3", run_id="run-w", user_hash="uh") as span:
            with tel.step_span("agentkit.codec.encode", layer="json", payload_bytes=10):
                pass
            span.set_outcome(AgentStatus.SUCCEEDED)
        wf.set_outcome("succeeded")
    tel.record_agent("a", "succeeded", 0.3)
    tel.record_encoding("json", 10)
    tel.record_run("succeeded")


def test_otlp_http_export_arrives_over_the_wire(otlp_receiver: OtlpReceiver) -> None:
    handle = configure(
        service_name="agentkit-wire-test",
        otlp_endpoint=otlp_receiver.endpoint,
        set_global=False,
        metric_export_interval_s=3600,
        environ={},
    )
    try:
        _emit_one_stage(handle.telemetry())
        assert handle.force_flush()
    finally:
        handle.shutdown()
    handle.shutdown()  # idempotent
    spans = list(otlp_receiver.spans())
    names = {span.name for _, _, span in spans}
    assert names == {"invoke_workflow wire", "invoke_agent a", "agentkit.codec.encode"}
    for resource, scope, _span in spans:
        assert resource["service.name"] == "agentkit-wire-test"
        assert scope == "agentkit"
    (agent,) = [s for _, _, s in spans if s.name == "invoke_agent a"]
    assert attrs(agent.attributes)["gen_ai.agent.version"] == "3"
    assert agent.kind == 1  # SPAN_KIND_INTERNAL
    metric_names = {m.name for _, _, m in otlp_receiver.metrics()}
    assert {"gen_ai.invoke_agent.duration", "agentkit.codec.encodings", "agentkit.runs"} <= (
        metric_names
    )
    assert "application/x-protobuf" in otlp_receiver.content_types


def test_endpoint_and_service_from_environment(otlp_receiver: OtlpReceiver) -> None:
    env = {
        "OTEL_SERVICE_NAME": "from-env",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        with configure(set_global=False) as handle:
            _emit_one_stage(handle.telemetry())
            assert handle.force_flush()
        assert any("otlp traces" in e for e in handle.exporters)
    resources = [res for res, _, _ in otlp_receiver.spans()]
    assert resources and all(r["service.name"] == "from-env" for r in resources)
    assert all(r["deployment.environment"] == "test" for r in resources)


def test_no_endpoint_means_no_otlp() -> None:
    with configure(set_global=False, environ={}) as handle:
        assert handle.exporters == []
        _emit_one_stage(handle.telemetry())


def test_traces_exporter_none_turns_otlp_traces_off() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_TRACES_EXPORTER": "none"}
    with configure(set_global=False, environ=env, metric_export_interval_s=3600) as handle:
        assert [e for e in handle.exporters if "traces" in e] == []
        assert [e for e in handle.exporters if "metrics" in e]


def test_console_traces_print_json() -> None:
    out = io.StringIO()
    with configure(console=out, set_global=False, environ={}) as handle:
        _emit_one_stage(handle.telemetry())
    text = out.getvalue()
    assert '"name": "invoke_agent a"' in text
    first = text[: text.index("\n}") + 2]
    assert json.loads(first)["name"] == "agentkit.codec.encode"


def test_extra_span_exporter_and_record_content_default() -> None:
    exporter = InMemorySpanExporter()
    with configure(
        set_global=False, environ={}, span_exporters=[exporter], record_content=True
    ) as handle:
        tel = handle.telemetry()
        assert tel.record_content
        assert not handle.telemetry(record_content=False).record_content
        _emit_one_stage(tel)
        handle.force_flush()
        assert len(exporter.get_finished_spans()) == 3


def test_sdk_disabled_gives_noop() -> None:
    with configure(set_global=False, environ={"OTEL_SDK_DISABLED": "true"}) as handle:
        assert handle.telemetry() is Telemetry.noop()


def test_missing_exporter_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate an install without agentkit[otlp]: a None entry makes the import fail.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'agentkit\[otlp\]'"):
        configure(otlp_endpoint="http://127.0.0.1:4318", set_global=False, environ={})


def test_unknown_or_unavailable_protocol() -> None:
    with pytest.raises(ConfigurationError, match="http/protobuf"):
        configure(otlp_endpoint="http://127.0.0.1:4318", protocol="http/json", set_global=False)
    try:
        import opentelemetry.exporter.otlp.proto.grpc  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="opentelemetry-exporter-otlp-proto-grpc"):
            configure(otlp_endpoint="http://127.0.0.1:4317", protocol="grpc", set_global=False)
