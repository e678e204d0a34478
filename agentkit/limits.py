"""Limits: every bound the runtime enforces, in one immutable config object.

Pass one to :class:`agentkit.Supervisor` (``limits=Limits(max_runs_per_user=2)``); there are
no process globals. Use :meth:`Limits.replace` to derive a variant.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from agentkit.errors import ConfigurationError

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on concurrency, queues, time and memory for a :class:`~agentkit.Supervisor`.

    Attributes:
        max_active_runs: global capacity: runs executing at once across all users.
        max_runs_per_user: runs of one user executing at once (the per-user concurrency limit).
        max_queued_per_user: runs of one user waiting for a slot; one more raises
            :class:`~agentkit.QueueFullError` (backpressure).
        run_deadline: seconds a whole run may take from its start, or ``None``.
        stage_timeout: default seconds per stage attempt for agents whose ``timeout`` is
            ``None``; ``None`` means no per-stage limit (the run deadline still applies).
        retry_backoff: first retry delay in seconds; doubles on each further attempt.
        retry_backoff_max: cap on a single retry delay.
        retry_jitter: fraction of the delay added at random (0.5: up to 50 % more).
        event_buffer: events kept per run for its caller. When the caller reads slower than
            the run emits, the oldest unread event is dropped: a run never waits for its
            reader. Drops show as gaps in ``RunEvent.seq`` and in ``RunHandle.events_dropped``.
        engine_idle_ttl: seconds an idle user engine is kept before it is evicted.
        cache_ttl: seconds cached stage results live (``None``: the cache's default).
        cache_timeout: seconds a cache write may take before it counts as a cache error;
            ``None`` (default) relies on the cache's own timeouts (``RedisCache`` has socket
            timeouts and a circuit breaker) and saves a timer per stage.
        drain_timeout: seconds :meth:`~agentkit.Supervisor.aclose` waits for runs in flight
            before cancelling them and recording them as ``interrupted``.
    """

    max_active_runs: int = 64
    max_runs_per_user: int = 4
    max_queued_per_user: int = 1000
    run_deadline: float | None = 600.0
    stage_timeout: float | None = None
    retry_backoff: float = 0.2
    retry_backoff_max: float = 10.0
    retry_jitter: float = 0.5
    event_buffer: int = 1024
    engine_idle_ttl: float = 60.0
    cache_ttl: float | None = None
    cache_timeout: float | None = None
    drain_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("max_active_runs", "max_runs_per_user", "max_queued_per_user", "event_buffer"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"Limits.{name} must be an int >= 1, got {value!r}")
        for name in ("run_deadline", "stage_timeout", "cache_ttl", "cache_timeout"):
            _positive(name, getattr(self, name), optional=True)
        for name in ("retry_backoff_max", "drain_timeout"):
            _positive(name, getattr(self, name), optional=False)
        for name in ("retry_backoff", "retry_jitter", "engine_idle_ttl"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or not math.isfinite(value):
                raise ConfigurationError(f"Limits.{name} must be a number >= 0, got {value!r}")

    def replace(self, **changes: Any) -> Limits:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < math.inf:
        extra = " or None" if optional else ""
        raise ConfigurationError(f"Limits.{name} must be positive seconds{extra}, got {value!r}")
