"""``configure()``: set up the OpenTelemetry SDK for an app, the example or the CLI.

Libraries should not configure telemetry; applications do. agentkit's engine only uses the
API (through :class:`~agentkit.telemetry.Telemetry`); this helper is for programs that run
agentkit and want traces and metrics out with one call, honouring the standard variables:

* ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` (resource)
* ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``_TRACES_ENDPOINT`` / ``_METRICS_ENDPOINT`` (turn OTLP on)
* ``OTEL_EXPORTER_OTLP_PROTOCOL`` / ``_TRACES_PROTOCOL`` (``http/protobuf`` or ``grpc``)
* ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``... (read by the exporter)
* ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``, ``console``, ``none``)
* ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_BSP_*`` (read by the SDK)
* ``OTEL_SDK_DISABLED=true`` (everything off; ``telemetry()`` returns the no-op)
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Final

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from agentkit.errors import ConfigurationError, MissingDependencyError
from agentkit.telemetry._telemetry import Telemetry

__all__ = ["TelemetryHandle", "configure"]

_DEFAULT_SERVICE: Final = "agentkit"
_HTTP: Final = "http/protobuf"
_GRPC: Final = "grpc"


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _exporter_choice(name: str, environ: Mapping[str, str]) -> set[str] | None:
    value = _env(name, environ)
    if value is None:
        return None
    return {part.strip().lower() for part in value.split(",") if part.strip()}


class TelemetryHandle:
    """What :func:`configure` set up: the SDK providers, and ``shutdown()``.

    Use it as a context manager, or call :meth:`shutdown` before the process exits so the
    batch processors flush the last spans and metrics.
    """

    def __init__(
        self,
        tracer_provider: SdkTracerProvider,
        meter_provider: SdkMeterProvider,
        *,
        record_content: bool,
        disabled: bool,
        exporters: Sequence[str],
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.record_content = record_content
        self.disabled = disabled
        #: what was set up, for logs: e.g. ``["otlp http/protobuf http://127.0.0.1:4318"]``
        self.exporters = list(exporters)
        self._closed = False

    def telemetry(
        self, record_content: bool | None = None, *, step_spans: bool = True
    ) -> Telemetry:
        """A :class:`Telemetry` bound to these providers, to pass to ``Supervisor``.

        Args:
            record_content: override the handle's ``record_content`` default.
            step_spans: see :class:`Telemetry` (False keeps agent spans and metrics only).
        """
        if self.disabled:
            return Telemetry.noop()
        return Telemetry(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            record_content=self.record_content if record_content is None else record_content,
            step_spans=step_spans,
        )

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        """Export everything buffered now; True when both providers flushed in time."""
        millis = int(timeout_s * 1000)
        spans_ok = self.tracer_provider.force_flush(millis)
        metrics_ok = self.meter_provider.force_flush(millis)
        return bool(spans_ok and metrics_ok)

    def shutdown(self) -> None:
        """Flush and stop the exporters (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.tracer_provider.shutdown()
        finally:
            self.meter_provider.shutdown()

    def __enter__(self) -> TelemetryHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def _import_otlp(protocol: str) -> tuple[type[Any], type[Any]]:
    if protocol == _HTTP:
        try:
            trace_mod = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.http.trace_exporter"
            )
            metric_mod = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.http.metric_exporter"
            )
        except ImportError as exc:
            raise MissingDependencyError("opentelemetry-exporter-otlp-proto-http", "otlp") from exc
    elif protocol == _GRPC:
        try:
            trace_mod = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
            )
            metric_mod = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.grpc.metric_exporter"
            )
        except ImportError as exc:
            raise ConfigurationError(
                "OTLP protocol 'grpc' needs the gRPC exporter, which agentkit[otlp] does not "
                "include; install it with: pip install opentelemetry-exporter-otlp-proto-grpc "
                "(or use protocol='http/protobuf')"
            ) from exc
    else:
        raise ConfigurationError(
            f"unsupported OTLP protocol {protocol!r}; use 'http/protobuf' (default) or 'grpc'"
        )
    return trace_mod.OTLPSpanExporter, metric_mod.OTLPMetricExporter


def _signal_endpoint(base: str, protocol: str, signal: str) -> str:
    base = base.rstrip("/")
    if protocol == _GRPC:
        return base
    suffix = f"/v1/{signal}"
    return base if base.endswith(suffix) else base + suffix


def _endpoint_for(
    explicit: str | None, signal_env: str | None, base_env: str | None, proto: str, signal: str
) -> str | None:
    # Resolved here rather than by the exporter so that ``environ=`` is honoured.
    if explicit is not None:
        return _signal_endpoint(explicit, proto, signal)
    if signal_env is not None:
        return signal_env
    if base_env is not None:
        return _signal_endpoint(base_env, proto, signal)
    return None


def configure(
    service_name: str | None = None,
    otlp_endpoint: str | None = None,
    protocol: str | None = None,
    console: bool | IO[str] = False,
    *,
    headers: Mapping[str, str] | None = None,
    record_content: bool = False,
    resource_attributes: Mapping[str, str] | None = None,
    span_exporters: Sequence[SpanExporter] = (),
    metric_readers: Sequence[MetricReader] = (),
    metric_export_interval_s: float | None = None,
    set_global: bool = True,
    environ: Mapping[str, str] | None = None,
) -> TelemetryHandle:
    """Set up SDK tracer and meter providers with OTLP and/or console exporters.

    Example::

        handle = agentkit.telemetry.configure(otlp_endpoint="http://127.0.0.1:4318")
        async with Supervisor(..., telemetry=handle.telemetry()) as sup: ...
        handle.shutdown()

    Args:
        service_name: ``service.name`` of the resource; defaults to ``OTEL_SERVICE_NAME``,
            then ``"agentkit"``.
        otlp_endpoint: base URL of an OTLP receiver (a Collector, Jaeger, Tempo), e.g.
            ``http://127.0.0.1:4318``; defaults to ``OTEL_EXPORTER_OTLP_ENDPOINT``. With
            neither (and no per-signal endpoint variable), OTLP export is off.
        protocol: ``http/protobuf`` (default) or ``grpc``; defaults to
            ``OTEL_EXPORTER_OTLP_PROTOCOL``.
        console: print finished spans as JSON to stderr (or to the given text stream).
        headers: extra OTLP headers (e.g. an API key); otherwise the exporter reads
            ``OTEL_EXPORTER_OTLP_HEADERS``.
        record_content: default of ``handle.telemetry()``: record clean output content.
        resource_attributes: more resource attributes (merged over ``OTEL_RESOURCE_ATTRIBUTES``).
        span_exporters: more span exporters (each gets a batch processor).
        metric_readers: more metric readers (e.g. an in-memory reader in tests).
        metric_export_interval_s: OTLP metric export interval; defaults to
            ``OTEL_METRIC_EXPORT_INTERVAL`` (60 s).
        set_global: also install the providers as the process-wide global ones.
        environ: the environment to read (defaults to ``os.environ``). Exporter details
            such as ``OTEL_EXPORTER_OTLP_HEADERS``, timeouts and certificates are read by the
            exporter from the process environment.

    Returns:
        A :class:`TelemetryHandle`; call ``shutdown()`` (or use ``with``) at exit.

    Raises:
        MissingDependencyError: OTLP is requested but the exporter is not installed
            (``pip install 'agentkit[otlp]'``).
        ConfigurationError: unknown protocol.
    """
    env = os.environ if environ is None else environ
    disabled = (_env("OTEL_SDK_DISABLED", env) or "").lower() == "true"
    attrs: dict[str, Any] = dict(resource_attributes or {})
    attrs["service.name"] = service_name or _env("OTEL_SERVICE_NAME", env) or _DEFAULT_SERVICE
    resource = Resource.create(attrs)

    traces_choice = _exporter_choice("OTEL_TRACES_EXPORTER", env)
    metrics_choice = _exporter_choice("OTEL_METRICS_EXPORTER", env)
    endpoint = otlp_endpoint or _env("OTEL_EXPORTER_OTLP_ENDPOINT", env)
    traces_endpoint = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", env)
    metrics_endpoint = _env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", env)

    otlp_traces = bool(endpoint or traces_endpoint) or bool(
        traces_choice and "otlp" in traces_choice
    )
    otlp_metrics = bool(endpoint or metrics_endpoint) or bool(
        metrics_choice and "otlp" in metrics_choice
    )
    if traces_choice is not None and "otlp" not in traces_choice and otlp_endpoint is None:
        otlp_traces = False
    if metrics_choice is not None and "otlp" not in metrics_choice and otlp_endpoint is None:
        otlp_metrics = False
    if traces_choice and "console" in traces_choice and console is False:
        console = True

    processors: list[SpanProcessor] = []
    readers: list[MetricReader] = list(metric_readers)
    described: list[str] = []
    if not disabled and (otlp_traces or otlp_metrics):
        proto = (
            protocol
            or _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env)
            or _env("OTEL_EXPORTER_OTLP_PROTOCOL", env)
            or _HTTP
        ).lower()
        span_cls, metric_cls = _import_otlp(proto)
        common: dict[str, Any] = {}
        if headers:
            common["headers"] = dict(headers)
        if otlp_traces:
            kwargs = dict(common)
            url = _endpoint_for(otlp_endpoint, traces_endpoint, endpoint, proto, "traces")
            if url is not None:
                kwargs["endpoint"] = url
            processors.append(BatchSpanProcessor(span_cls(**kwargs)))
            described.append(f"otlp traces {proto} {kwargs.get('endpoint', '(default)')}")
        if otlp_metrics:
            kwargs = dict(common)
            url = _endpoint_for(otlp_endpoint, metrics_endpoint, endpoint, proto, "metrics")
            if url is not None:
                kwargs["endpoint"] = url
            interval = None if metric_export_interval_s is None else metric_export_interval_s * 1e3
            readers.append(
                PeriodicExportingMetricReader(metric_cls(**kwargs), export_interval_millis=interval)
            )
            described.append(f"otlp metrics {proto} {kwargs.get('endpoint', '(default)')}")
    if console is not False and not disabled:
        stream: IO[str] = sys.stderr if console is True else console
        processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=stream)))
        described.append("console traces")
    for exporter in span_exporters:
        processors.append(BatchSpanProcessor(exporter))
        described.append(f"span exporter {type(exporter).__name__}")

    tracer_provider = SdkTracerProvider(resource=resource)
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    meter_provider = SdkMeterProvider(resource=resource, metric_readers=readers)
    if set_global and not disabled:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return TelemetryHandle(
        tracer_provider,
        meter_provider,
        record_content=record_content,
        disabled=disabled,
        exporters=described,
    )
