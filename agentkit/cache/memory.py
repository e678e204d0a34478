"""``memory://``: an in-process LRU cache with TTLs and a byte bound (the default cache).

Every operation is O(1): entries live in an :class:`collections.OrderedDict` ordered from
least to most recently used. Three bounds apply at once, and none can be switched off:

* ``max_bytes`` — the charged size of all entries: ``len(key) + len(value) + ENTRY_OVERHEAD``
  each, where ``ENTRY_OVERHEAD`` (250 bytes) approximates the Python objects around them, so
  the bound tracks the memory the cache really holds. A write that would exceed it evicts
  least recently used entries until the cache fits again.
* ``max_entries`` — the number of entries; the least recently used one goes first.
* ``ttl`` — the default lifetime in seconds; expired entries are misses and are dropped when
  touched, when they reach the LRU end, or by :meth:`MemoryCache.purge_expired`.

A single value larger than ``max_bytes`` is refused: the write raises :class:`CacheError`
(the engine counts cache errors and treats them as misses), any older value under that key is
dropped so no stale bytes are served, and ``stats.oversize`` is incremented.

The cache is safe to share between asyncio tasks and threads: each operation holds a short
lock and never awaits while holding it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from agentkit._envelope_check import check_result_envelope
from agentkit.cache.base import BaseCache
from agentkit.errors import CacheError, ConfigurationError

__all__ = ["CacheStats", "MemoryCache"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_TTL = 3600.0


@dataclass(slots=True)
class CacheStats:
    """Counters of a :class:`MemoryCache` since it was created."""

    hits: int = 0
    misses: int = 0
    sets: int = 0
    evictions: int = 0  #: entries dropped to respect ``max_bytes`` or ``max_entries``
    expirations: int = 0  #: entries dropped because their TTL ran out
    oversize: int = 0  #: values refused because they alone exceed ``max_bytes``


class MemoryCache(BaseCache):
    """LRU + TTL + byte-bounded cache held in this process.

    Args:
        max_bytes: bound on the charged size of all entries (see :meth:`charge`).
        max_entries: bound on the number of entries.
        ttl: default lifetime of an entry in seconds (``None``: entries live until evicted;
            the byte and entry bounds still apply).
        clock: monotonic clock in seconds; tests may pass their own.

    Example:
        >>> cache = MemoryCache.from_url("memory://?max_bytes=1048576&ttl=60")
    """

    url_schemes = ("memory",)
    #: bytes charged per entry on top of ``len(key) + len(value)``: the str and bytes object
    #: headers, the tuple, the expiry float and the ordered-dict slot (measured on CPython 3.11)
    ENTRY_OVERHEAD = 250

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl: float | None = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(default_ttl=ttl)
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ConfigurationError(f"max_bytes must be a positive int, got {max_bytes!r}")
        if not isinstance(max_entries, int) or max_entries <= 0:
            raise ConfigurationError(f"max_entries must be a positive int, got {max_entries!r}")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._clock = clock
        # key -> (value, expires_at or None); first item = least recently used
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryCache:
        """Build a cache from ``memory://?max_bytes=…&max_entries=…&ttl=…``.

        Keyword ``options`` override the query. ``ttl=none`` (or ``0``) disables the default
        TTL; the size bounds still apply.

        Raises:
            ConfigurationError: not a ``memory://`` URL, or an unknown or invalid option.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "memory" or parts.netloc or parts.path not in ("", "/"):
            raise ConfigurationError(
                f"MemoryCache takes URLs like memory://?max_bytes=67108864, got {url!r:.100}"
            )
        merged: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        merged.update(options)
        known = {"max_bytes", "max_entries", "ttl"}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown memory:// option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for name in ("max_bytes", "max_entries"):
            if name in merged:
                kwargs[name] = _as_int(name, merged[name])
        if "ttl" in merged:
            kwargs["ttl"] = _as_ttl(merged["ttl"])
        return cls(**kwargs)

    # --- introspection ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size_bytes(self) -> int:
        """Charged size of all entries (:meth:`charge` each)."""
        return self._bytes

    @classmethod
    def charge(cls, key: str, value: bytes) -> int:
        """Bytes an entry counts against ``max_bytes``."""
        return len(key) + len(value) + cls.ENTRY_OVERHEAD

    def __repr__(self) -> str:
        return (
            f"MemoryCache(entries={len(self._data)}, bytes={self._bytes}, "
            f"max_bytes={self.max_bytes}, max_entries={self.max_entries}, "
            f"ttl={self.default_ttl})"
        )

    def purge_expired(self) -> int:
        """Drop every expired entry now (O(n)); return how many were dropped."""
        now = self._clock()
        with self._lock:
            dead = [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]
            for key in dead:
                value, _ = self._data.pop(key)
                self._bytes -= self.charge(key, value)
            self.stats.expirations += len(dead)
        return len(dead)

    # --- BaseCache hooks ---------------------------------------------------------------------

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        # BaseCache.set for one entry without the list and the extra call
        if type(self)._set_many is not MemoryCache._set_many:
            await super().set(key, value, ttl=ttl)  # a subclass hooks _set_many: go through it
            return
        self.set_nowait(key, value, ttl=ttl)

    def set_nowait(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """:meth:`set` without awaiting (the cache is in this process, so nothing waits):
        the engine's path, one call per stage result.

        Raises:
            InvalidPayloadError: ``value`` is not a result envelope. ConfigurationError: a bad
                key or TTL. CacheError: the cache is closed, or ``value`` alone exceeds
                ``max_bytes``.
        """
        if type(self)._set_many is not MemoryCache._set_many:
            raise CacheError(
                f"{type(self).__name__} overrides _set_many, so writes go through it; "
                "await set() instead"
            )
        check_result_envelope(value)
        if type(key) is not str or not key:
            self._check_key(key)  # raises
        ttl = self.default_ttl if ttl is None else self._ttl(ttl)
        self._check_open()
        now = self._clock()
        size = len(key) + len(value) + self.ENTRY_OVERHEAD
        stats = self.stats
        with self._lock:
            data = self._data
            old = data.pop(key, None)
            if old is not None:
                self._bytes -= self.charge(key, old[0])
            if size <= self.max_bytes:
                data[key] = (value, None if ttl is None else now + ttl)
                self._bytes += size
                stats.sets += 1
                oldest = next(iter(data.values()))[1]
                if (
                    self._bytes > self.max_bytes
                    or len(data) > self.max_entries
                    or (oldest is not None and oldest <= now)
                ):
                    self._shrink(now)  # else it would find nothing to drop
                return
            stats.oversize += 1
            self._shrink(now)
        raise CacheError(
            f"1 value(s) refused: each alone (plus {self.ENTRY_OVERHEAD} bytes "
            f"of bookkeeping) is larger than the cache's max_bytes={self.max_bytes}; raise "
            "max_bytes (memory://?max_bytes=N) or cache smaller results"
        )

    async def _get(self, key: str) -> bytes | None:
        self._check_open()
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            value, expires = entry
            if expires is not None and expires <= self._clock():
                del self._data[key]
                self._bytes -= self.charge(key, value)
                self.stats.expirations += 1
                self.stats.misses += 1
                return None
            self._data.move_to_end(key)
            self.stats.hits += 1
            return value

    async def _set_many(self, items: list[tuple[str, bytes]], ttl: float | None) -> None:
        self._check_open()
        now = self._clock()
        expires = None if ttl is None else now + ttl
        refused: list[str] = []
        with self._lock:
            data = self._data
            for key, value in items:
                old = data.pop(key, None)
                if old is not None:
                    self._bytes -= self.charge(key, old[0])
                size = self.charge(key, value)
                if size > self.max_bytes:
                    self.stats.oversize += 1
                    refused.append(key)
                    continue
                data[key] = (value, expires)
                self._bytes += size
                self.stats.sets += 1
            self._shrink(now)
        if refused:
            raise CacheError(
                f"{len(refused)} value(s) refused: each alone (plus {self.ENTRY_OVERHEAD} bytes "
                f"of bookkeeping) is larger than the cache's max_bytes={self.max_bytes}; raise "
                "max_bytes (memory://?max_bytes=N) or cache smaller results"
            )

    async def _delete(self, key: str) -> bool:
        self._check_open()
        with self._lock:
            old = self._data.pop(key, None)
            if old is None:
                return False
            self._bytes -= self.charge(key, old[0])
            return old[1] is None or old[1] > self._clock()

    async def _aclose(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    # --- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise CacheError("this MemoryCache is closed; create a new one")

    def _shrink(self, now: float) -> None:
        """Evict from the LRU end until both bounds hold (caller holds the lock)."""
        data = self._data
        while data and (self._bytes > self.max_bytes or len(data) > self.max_entries):
            key, (value, expires) = data.popitem(last=False)
            self._bytes -= self.charge(key, value)
            if expires is not None and expires <= now:
                self.stats.expirations += 1
            else:
                self.stats.evictions += 1
        # expired entries that reached the LRU end cost nothing to drop now
        while data:
            key, (value, expires) = next(iter(data.items()))
            if expires is None or expires > now:
                break
            del data[key]
            self._bytes -= self.charge(key, value)
            self.stats.expirations += 1


def _as_int(name: str, raw: object) -> int:
    if isinstance(raw, bool):
        raise ConfigurationError(f"{name} must be a positive int, got {raw!r}")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw))
    except ValueError:
        raise ConfigurationError(f"{name} must be a positive int, got {raw!r}") from None


def _as_ttl(raw: object) -> float | None:
    if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "0")):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ConfigurationError(f"ttl must be positive seconds or 'none', got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"ttl must be positive seconds or 'none', got {raw!r}") from None
    return None if value == 0 else value
