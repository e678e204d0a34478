"""The collector config, the Grafana dashboard and the docs match the metrics agentkit emits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from otel_helpers import Otel

from agentkit.telemetry import MetricNames

DOCS = Path(__file__).resolve().parents[2] / "docs"
_UNIT_SUFFIX = {"s": "_seconds", "By": "_bytes"}


def _emit_every_metric(otel: Otel) -> None:
    tel = otel.tel
    tel.record_agent("a", "failed", 0.1, error_type="ValueError")
    tel.record_encoding("json", 10)
    tel.record_sanitizer({"replaced": 1})
    tel.record_queue_wait(0.1)
    tel.record_cache_error("get", backend="redis")
    tel.record_run("succeeded")
    tel.set_active_engines(1)
    tel.set_outbox_depth(1)
    tel.set_circuit_state("c", "open")


def _prometheus_series(otel: Otel) -> tuple[set[str], set[str]]:
    """(series names, label names) the Collector's prometheus exporter would expose."""
    data = otel.reader.get_metrics_data()
    assert data is not None
    names: set[str] = set()
    labels: set[str] = {"job", "instance", "le"}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                base = m.name.replace(".", "_") + _UNIT_SUFFIX.get(m.unit or "", "")
                kind = type(m.data).__name__
                if kind == "Histogram":
                    names |= {base + "_bucket", base + "_sum", base + "_count"}
                elif kind == "Sum" and m.data.is_monotonic:
                    names.add(base + "_total")
                else:
                    names.add(base)
                for p in m.data.data_points:
                    labels |= {k.replace(".", "_") for k in p.attributes}
    return names, labels


def test_dashboard_queries_only_series_agentkit_exports(otel: Otel) -> None:
    _emit_every_metric(otel)
    series, labels = _prometheus_series(otel)
    dash = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs.append(dash["templating"]["list"][1]["definition"])
    used: set[str] = set()
    for expr in exprs:
        for name in re.findall(r"\b((?:agentkit|gen_ai)_[a-z_]+)\s*[{\[,)]", expr):
            if not name.endswith(("_name", "_status", "_kind", "_layer", "_operation")):
                used.add(name)
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in (x.strip() for x in group.split(",")):
                assert label in labels, f"dashboard groups by unknown label {label!r}"
        for label in re.findall(r"[{,]\s*([a-z_]+)\s*[!=]~?", expr):
            assert label in labels, f"dashboard filters on unknown label {label!r}"
    unknown = used - series
    assert not unknown, f"dashboard queries series agentkit does not export: {sorted(unknown)}"
    covered = {n.rsplit("_", 1)[0] if n.endswith(("_bucket", "_count")) else n for n in used}
    for name in series:
        stem = name.rsplit("_", 1)[0] if name.endswith(("_bucket", "_count", "_sum")) else name
        if stem not in covered and name not in covered:
            raise AssertionError(f"no dashboard panel shows {name}")
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_collector_config_pipelines_are_complete() -> None:
    cfg = yaml.safe_load((DOCS / "otel-collector.yaml").read_text())
    assert cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    pipelines = cfg["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for pipeline in pipelines.values():
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline[section]:
                assert component in cfg[section], f"{component} is used but not defined"
    assert "prometheus" in pipelines["metrics"]["exporters"]
    assert {"otlp/tempo", "otlp/jaeger"} <= set(pipelines["traces"]["exporters"])
    for ext in cfg["service"].get("extensions", []):
        assert ext in cfg["extensions"]


def test_docs_describe_every_span_and_metric() -> None:
    text = (DOCS / "observability.md").read_text()
    names = [v for k, v in vars(MetricNames).items() if k.isupper()]
    assert len(names) == 10
    for name in names:
        assert f"`{name}`" in text, name
    for span in (
        "invoke_workflow {pipeline}",
        "invoke_agent {agent}",
        "agentkit.clean_result",
        "agentkit.codec.encode",
        "agentkit.cache.set",
        "agentkit.store.save",
    ):
        assert f"`{span}`" in text, span
    assert "otel-collector.yaml" in text and "grafana-dashboard.json" in text
