"""Runs on Dask workers are traced end to end.

The supervisor sends the W3C trace context of each stage's ``invoke_agent`` span; a worker
with a global tracer provider records ``agentkit.worker.run`` (and the clean and codec steps)
as its children. In-process clusters share this process's OpenTelemetry globals (swapped in
for each test); the multi-process cluster's workers are set up by ``TelemetryPlugin`` and
export over OTLP/HTTP to a loopback receiver.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from loopback_cluster import PLUGINS, SIGNING_KEY, LoopbackCluster
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from agentkit.dask_executor import AgentkitWorkerPlugin, DaskExecutor, TelemetryPlugin
from agentkit.errors import ConfigurationError
from agentkit.registry import AgentRegistry
from agentkit.status import RunStatus
from agentkit.supervisor import Supervisor
from agentkit.telemetry import Telemetry, configure

sys.path.insert(0, str(Path(__file__).parent.parent / "telemetry"))
from otel_helpers import Otel, make_otel
from otlp_receiver import OtlpReceiver, attrs

pytestmark = pytest.mark.timeout(60)

USER_ID = "carol.raw-user-5521@example.com"
PIPELINE = ["dt_echo", "dt_traced"]


def registry() -> AgentRegistry:
    reg = AgentRegistry()
    reg.load_path(PLUGINS)
    return reg


@pytest.fixture
def otel() -> Iterator[Otel]:
    """The supervisor's SDK (in-memory), separate from the process's globals."""
    o = make_otel()
    yield o
    o.shutdown()


@pytest.fixture
def worker_exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A global tracer provider for this process (the in-process workers), for one test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


@pytest.fixture
async def inproc_client() -> AsyncIterator[Client]:
    """One worker thread in this process: it uses this process's OpenTelemetry globals."""
    async with (
        LocalCluster(
            processes=False,
            n_workers=1,
            threads_per_worker=1,
            asynchronous=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster, asynchronous=True) as client,
    ):
        yield client


async def _run(client: Client, tel: Telemetry, tmp_path: Path, *plugins: WorkerPlugin) -> Any:
    """One run of PIPELINE for USER_ID; workers get the test agents and ``plugins``."""
    agents = AgentkitWorkerPlugin([str(PLUGINS)], signing_key=SIGNING_KEY)
    async with Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=DaskExecutor(client, plugin=[agents, *plugins]),
        telemetry=tel,
    ) as sup:
        result = await asyncio.wait_for(sup.run(USER_ID, PIPELINE, input={"q": 1}), 30)
    assert result.status is RunStatus.SUCCEEDED, result.error
    return result


async def _worker_addresses(client: Client) -> set[str]:
    return set((await client.scheduler.identity())["workers"])


def _named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_worker_spans_are_children_of_the_agent_span(
    inproc_client: Client, worker_exporter: InMemorySpanExporter, otel: Otel, tmp_path: Path
) -> None:
    result = await _run(inproc_client, otel.tel, tmp_path)
    workers = await _worker_addresses(inproc_client)
    spans = otel.spans() + list(worker_exporter.get_finished_spans())
    (wf,) = [s for s in spans if s.name.startswith("invoke_workflow")]
    assert wf.attributes is not None and wf.attributes["agentkit.run.id"] == result.run_id
    assert {s.context.trace_id for s in spans} == {wf.context.trace_id}

    worker_runs = _named(spans, "agentkit.worker.run")
    assert len(worker_runs) == len(PIPELINE)
    for agent in PIPELINE:
        (agent_span,) = _named(spans, f"invoke_agent {agent}")
        (run,) = [w for w in worker_runs if (w.attributes or {})["gen_ai.agent.name"] == agent]
        assert _parent_id(run) == agent_span.context.span_id
        assert run.status.status_code is StatusCode.OK
        where = str((run.attributes or {})["agentkit.worker"])
        assert any(where.endswith(f"({address})") for address in workers), where
        steps = [s for s in spans if _parent_id(s) == run.context.span_id]
        by_name = {s.name: s for s in steps}
        assert set(by_name) >= {"agentkit.clean_result", "agentkit.codec.encode"}
        encode = by_name["agentkit.codec.encode"].attributes or {}
        assert encode["agentkit.codec.layer"] == "pickle"
        # the supervisor's store step saved exactly the bytes the worker encoded
        (save,) = [
            s
            for s in spans
            if s.name == "agentkit.store.save" and _parent_id(s) == agent_span.context.span_id
        ]
        assert encode["agentkit.payload.bytes"] == (save.attributes or {})["agentkit.payload.bytes"]
        # the clean and codec steps ran on the worker only
        assert not [
            s for s in spans if _parent_id(s) == agent_span.context.span_id and s.name in by_name
        ]

    (traced_run,) = [
        w for w in worker_runs if (w.attributes or {})["gen_ai.agent.name"] == "dt_traced"
    ]
    clean = _named(spans, "agentkit.clean_result")
    (traced_clean,) = [s for s in clean if _parent_id(s) == traced_run.context.span_id]
    assert (traced_clean.attributes or {})["agentkit.sanitizer.replaced"] >= 1  # the lock
    # a span the agent started itself nests under the worker's span
    (inner,) = _named(spans, "dt_traced.inner")
    assert _parent_id(inner) == traced_run.context.span_id
    # emits are events of the invoke_agent span, as in-process (live delivery included)
    (echo_span,) = _named(spans, "invoke_agent dt_echo")
    assert [e.name for e in echo_span.events] == ["progress"] * 3
    assert all("agentkit.event.user" not in (e.attributes or {}) for e in echo_span.events)
    # privacy: the raw user id is nowhere (the agents return it and emit it)
    for span in spans:
        assert USER_ID not in span.to_json(), span.name


@pytest.mark.parametrize("mode", ["sampled_out", "tracing_off"])
async def test_no_worker_spans_for_runs_not_traced(
    mode: str, inproc_client: Client, worker_exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tel = Telemetry(tracer_provider=provider) if mode == "sampled_out" else Telemetry.noop()
    await _run(inproc_client, tel, tmp_path)
    provider.shutdown()
    assert exporter.get_finished_spans() == ()
    worker_spans = list(worker_exporter.get_finished_spans())
    assert [s for s in worker_spans if s.instrumentation_scope.name == "agentkit"] == []
    if mode == "sampled_out":
        # the unsampled context reached the worker: the agent's own span was not recorded
        # either (without it, the span would have started a trace of its own)
        assert worker_spans == []
    else:
        # nothing travelled: the agent's own span is a trace of the worker's own
        (inner,) = worker_spans
        assert inner.name == "dt_traced.inner" and inner.parent is None


async def test_worker_processes_export_their_spans_over_otlp(
    dask_cluster: LoopbackCluster, dask_client: Client, tmp_path: Path
) -> None:
    receiver = OtlpReceiver().start()
    handle = configure(
        service_name="agentkit-supervisor",
        otlp_endpoint=receiver.endpoint,
        set_global=False,
        metric_export_interval_s=3600,
        environ={},
    )
    plugin = TelemetryPlugin(service_name="agentkit-worker", otlp_endpoint=receiver.endpoint)
    try:
        result = await _run(dask_client, handle.telemetry(), tmp_path, plugin)
        assert handle.force_flush()
        # each worker flushes its spans when the plugin leaves it
        await dask_client.unregister_worker_plugin(plugin.name)
        receiver.wait_for(
            lambda: sum(s.name == "agentkit.worker.run" for _, _, s in receiver.spans()) == 2
        )
    finally:
        handle.shutdown()
        receiver.stop()

    found = list(receiver.spans())
    service = {id(s): res["service.name"] for res, _, s in found}
    spans = [s for _, _, s in found]
    (wf,) = [s for s in spans if s.name.startswith("invoke_workflow")]
    assert attrs(wf.attributes)["agentkit.run.id"] == result.run_id
    assert {s.trace_id for s in spans} == {wf.trace_id}
    worker_addresses = await _worker_addresses(dask_client)
    for agent in PIPELINE:
        (agent_span,) = [s for s in spans if s.name == f"invoke_agent {agent}"]
        (run,) = [
            s
            for s in spans
            if s.name == "agentkit.worker.run" and attrs(s.attributes)["gen_ai.agent.name"] == agent
        ]
        assert run.parent_span_id == agent_span.span_id
        assert (
            service[id(run)] == "agentkit-worker"
            and service[id(agent_span)] == "agentkit-supervisor"
        )
        where = attrs(run.attributes)["agentkit.worker"]
        assert any(where.endswith(f"({address})") for address in worker_addresses), where
        steps = {s.name for s in spans if s.parent_span_id == run.span_id}
        assert steps >= {"agentkit.clean_result", "agentkit.codec.encode"}
    (inner,) = [s for s in spans if s.name == "dt_traced.inner"]
    assert service[id(inner)] == "agentkit-worker"
    for body in receiver.raw_bodies:
        assert USER_ID.encode() not in body
    # metrics are counted once, by the supervisor: the workers record none
    by_service: dict[str, set[str]] = {}
    for res, _, metric in receiver.metrics():
        by_service.setdefault(res["service.name"], set()).add(metric.name)
    assert "agentkit.codec.encodings" in by_service["agentkit-supervisor"]
    assert not {m for m in by_service.get("agentkit-worker", ()) if m.startswith("agentkit.")}


def test_trace_context_carries_the_span_and_its_sampling_only(otel: Otel) -> None:
    assert otel.tel.trace_context() == {}  # no span current
    assert Telemetry.noop().trace_context() == {}
    with otel.tel.agent_span("a", "1", run_id="r", user_hash="h") as span:
        carrier = otel.tel.trace_context()
        assert set(carrier) == {"traceparent"}
        parent = Telemetry.context_from(carrier)
        assert parent is not None
        remote = trace.get_current_span(parent).get_span_context()
        assert remote.is_remote and remote.trace_flags.sampled
        assert remote.span_id == trace.get_current_span().get_span_context().span_id
        assert span.is_recording
    assert Telemetry.context_from({}) is None
    assert Telemetry.context_from({"traceparent": "garbage"}) is None
    sampled_out = Telemetry(tracer_provider=TracerProvider(sampler=ALWAYS_OFF))
    with sampled_out.workflow_span("p", run_id="r", user_hash="h"):
        carrier = sampled_out.trace_context()
    parent = Telemetry.context_from(carrier)  # it travels, marked as not sampled
    assert parent is not None
    assert not trace.get_current_span(parent).get_span_context().trace_flags.sampled


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"service_name": ""}, "service_name"),
        ({"service_name": 3}, "service_name"),
        ({"otlp_endpoint": "collector:4318"}, "http"),
        ({"protocol": "udp"}, "protocol"),
        ({"headers": {"x-key": 1}}, "headers"),
        ({"resource_attributes": ["a"]}, "resource_attributes"),
    ],
)
def test_telemetry_plugin_rejects_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        TelemetryPlugin(**kwargs)


def test_telemetry_plugin_repr_leaves_headers_out() -> None:
    plugin = TelemetryPlugin("svc", "https://otlp.example:4318", headers={"x-api-key": "s3cr3t"})
    assert "s3cr3t" not in repr(plugin) and "https://otlp.example:4318" in repr(plugin)


async def test_executor_rejects_a_plugin_that_is_not_a_worker_plugin() -> None:
    class FakeClient:
        asynchronous = True

    with pytest.raises(ConfigurationError, match="WorkerPlugin"):
        DaskExecutor(FakeClient(), plugin=[TelemetryPlugin(), "agentkit"])  # type: ignore[list-item]


def test_docs_explain_worker_tracing() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    for page in ("observability.md", "scaling.md"):
        text = (docs / page).read_text()
        assert "`agentkit.worker.run`" in text and "TelemetryPlugin(" in text, page
