"""Run ids: time-ordered UUIDs (version 7, RFC 9562) as 32 hex digits.

The first 60 bits are the submission time (milliseconds since the epoch, then a 12-bit
fraction of the millisecond), so ids made later sort later. Stores index runs and results by
run id: random ids would scatter every insert over the whole B-tree, while time-ordered ones
append, which dirties far fewer pages per commit. The last 62 bits are random (drawn from the
OS in batches), so ids stay globally unique across processes and unguessable; reads are scoped
by user regardless.
"""

from __future__ import annotations

import os
import time
import weakref

__all__ = ["RunIds"]

_MS_NS = 1_000_000
_RAND_MASK = (1 << 62) - 1
_VARIANT = 0b10 << 62


class RunIds:
    """A source of run ids, strictly increasing within the source even if the clock steps
    back. Random bits come from the OS in batches (one syscall per 256 ids); a forked child
    drops the inherited batch, so parent and child never hand out the same ids."""

    __slots__ = ("__weakref__", "_buf", "_last", "_pos")

    _BATCH = 256

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._last = 0  # the last (milliseconds << 12 | fraction) handed out
        _ALL.add(self)

    def reset(self) -> None:
        """Forget the current batch of random bits."""
        self._buf = b""
        self._pos = 0

    def next(self) -> str:
        """A new run id."""
        pos = self._pos
        if pos >= len(self._buf):
            self._buf = os.urandom(8 * self._BATCH)
            pos = 0
        self._pos = pos + 8
        ns = time.time_ns()
        ms, frac = divmod(ns, _MS_NS)
        stamp = (ms << 12) | (frac * 4096 // _MS_NS)
        if stamp <= self._last:
            stamp = self._last + 1
        self._last = stamp
        high = ((stamp >> 12) << 16) | 0x7000 | (stamp & 0xFFF)
        low = _VARIANT | (int.from_bytes(self._buf[pos : pos + 8], "big") & _RAND_MASK)
        return f"{high:016x}{low:016x}"


_ALL: weakref.WeakSet[RunIds] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for ids in list(_ALL):
        ids.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
