"""200 concurrent users over the real Redis and PostgreSQL: nobody sees another's data."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import asyncpg
import pytest
import redis.asyncio as redis_asyncio

from agentkit.agent import AgentContext
from agentkit.cache.redis import RedisCache
from agentkit.errors import RunNotFoundError
from agentkit.limits import Limits
from agentkit.store.postgres import PostgresStore
from agentkit.supervisor import Supervisor
from agentkit.testing import make_agent

REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
USERS = 200


async def test_200_concurrent_users_never_see_each_other() -> None:
    prefix = f"akt-iso-{secrets.token_hex(6)}:"
    schema = f"akt_iso_{secrets.token_hex(6)}"
    tag = secrets.token_hex(4)
    users = [f"iso-user-{i}-{tag}" for i in range(USERS)]
    cache = RedisCache(REDIS_URL, key_prefix=prefix)
    store = PostgresStore(PG_URL, schema=schema)
    raw = redis_asyncio.from_url(REDIS_URL)

    async def profile(ctx: AgentContext) -> dict[str, Any]:
        await asyncio.sleep(0.001)
        return {"owner": ctx.user_id, "note": f"private note of {ctx.user_id}"}

    def summary(ctx: AgentContext) -> dict[str, Any]:
        return {"owner": ctx.upstream["profile"]["owner"], "seen_by": ctx.user_id}

    sup = Supervisor(
        [make_agent("profile", profile), make_agent("summary", summary, depends_on=("profile",))],
        cache=cache,
        store=store,
        signing_key=b"isolation-test-signing-key-0123456789",
        limits=Limits(max_active_runs=64, max_runs_per_user=2),
    )
    try:
        async with sup:
            results = await asyncio.gather(
                *(sup.run(u, ["profile", "summary"], input=i) for i, u in enumerate(users * 2))
            )
            runs_of: dict[str, set[str]] = {u: set() for u in users}
            for r in results:
                assert r.ok, r.error
                assert r.output("profile")["owner"] == r.user_id
                assert r.output("summary") == {"owner": r.user_id, "seen_by": r.user_id}
                runs_of[r.user_id].add(r.run_id)

            async def check(i: int, user: str) -> None:
                other = users[(i + 1) % USERS]
                foreign = next(iter(runs_of[other]))
                listed = await sup.list_runs(user)
                assert {r.run_id for r in listed} == runs_of[user]
                assert {r.user_id for r in listed} == {user}
                for run_id in runs_of[user]:
                    got = await sup.get_run(user, run_id)
                    assert {s.output["owner"] for s in got.stages.values()} == {user}
                    cached = await sup.cached_result(user, run_id, "profile")
                    assert cached is not None and cached.output["owner"] == user
                with pytest.raises(RunNotFoundError):
                    await sup.get_run(user, foreign)
                assert await sup.cached_result(user, foreign, "profile") is None
                stored = await store.list_results(user, limit=1000)
                assert len(stored) == 4 and {r.user_id for r in stored} == {user}
                assert await store.list_results(user, run_id=foreign) == []

            await asyncio.gather(*(check(i, u) for i, u in enumerate(users)))

        keys = [k.decode() async for k in raw.scan_iter(match=f"{prefix}*", count=1000)]
        assert len(keys) == USERS * 2 * 2
        assert not [k for k in keys if "iso-user" in k], "a raw user id leaked into a key"
        conn = await asyncpg.connect(PG_URL)
        try:
            per_user = await conn.fetch(
                f'SELECT user_id, count(*) AS n FROM "{schema}".results GROUP BY user_id'
            )
            assert {r["user_id"]: r["n"] for r in per_user} == {u: 4 for u in users}
        finally:
            await conn.close()
    finally:
        await cache.aclose()
        await store.aclose()
        keys = [k async for k in raw.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 500):
            await raw.delete(*keys[i : i + 500])
        await raw.aclose()
        conn = await asyncpg.connect(PG_URL)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
