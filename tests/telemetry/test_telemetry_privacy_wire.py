"""A run's telemetry over the wire (real OTLP/HTTP receiver) and the privacy scan.

No raw user id, secret, exception message or uncleaned output may appear in any exported
span, event, resource or metric — even with content recording on.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from otel_helpers import make_otel
from otlp_receiver import OtlpReceiver, attrs

from agentkit.agent import AgentContext, SubAgent
from agentkit.limits import Limits
from agentkit.status import RunStatus
from agentkit.supervisor import Supervisor
from agentkit.telemetry import configure

USER_ID = "alice.raw-user-7731@example.com"
SECRET = "hunter2-S3CR3T-9f8e"
RAW_MARKER = "RAW-REPR-6d1c"
KEY = b"privacy-test-signing-key-0123456789"


class Opaque:
    """A live object whose repr marks the raw value: only its clean form may be exported."""

    def __init__(self) -> None:
        self.conn = threading.Lock()

    def __repr__(self) -> str:
        return RAW_MARKER

    __str__ = __repr__


class Leaky(SubAgent):
    name = "leaky"
    #: emit the raw user id in an event field (agentkit must not export it unless content
    #: recording is on: then the agent's own event data is recorded as the agent wrote it)
    emit_user: ClassVar[bool] = True

    async def run(self, ctx: AgentContext) -> Any:
        ctx.emit("progress", pct=10, who=ctx.user_id if self.emit_user else "svc", token=SECRET)
        return {"owner": "svc", "password": SECRET, "client": Opaque(), "lock": threading.Lock()}


class LeakyThread(SubAgent):
    name = "leaky_thread"
    depends_on = ("leaky",)

    def run(self, ctx: AgentContext) -> Any:
        ctx.emit("progress", api_key=SECRET, detail={"secret": SECRET})
        return {"nested": {"auth_token": SECRET}, "obj": Opaque()}


class Failing(SubAgent):
    name = "failing"
    retries = 1

    async def run(self, ctx: AgentContext) -> Any:
        raise RuntimeError(f"could not reach {SECRET} for {ctx.user_id} {RAW_MARKER}")


AGENTS: list[type[SubAgent]] = [Leaky, LeakyThread, Failing]
PIPELINE = ["leaky", "leaky_thread", "failing"]
LIMITS = Limits(retry_backoff=0.01, retry_jitter=0.0)


def _assert_clean(blob: str | bytes, where: str) -> None:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    for needle in (USER_ID, SECRET, RAW_MARKER, "lock object at 0x"):
        assert needle not in text, f"{needle!r} leaked into {where}"


@pytest.mark.parametrize("record_content", [False, True])
async def test_no_raw_user_id_secret_or_raw_output_in_telemetry(
    tmp_path: Path, record_content: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    otel = make_otel(record_content=record_content)
    monkeypatch.setattr(Leaky, "emit_user", not record_content)
    async with Supervisor(
        AGENTS,
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=KEY,
        limits=LIMITS,
        telemetry=otel.tel,
    ) as sup:
        result = await sup.run(USER_ID, PIPELINE, input={"email": USER_ID, "password": SECRET})
    assert result.status is RunStatus.FAILED
    spans = otel.spans()
    assert len(spans) >= 1 + 4  # the run and its agent attempts, at least
    for span in spans:
        _assert_clean(span.to_json(), f"span {span.name}")
    data = otel.reader.get_metrics_data()
    assert data is not None
    _assert_clean(data.to_json(), "metrics")
    events = [e for s in spans for e in s.events]
    assert {e.name for e in events} >= {"progress", "agentkit.retry"}
    fields = {k: v for e in events if e.name == "progress" for k, v in (e.attributes or {}).items()}
    assert fields["agentkit.event.token"] == "***"
    if record_content:
        # content is on: string fields are recorded (clean, redacted), still no secret
        assert fields["agentkit.event.who"] == "svc"
    else:
        assert "agentkit.event.who" not in fields
    otel.shutdown()


async def test_run_arrives_over_otlp_http(tmp_path: Path, otlp_receiver: OtlpReceiver) -> None:
    handle = configure(
        service_name="agentkit-test",
        otlp_endpoint=otlp_receiver.endpoint,
        set_global=False,
        metric_export_interval_s=3600,
        environ={},
    )
    try:
        async with Supervisor(
            AGENTS,
            store=f"sqlite:///{tmp_path / 'runs.db'}",
            signing_key=KEY,
            limits=LIMITS,
            telemetry=handle.telemetry(),
        ) as sup:
            result = await sup.run(USER_ID, PIPELINE)
        assert handle.force_flush()
    finally:
        handle.shutdown()

    spans = [span for _, _, span in otlp_receiver.spans()]
    names = [s.name for s in spans]
    assert names.count("invoke_workflow leaky+leaky_thread+failing") == 1
    assert names.count("invoke_agent leaky") == 1
    assert names.count("invoke_agent leaky_thread") == 1
    assert names.count("invoke_agent failing") == 2  # one span per attempt
    for step in ("agentkit.clean_result", "agentkit.codec.encode"):
        assert names.count(step) == 4, step
    for step in ("agentkit.cache.set", "agentkit.store.save"):
        assert names.count(step) == 3, step
    (wf,) = [s for s in spans if s.name.startswith("invoke_workflow")]
    assert attrs(wf.attributes)["agentkit.run.id"] == result.run_id
    assert {s.trace_id for s in spans} == {wf.trace_id}
    agents = [s for s in spans if s.name.startswith("invoke_agent")]
    assert all(s.parent_span_id == wf.span_id for s in agents)
    assert {attrs(s.attributes)["gen_ai.operation.name"] for s in agents} == {"invoke_agent"}
    failing = [s for s in agents if s.name == "invoke_agent failing"]
    assert all(attrs(s.attributes)["error.type"] == "RuntimeError" for s in failing)
    assert all(s.status.code == 2 for s in failing)  # STATUS_CODE_ERROR

    metrics = {m.name: m for _, _, m in otlp_receiver.metrics()}
    for name in (
        "gen_ai.invoke_agent.duration",
        "agentkit.codec.encodings",
        "agentkit.payload.size",
        "agentkit.queue.wait",
        "agentkit.runs",
        "agentkit.engines.active",
    ):
        assert name in metrics, name
    assert metrics["gen_ai.invoke_agent.duration"].unit == "s"
    points = metrics["gen_ai.invoke_agent.duration"].histogram.data_points
    assert sum(p.count for p in points) == 4
    runs = metrics["agentkit.runs"].sum.data_points
    assert [(attrs(p.attributes)["agentkit.run.status"], p.as_int) for p in runs] == [("failed", 1)]
    for body in otlp_receiver.raw_bodies:
        _assert_clean(body, "an OTLP request body")
    assert json.dumps(names)  # the names are plain strings
