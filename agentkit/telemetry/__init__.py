"""OpenTelemetry traces and metrics of agent runs (GenAI semantic conventions).

The engine calls only :class:`Telemetry`; applications set up the SDK with :func:`configure`
(or bring their own providers). See ``docs/observability.md`` for every span and metric.
"""

from agentkit.telemetry._cli import add_telemetry_options, telemetry_from_args
from agentkit.telemetry._metrics import CIRCUIT_STATES, MetricNames
from agentkit.telemetry._setup import TelemetryHandle, configure
from agentkit.telemetry._spans import SpanHandle
from agentkit.telemetry._telemetry import SCOPE_NAME, Telemetry

__all__ = [
    "CIRCUIT_STATES",
    "SCOPE_NAME",
    "MetricNames",
    "SpanHandle",
    "Telemetry",
    "TelemetryHandle",
    "add_telemetry_options",
    "configure",
    "telemetry_from_args",
]
