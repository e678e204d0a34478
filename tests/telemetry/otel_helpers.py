"""In-memory OpenTelemetry SDK helpers for the telemetry tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentkit.telemetry import Telemetry


@dataclass
class Otel:
    """An SDK wired to in-memory exporters, and a Telemetry bound to it."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tel: Telemetry

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, (name, [s.name for s in self.spans()])
        return found[0]

    def points(self, metric: str) -> list[Any]:
        """All data points of ``metric`` (across scopes), from a fresh collection."""
        data = self.reader.get_metrics_data()
        out: list[Any] = []
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        out.extend(m.data.data_points)
        return out

    def value(self, metric: str, **attrs: Any) -> Any:
        """Sum (counter), value (gauge) or count (histogram) of the points matching attrs."""
        total: Any = None
        for p in self.points(metric):
            if all(p.attributes.get(k) == v for k, v in attrs.items()):
                v = p.count if hasattr(p, "bucket_counts") else p.value
                total = v if total is None else total + v
        return total


def make_otel(record_content: bool = False) -> Otel:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    tel = Telemetry(tracer_provider=tp, meter_provider=mp, record_content=record_content)
    return Otel(tp, mp, exporter, reader, tel)
