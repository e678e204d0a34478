"""Command-line telemetry options shared by the CLI and the example supervisor."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from agentkit.telemetry._setup import configure
from agentkit.telemetry._telemetry import Telemetry

__all__ = ["add_telemetry_options", "telemetry_from_args"]

_ENDPOINT_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


def add_telemetry_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--console-traces`` and ``--otlp-endpoint URL`` to ``parser``."""
    group = parser.add_argument_group(
        "telemetry", "OpenTelemetry traces and metrics (the OTEL_* variables apply too)"
    )
    group.add_argument(
        "--console-traces",
        action="store_true",
        help="print every span as JSON on stderr",
    )
    group.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        default=None,
        help="send traces and metrics over OTLP/HTTP to URL, e.g. http://127.0.0.1:4318 "
        "(a Collector, Jaeger or Tempo); default: $OTEL_EXPORTER_OTLP_ENDPOINT",
    )


@contextmanager
def telemetry_from_args(
    args: argparse.Namespace,
    *,
    service_name: str,
    environ: Mapping[str, str] | None = None,
) -> Iterator[Telemetry]:
    """The :class:`Telemetry` the options ask for; exporters are flushed on exit.

    With neither option nor an ``OTEL_EXPORTER_OTLP_*ENDPOINT`` variable this yields
    ``Telemetry.noop()`` and sets nothing up.

    Args:
        args: parsed arguments from a parser given :func:`add_telemetry_options`.
        service_name: ``service.name`` unless ``OTEL_SERVICE_NAME`` is set.
        environ: the environment to read (defaults to ``os.environ``).

    Raises:
        MissingDependencyError: OTLP requested without ``agentkit[otlp]`` installed.
    """
    env = os.environ if environ is None else environ
    console = bool(getattr(args, "console_traces", False))
    endpoint: str | None = getattr(args, "otlp_endpoint", None)
    if not console and endpoint is None and not any(env.get(v) for v in _ENDPOINT_VARS):
        yield Telemetry.noop()
        return
    handle = configure(
        service_name=env.get("OTEL_SERVICE_NAME") or service_name,
        otlp_endpoint=endpoint,
        console=console,
        set_global=False,
        environ=env,
    )
    try:
        yield handle.telemetry()
    finally:
        handle.shutdown()
