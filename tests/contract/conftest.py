"""The backend registry of the contract suite: every test runs against every backend here.

Adding a backend is one line in :data:`CACHE_BACKENDS` or :data:`STORE_BACKENDS`, or a file
``tests/contract/backend_<name>.py`` defining a module-level ``CACHE_BACKENDS`` and/or
``STORE_BACKENDS`` dict of the same shape (merged in below, so a new backend needs no edit
here).

* A cache factory is an async context manager function ``factory(tmp_path)`` yielding a ready
  cache, and cleaning up whatever the cache created (keys, files) on exit.
* A store factory is an async context manager function ``factory(tmp_path)`` yielding a
  zero-argument callable that builds a new, **unstarted** store over the same data each time it
  is called (the recovery test opens a second store over the data of the first); it drops the
  data (files, schema) on exit.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from agentkit.cache.base import Cache
from agentkit.cache.memory import MemoryCache
from agentkit.store.base import Store
from agentkit.store.outbox import OutboxStore
from agentkit.store.sqlite import SQLiteStore

CacheFactory = Callable[[Path], AbstractAsyncContextManager[Cache]]
StoreFactory = Callable[[Path], AbstractAsyncContextManager[Callable[[], Store]]]


@asynccontextmanager
async def memory_cache(tmp_path: Path) -> AsyncIterator[Cache]:
    cache = MemoryCache(max_bytes=1 << 20, max_entries=1000, ttl=60)
    try:
        yield cache
    finally:
        await cache.aclose()


@asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    path = tmp_path / "contract.db"
    yield lambda: SQLiteStore(path)


@asynccontextmanager
async def outbox_over_sqlite(tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    def make() -> Store:
        return OutboxStore(SQLiteStore(tmp_path / "inner.db"), tmp_path / "outbox.db")

    yield make


CACHE_BACKENDS: dict[str, CacheFactory] = {
    "memory": memory_cache,
}
STORE_BACKENDS: dict[str, StoreFactory] = {
    "sqlite": sqlite_store,
    "outbox+sqlite": outbox_over_sqlite,
}


def _load_backend_files() -> None:
    for path in sorted(Path(__file__).parent.glob("backend_*.py")):
        spec = importlib.util.spec_from_file_location(f"_contract_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        CACHE_BACKENDS.update(getattr(module, "CACHE_BACKENDS", {}))
        STORE_BACKENDS.update(getattr(module, "STORE_BACKENDS", {}))


_load_backend_files()


@pytest.fixture(params=sorted(CACHE_BACKENDS))
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cache]:
    async with CACHE_BACKENDS[request.param](tmp_path) as c:
        yield c


@pytest.fixture(params=sorted(STORE_BACKENDS))
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], Store]]:
    async with STORE_BACKENDS[request.param](tmp_path) as make:
        yield make


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.start()
    try:
        yield s
    finally:
        await s.aclose()
