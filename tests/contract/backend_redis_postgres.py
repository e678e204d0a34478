"""Contract-suite backends on the real servers: RedisCache and PostgresStore (+ outbox).

Each factory uses its own random key prefix / schema and removes it on exit.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import redis.asyncio as redis_asyncio

from agentkit.cache.base import Cache
from agentkit.cache.redis import RedisCache
from agentkit.store.base import Store
from agentkit.store.outbox import OutboxStore
from agentkit.store.postgres import PostgresStore

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def redis_cache(tmp_path: Path) -> AsyncIterator[Cache]:
    prefix = f"akt-contract-{secrets.token_hex(6)}:"
    cache = RedisCache(REDIS_URL, key_prefix=prefix)
    try:
        yield cache
    finally:
        await cache.aclose()
        raw = redis_asyncio.from_url(REDIS_URL)
        try:
            keys = [k async for k in raw.scan_iter(match=f"{prefix}*")]
            if keys:
                await raw.delete(*keys)
        finally:
            await raw.aclose()


@asynccontextmanager
async def _pg_schema() -> AsyncIterator[str]:
    schema = f"akt_contract_{secrets.token_hex(6)}"
    try:
        yield schema
    finally:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@asynccontextmanager
async def postgres_store(tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    async with _pg_schema() as schema:
        yield lambda: PostgresStore(PG_URL, schema=schema)


@asynccontextmanager
async def outbox_over_postgres(tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    async with _pg_schema() as schema:
        yield lambda: OutboxStore(PostgresStore(PG_URL, schema=schema), tmp_path / "outbox.db")


CACHE_BACKENDS = {"redis": redis_cache}
STORE_BACKENDS = {"postgres": postgres_store, "outbox+postgres": outbox_over_postgres}
