"""A small async-friendly circuit breaker for backends that must fail fast.

States::

    closed ──N consecutive failures──▶ open ──cool-down elapsed──▶ half_open
      ▲                                  ▲                             │
      └────────── probe succeeds ────────┼──────── probe fails ────────┘

While ``open`` every call is refused at once (the caller treats it as a miss or a no-op).
After ``cooldown`` seconds the next call is let through as the single probe
(``half_open``); other calls keep being refused until the probe reports. Every state
change is logged, counted in :attr:`CircuitBreaker.transitions`, and sent to listeners
(for example ``Telemetry.set_circuit_state``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from enum import StrEnum

from agentkit.errors import ConfigurationError

__all__ = ["BreakerState", "CircuitBreaker", "StateListener"]

_log = logging.getLogger("agentkit.cache.breaker")


class BreakerState(StrEnum):
    """Where a :class:`CircuitBreaker` is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: ``listener(breaker_name, old_state, new_state)``; must not raise (errors are logged).
StateListener = Callable[[str, BreakerState, BreakerState], None]


class CircuitBreaker:
    """Counts consecutive failures and refuses calls while the backend is known to be down.

    Use it around each backend operation::

        if not breaker.allow():
            return None            # open: a miss, at once
        try:
            value = await op()
        except BackendFault:
            breaker.record_failure()
            raise
        breaker.record_success()

    Args:
        name: label for logs and listeners (e.g. ``"redis"``).
        failure_threshold: consecutive failures that open the circuit.
        cooldown: seconds the circuit stays open before one probe is let through.
        clock: monotonic clock in seconds (tests may pass their own).
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_listeners",
        "_opened_at",
        "_probe_in_flight",
        "_state",
        "cooldown",
        "failure_threshold",
        "name",
        "rejected",
        "transitions",
    )

    def __init__(
        self,
        name: str = "cache",
        *,
        failure_threshold: int = 5,
        cooldown: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(failure_threshold, int) or failure_threshold < 1:
            raise ConfigurationError(
                f"failure_threshold must be an int >= 1, got {failure_threshold!r}"
            )
        if not cooldown > 0:
            raise ConfigurationError(f"cooldown must be positive seconds, got {cooldown!r}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = float(cooldown)
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._listeners: list[StateListener] = []
        #: number of entries into each state since creation
        self.transitions: Counter[BreakerState] = Counter()
        #: calls refused because the circuit was open (or a probe was in flight)
        self.rejected = 0

    @property
    def state(self) -> BreakerState:
        """The current state (an open circuit whose cool-down elapsed still reads ``open``
        until a call probes it)."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(name, old, new)`` on every state change."""
        self._listeners.append(listener)

    def allow(self) -> bool:
        """True if a call may go to the backend now; False means: treat it as refused."""
        state = self._state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            if self._clock() - self._opened_at >= self.cooldown:
                self._set(BreakerState.HALF_OPEN)
                self._probe_in_flight = True
                return True
            self.rejected += 1
            return False
        if not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        self.rejected += 1
        return False

    def record_success(self) -> None:
        """The call that :meth:`allow` let through succeeded."""
        self._failures = 0
        self._probe_in_flight = False
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """The call that :meth:`allow` let through failed."""
        self._failures += 1
        self._probe_in_flight = False
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)
        elif self._state is BreakerState.OPEN:
            # a call admitted before the circuit opened failed late: restart the cool-down
            self._opened_at = self._clock()

    def release(self) -> None:
        """The admitted call ended without telling success from failure (e.g. cancelled)."""
        self._probe_in_flight = False

    def _set(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        self.transitions[new] += 1
        log = _log.warning if new is BreakerState.OPEN else _log.info
        log(
            "circuit %r: %s -> %s (consecutive failures: %d)",
            self.name,
            old.value,
            new.value,
            self._failures,
        )
        for listener in self._listeners:
            try:
                listener(self.name, old, new)
            except Exception:
                _log.exception("circuit %r: state listener %r failed", self.name, listener)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker({self.name!r}, state={self._state.value}, "
            f"failures={self._failures}/{self.failure_threshold}, cooldown={self.cooldown})"
        )
