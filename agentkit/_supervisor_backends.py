"""How a Supervisor turns its ``cache=``, ``store=``, ``outbox=`` and ``executor=`` arguments
into backends: URLs through the registries, remote stores wrapped in an outbox by default."""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from agentkit.backends import store_from_url
from agentkit.errors import ConfigurationError, UnknownBackendError
from agentkit.executor import Executor, InProcessExecutor
from agentkit.store.base import Store
from agentkit.store.outbox import OutboxStore
from agentkit.store.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_OUTBOX_DIR",
    "backend",
    "default_outbox_path",
    "resolve_executor",
    "store_with_outbox",
]

B = TypeVar("B")

#: where the outbox of a remote store given as a URL goes, relative to the working directory
DEFAULT_OUTBOX_DIR = "agentkit-outbox"
_EXECUTORS = {
    scheme: "agentkit.dask_executor:DaskExecutor" for scheme in ("dask", "dask+tls", "tcp", "tls")
}


def backend(value: B | str | None, from_url: Callable[[str], B], kind: str, owned: list[Any]) -> B:
    """``value`` itself, or the backend its URL names (then added to ``owned``: the caller
    closes it)."""
    if isinstance(value, str):
        obj = from_url(value)
        owned.append(obj)
        return obj
    if value is None:
        raise ConfigurationError(f"{kind} must be a URL or a {kind.title()} object, not None")
    return value


def store_with_outbox(
    value: str | Store,
    outbox: str | os.PathLike[str] | bool | None,
    owned: list[Any],
    on_depth: Callable[[int], None],
) -> Store:
    """The store ``value`` names, wrapped in an :class:`OutboxStore` unless it is local
    (SQLite), already one, or ``outbox`` is False; what it opens is added to ``owned``."""
    if outbox is True or not (
        outbox is None or outbox is False or isinstance(outbox, str | os.PathLike)
    ):
        raise ConfigurationError(
            f"outbox must be a file path, False (no outbox) or None (default path), "
            f"got {outbox!r:.80}"
        )
    if not isinstance(value, str):
        if outbox is not None and outbox is not False:
            raise ConfigurationError(
                "outbox= applies to a store given as a URL; wrap a store object yourself: "
                "OutboxStore(store, path)"
            )
        return backend(value, store_from_url, "store", owned)
    inner: Store = store_from_url(value)
    if outbox is False or isinstance(inner, SQLiteStore | OutboxStore):
        owned.append(inner)
        return inner
    path = default_outbox_path(value) if outbox is None else os.fspath(outbox)
    wrapped = OutboxStore(inner, path, on_depth=on_depth)
    owned.append(wrapped)  # closes the inner store too
    return wrapped


def default_outbox_path(url: str) -> str:
    """``agentkit-outbox/<scheme>-<hash>.db``: one file per store URL (password left out, so
    rotating it keeps the file), relative to the working directory."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (parts.username + "@" if parts.username else "") + host
    if parts.port is not None:
        netloc += f":{parts.port}"
    canonical = urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, ""))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return os.path.join(DEFAULT_OUTBOX_DIR, f"{parts.scheme.lower()}-{digest}.db")


def resolve_executor(value: Executor | str | None) -> Executor:
    """The in-process executor (None), the one a URL names, or ``value`` once checked."""
    if value is None:
        return InProcessExecutor()
    if isinstance(value, str):
        scheme = urlsplit(value).scheme.lower()
        target = _EXECUTORS.get(scheme)
        if target is None:
            known = ", ".join(f"{s}://" for s in sorted(_EXECUTORS))
            raise UnknownBackendError(f"no executor for {scheme}:// URLs; known: {known}")
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        factory = getattr(module, attr).from_url
        return factory(value)  # type: ignore[no-any-return]
    for method in ("start", "run_stage", "aclose"):
        if not callable(getattr(value, method, None)):
            raise ConfigurationError(
                f"executor must implement start(), run_stage() and aclose(); "
                f"{type(value).__name__} lacks {method}()"
            )
    return value
