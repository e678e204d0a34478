"""The cache plug point: a handful of async methods on bytes, plus ``aclose()``.

Caches are best effort: the engine turns any cache error into a miss. Keys arrive already
namespaced and scoped by a keyed user hash (see :mod:`agentkit.keys`); values are codec
envelopes bound to their key, and write methods refuse anything else (design invariant 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agentkit._envelope_check import check_result_envelope
from agentkit.errors import ConfigurationError

__all__ = ["BaseCache", "Cache"]


@runtime_checkable
class Cache(Protocol):
    """What the engine needs from a cache. Implement this to plug in your own."""

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or ``None`` on a miss."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: the default TTL)."""
        ...

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Store several values at once (one round trip where the backend allows)."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        ...

    async def aclose(self) -> None:
        """Release connections and resources; idempotent."""
        ...


class BaseCache:
    """Base class for in-tree caches: validates writes, then calls the ``_``-methods.

    Subclasses implement ``_get``, ``_set_many``, ``_delete`` and optionally ``_aclose``.
    """

    url_schemes: tuple[str, ...] = ()

    def __init__(self, *, default_ttl: float | None = 3600.0) -> None:
        if default_ttl is not None and default_ttl <= 0:
            raise ConfigurationError("default_ttl must be positive seconds or None")
        self.default_ttl = default_ttl
        self._closed = False

    def _ttl(self, ttl: float | None) -> float | None:
        if ttl is None:
            return self.default_ttl
        if ttl <= 0:
            raise ConfigurationError(f"ttl must be positive seconds, got {ttl!r}")
        return ttl

    @staticmethod
    def _check_key(key: object) -> str:
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"cache keys are non-empty str, got {key!r:.80}")
        return key

    async def get(self, key: str) -> bytes | None:
        return await self._get(self._check_key(key))

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        check_result_envelope(value)
        await self._set_many([(self._check_key(key), value)], self._ttl(ttl))

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        checked = []
        for key, value in items:
            check_result_envelope(value)
            checked.append((self._check_key(key), value))
        if checked:
            await self._set_many(checked, self._ttl(ttl))

    async def delete(self, key: str) -> bool:
        return await self._delete(self._check_key(key))

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._aclose()

    async def __aenter__(self) -> BaseCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- for subclasses ------------------------------------------------------------------

    async def _get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def _set_many(self, items: list[tuple[str, bytes]], ttl: float | None) -> None:
        raise NotImplementedError

    async def _delete(self, key: str) -> bool:
        raise NotImplementedError

    async def _aclose(self) -> None:
        return None
