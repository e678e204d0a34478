"""Choose a cache or store by URL through a tiny registry.

``memory://`` and ``sqlite:///path.db`` are built in; ``redis://``, ``rediss://``, ``unix://``
and ``postgresql://`` load their optional extra lazily. Register your own with
:func:`register_cache` / :func:`register_store`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from agentkit.cache.base import Cache
from agentkit.errors import ConfigurationError, MissingDependencyError, UnknownBackendError
from agentkit.store.base import Store

__all__ = ["cache_from_url", "register_cache", "register_store", "store_from_url"]

#: scheme -> "module:Class" (imported lazily) or a factory taking (url, **options)
_CACHES: dict[str, str | Callable[..., Cache]] = {
    "memory": "agentkit.cache.memory:MemoryCache",
    "redis": "agentkit.cache.redis:RedisCache",
    "rediss": "agentkit.cache.redis:RedisCache",
    "unix": "agentkit.cache.redis:RedisCache",
}
_STORES: dict[str, str | Callable[..., Store]] = {
    "sqlite": "agentkit.store.sqlite:SQLiteStore",
    "postgresql": "agentkit.store.postgres:PostgresStore",
    "postgres": "agentkit.store.postgres:PostgresStore",
}
_EXTRAS = {"redis": ("redis", "redis"), "asyncpg": ("asyncpg", "postgres")}


def register_cache(scheme: str, factory: Callable[..., Cache]) -> None:
    """Make ``scheme://…`` URLs build caches with ``factory(url, **options)``."""
    _CACHES[_check_scheme(scheme)] = factory


def register_store(scheme: str, factory: Callable[..., Store]) -> None:
    """Make ``scheme://…`` URLs build stores with ``factory(url, **options)``."""
    _STORES[_check_scheme(scheme)] = factory


def cache_from_url(url: str, **options: Any) -> Cache:
    """Build the cache for ``url`` (e.g. ``memory://``, ``redis://localhost:6379/0``)."""
    return _build("cache", _CACHES, url, options)  # type: ignore[no-any-return]


def store_from_url(url: str, **options: Any) -> Store:
    """Build the store for ``url`` (e.g. ``sqlite:///runs.db``, ``postgresql://…``)."""
    return _build("store", _STORES, url, options)  # type: ignore[no-any-return]


def _check_scheme(scheme: str) -> str:
    if not isinstance(scheme, str) or not scheme.isidentifier():
        raise ConfigurationError(f"backend scheme must be an identifier, got {scheme!r}")
    return scheme.lower()


def _build(kind: str, table: dict[str, Any], url: str, options: dict[str, Any]) -> Any:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"{kind} must be a URL like {next(iter(table))}://…, got {url!r:.100}"
        )
    scheme = urlsplit(url).scheme.lower()
    target = table.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(table))
        raise UnknownBackendError(f"no {kind} backend for {scheme}:// URLs; known: {known}")
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing in _EXTRAS:
                raise MissingDependencyError(*_EXTRAS[missing]) from exc
            raise
        factory = getattr(module, attr).from_url
    else:
        factory = target
    return factory(url, **options)
