"""The metric instruments agentkit records (names are part of the public contract).

No instrument takes a per-user attribute: user ids (even hashed) would make every series
per user and blow up the cardinality of a metrics backend.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Final

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

AttrKey = tuple[tuple[str, str], ...]

__all__ = ["CIRCUIT_STATES", "Instruments", "MetricNames"]


class MetricNames:
    """Instrument names, as they appear in OTLP (Prometheus turns dots into underscores)."""

    AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
    CODEC_ENCODINGS: Final = "agentkit.codec.encodings"
    SANITIZER_REPLACEMENTS: Final = "agentkit.sanitizer.replacements"
    PAYLOAD_SIZE: Final = "agentkit.payload.size"
    CACHE_ERRORS: Final = "agentkit.cache.errors"
    CIRCUIT_STATE: Final = "agentkit.cache.circuit.state"
    OUTBOX_DEPTH: Final = "agentkit.store.outbox.depth"
    QUEUE_WAIT: Final = "agentkit.queue.wait"
    ACTIVE_ENGINES: Final = "agentkit.engines.active"
    RUNS: Final = "agentkit.runs"


#: numeric value of the circuit state gauge for each state name
CIRCUIT_STATES: Final[Mapping[str, int]] = {"closed": 0, "half_open": 1, "open": 2}

# Seconds: semantic-convention boundaries for GenAI operation durations.
_DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_WAIT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
_SIZE_BUCKETS: Final = (
    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
)  # fmt: skip


class LocalCounts:
    """Monotonic counts kept in this process and reported by an observable counter.

    Adding to a dict under a lock costs a fraction of a microsecond; a synchronous SDK
    counter costs several microseconds per ``add`` (it builds a measurement, copies and
    sorts the attributes and offers an exemplar). The exported metric is the same: a
    cumulative monotonic sum per attribute set, read when the reader collects.
    """

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[AttrKey, int] = {}

    def add(self, key: AttrKey, amount: int = 1) -> None:
        """Count ``amount`` for the attribute set ``key`` (``((name, value), ...)``)."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        """The observable counter's callback: every attribute set and its total."""
        with self._lock:
            items = list(self._counts.items())
        return [Observation(total, dict(key)) for key, total in items]


class Instruments:
    """All instruments of one meter provider, shared by every :class:`Telemetry` on it.

    Use :meth:`for_provider`: counters are observable instruments reading
    :class:`LocalCounts`, and an SDK meter registers an instrument name once (a second
    registration would keep the first one's callback), so each provider gets one set.
    """

    __slots__ = (
        "active_engines",
        "agent_duration",
        "cache_errors",
        "circuit_state",
        "codec_encodings",
        "outbox_depth",
        "payload_size",
        "queue_wait",
        "runs",
        "sanitizer_replacements",
    )

    def __init__(self, meter: metrics.Meter) -> None:
        self.agent_duration = meter.create_histogram(
            MetricNames.AGENT_DURATION,
            unit="s",
            description="Duration of one agent invocation (one attempt of one stage).",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.codec_encodings = LocalCounts()
        meter.create_observable_counter(
            MetricNames.CODEC_ENCODINGS,
            callbacks=[self.codec_encodings.observe],
            unit="{encoding}",
            description="Results encoded by the codec, by the layer that encoded them.",
        )
        self.sanitizer_replacements = LocalCounts()
        meter.create_observable_counter(
            MetricNames.SANITIZER_REPLACEMENTS,
            callbacks=[self.sanitizer_replacements.observe],
            unit="{replacement}",
            description="Values the sanitizer changed, by kind (replaced, redacted, ...).",
        )
        self.payload_size = meter.create_histogram(
            MetricNames.PAYLOAD_SIZE,
            unit="By",
            description="Size of encoded result envelopes.",
            explicit_bucket_boundaries_advisory=_SIZE_BUCKETS,
        )
        self.cache_errors = LocalCounts()
        meter.create_observable_counter(
            MetricNames.CACHE_ERRORS,
            callbacks=[self.cache_errors.observe],
            unit="{error}",
            description="Cache operations that failed (each degraded to a miss).",
        )
        self.circuit_state = meter.create_gauge(
            MetricNames.CIRCUIT_STATE,
            unit="{state}",
            description="Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        )
        self.outbox_depth = meter.create_gauge(
            MetricNames.OUTBOX_DEPTH,
            unit="{record}",
            description="Store writes waiting in the outbox for replay.",
        )
        self.queue_wait = meter.create_histogram(
            MetricNames.QUEUE_WAIT,
            unit="s",
            description="Time a run waited in the queue before it started.",
            explicit_bucket_boundaries_advisory=_WAIT_BUCKETS,
        )
        self.active_engines = meter.create_gauge(
            MetricNames.ACTIVE_ENGINES,
            unit="{engine}",
            description="Per-user execution engines currently alive.",
        )
        self.runs = LocalCounts()
        meter.create_observable_counter(
            MetricNames.RUNS,
            callbacks=[self.runs.observe],
            unit="{run}",
            description="Runs finished, by terminal status.",
        )

    @classmethod
    def for_provider(cls, provider: object, meter: metrics.Meter) -> Instruments:
        """The instruments of ``provider`` (made on ``meter`` the first time)."""
        with _SHARED_LOCK:
            try:
                found = _SHARED.get(provider)
            except TypeError:  # not weak-referenceable: no sharing
                return cls(meter)
            if found is None:
                found = cls(meter)
                _SHARED[provider] = found
            return found


_SHARED: weakref.WeakKeyDictionary[object, Instruments] = weakref.WeakKeyDictionary()
_SHARED_LOCK: Final = threading.Lock()
