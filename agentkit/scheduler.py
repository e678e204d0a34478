"""Fair scheduling of queued runs across users under a global and a per-user limit.

Each user has a :class:`Lane` (a FIFO of that user's queued runs). Lanes that have queued runs
and a free per-user slot wait in a ring; whenever a global slot is free the scheduler starts
the first run of the lane at the head of the ring and, if that lane still has work, puts it
at the back. So a user with 1,000 queued runs gets one start per turn, like a user with one:
nobody starves, and a user's own runs start in submission order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from agentkit.errors import ConfigurationError

__all__ = ["FairScheduler", "Lane"]

T = TypeVar("T")


class Lane(Generic[T]):
    """One user's queue and count of running runs."""

    __slots__ = ("active", "in_ring", "queue")

    def __init__(self) -> None:
        self.queue: deque[T] = deque()
        self.active = 0
        self.in_ring = False

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing running."""
        return not self.queue and self.active == 0


class FairScheduler(Generic[T]):
    """Round-robin across lanes, at most ``max_active`` running overall and
    ``max_per_lane`` per lane.

    Args:
        max_active: global capacity.
        max_per_lane: per-user concurrency.
        start: called (synchronously) with the lane and the item to start it; must not raise.
    """

    def __init__(
        self, max_active: int, max_per_lane: int, start: Callable[[Lane[T], T], None]
    ) -> None:
        if max_active < 1 or max_per_lane < 1:
            raise ConfigurationError("scheduler limits must be >= 1")
        self.max_active = max_active
        self.max_per_lane = max_per_lane
        self.active = 0
        self._start = start
        self._ring: deque[Lane[T]] = deque()

    @property
    def waiting_lanes(self) -> int:
        """Lanes that have queued work and a free per-lane slot."""
        return len(self._ring)

    def enqueue(self, lane: Lane[T], item: T) -> None:
        """Queue ``item`` at the back of ``lane`` and start what capacity allows."""
        lane.queue.append(item)
        self._offer(lane)
        self._dispatch()

    def remove(self, lane: Lane[T], item: T) -> bool:
        """Take a queued ``item`` out of ``lane``; False if it is not queued (any more)."""
        try:
            lane.queue.remove(item)
        except ValueError:
            return False
        if not lane.queue and lane.in_ring:
            self._ring.remove(lane)
            lane.in_ring = False
        return True

    def release(self, lane: Lane[T]) -> None:
        """An item of ``lane`` finished: free its slots and start what can start."""
        self.active -= 1
        lane.active -= 1
        self._offer(lane)
        self._dispatch()

    def _offer(self, lane: Lane[T]) -> None:
        if lane.queue and not lane.in_ring and lane.active < self.max_per_lane:
            lane.in_ring = True
            self._ring.append(lane)

    def _dispatch(self) -> None:
        ring = self._ring
        while ring and self.active < self.max_active:
            lane = ring.popleft()
            lane.in_ring = False
            item = lane.queue.popleft()
            self.active += 1
            lane.active += 1
            self._offer(lane)
            self._start(lane, item)
