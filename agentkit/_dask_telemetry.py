"""Tracing on Dask workers: :class:`TelemetryPlugin` and the worker's tracer provider.

The supervisor sends the W3C trace context of each stage's ``invoke_agent`` span with the
stage; a worker process with a global tracer provider records the stage under it (see
:mod:`agentkit._dask_worker`). This plugin is the one-line way to give every worker that
provider, through :func:`agentkit.telemetry.configure`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin
from opentelemetry import trace

from agentkit.errors import ConfigurationError

if TYPE_CHECKING:
    from agentkit.telemetry import TelemetryHandle

__all__ = ["TelemetryPlugin", "global_tracer_provider"]

log = logging.getLogger("agentkit.dask.worker")

_OTLP_PROTOCOLS = frozenset({"http/protobuf", "grpc"})
#: what TelemetryPlugin set up in this process (shared by the workers of an in-process cluster)
_TELEMETRY: dict[str, TelemetryHandle] = {}
_TELEMETRY_LOCK = threading.Lock()


class TelemetryPlugin(WorkerPlugin):
    """Dask worker plugin that traces the stages each worker runs, with
    :func:`agentkit.telemetry.configure`.

    Register it like :class:`AgentkitWorkerPlugin` (``DaskExecutor(client, plugin=[...])`` or
    ``await client.register_plugin(TelemetryPlugin(...))``). On each worker process it calls
    ``configure(..., set_global=True)`` once; arguments left ``None`` fall back to the
    worker's ``OTEL_*`` variables, exactly as ``configure()`` documents. A process that
    already has a global tracer provider (the application set one up) is left as it is: a
    provider can be installed once per process. When a worker closes, its spans are flushed.

    The worker's spans are children of the supervisor's ``invoke_agent`` spans; stages of
    runs that were sampled out, or of supervisors without telemetry, are not recorded.

    Args:
        service_name: ``service.name`` of the workers' spans (``OTEL_SERVICE_NAME``).
        otlp_endpoint: base URL of the OTLP receiver, e.g. ``http://collector:4318``
            (``OTEL_EXPORTER_OTLP_ENDPOINT``).
        protocol: ``http/protobuf`` or ``grpc`` (``OTEL_EXPORTER_OTLP_PROTOCOL``).
        headers: OTLP headers. They travel inside the plugin: put API keys here only on a
            TLS-secured cluster; otherwise set ``OTEL_EXPORTER_OTLP_HEADERS`` on the workers.
        resource_attributes: more resource attributes.

    Raises:
        ConfigurationError: an argument of the wrong type, an endpoint that is not an
            ``http(s)://`` URL, or an unknown protocol.
    """

    name = "agentkit-telemetry"
    idempotent = False

    def __init__(
        self,
        service_name: str | None = None,
        otlp_endpoint: str | None = None,
        *,
        protocol: str | None = None,
        headers: Mapping[str, str] | None = None,
        resource_attributes: Mapping[str, str] | None = None,
    ) -> None:
        for what, value in (("service_name", service_name), ("otlp_endpoint", otlp_endpoint)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError(f"{what} must be a non-empty str or None, got {value!r}")
        if otlp_endpoint is not None and not otlp_endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"otlp_endpoint must be an http:// or https:// URL, got {otlp_endpoint!r:.100}"
            )
        if protocol is not None and protocol not in _OTLP_PROTOCOLS:
            raise ConfigurationError(
                f"protocol must be one of {sorted(_OTLP_PROTOCOLS)} or None, got {protocol!r}"
            )
        self.service_name = service_name
        self.otlp_endpoint = otlp_endpoint
        self.protocol = protocol
        self.resource_attributes = _str_mapping("resource_attributes", resource_attributes)
        self._headers = _str_mapping("headers", headers)

    def __repr__(self) -> str:
        return (
            f"TelemetryPlugin(service_name={self.service_name!r}, "
            f"otlp_endpoint={self.otlp_endpoint!r})"
        )

    def setup(self, worker: Any) -> None:
        from agentkit.telemetry import configure

        with _TELEMETRY_LOCK:
            if "handle" in _TELEMETRY:
                return
            if global_tracer_provider() is not None:
                log.info(
                    "agentkit worker %s already has a global tracer provider; "
                    "TelemetryPlugin leaves it in place",
                    getattr(worker, "address", "?"),
                )
                return
            _TELEMETRY["handle"] = configure(
                self.service_name,
                self.otlp_endpoint,
                self.protocol,
                headers=self._headers,
                resource_attributes=self.resource_attributes,
            )

    def teardown(self, worker: Any) -> None:
        # Flushed, not shut down: the provider stays the process's global one (the SDK
        # shuts it down at exit).
        handle = _TELEMETRY.get("handle")
        if handle is not None:
            handle.force_flush()


def _str_mapping(what: str, value: Mapping[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError(f"{what} must be a mapping of str to str")
    return dict(value)


def global_tracer_provider() -> trace.TracerProvider | None:
    """This process's global tracer provider, or None while none was set (or a no-op)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider
