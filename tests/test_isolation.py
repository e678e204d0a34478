"""Invariant 2: 200 users run at once; each sees only its own results, events, cache entries
and stored records; another user's run id is not found."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentkit.agent import AgentContext
from agentkit.codec import Codec
from agentkit.errors import RunNotFoundError, TamperedError
from agentkit.limits import Limits
from agentkit.run import RunHandle
from agentkit.supervisor import Supervisor
from agentkit.testing import RecordingCache, make_agent

USERS = 200


def _who(ctx: AgentContext) -> dict[str, Any]:
    ctx.emit("whoami", user=ctx.user_id, run=ctx.run_id)
    return {"user": ctx.user_id, "run": ctx.run_id, "input": ctx.input, "up": dict(ctx.upstream)}


async def test_200_concurrent_users_are_isolated(tmp_path: Path) -> None:
    codec = Codec(signing_keys=[("k1", b"isolation-test-key-0123456789abcd")])
    cache = RecordingCache(codec)
    agents = [
        make_agent("first", _who, delay=0.0),
        make_agent("second", _who, depends_on=["first"]),
    ]
    sup = Supervisor(
        agents,
        cache=cache,
        store=f"sqlite:///{tmp_path / 'iso.db'}",
        codec=codec,
        signing_key=b"isolation-root-key-0123456789abcd",
        limits=Limits(max_active_runs=200, max_runs_per_user=2),
    )
    users = [f"user-{i:03d}" for i in range(USERS)]
    async with sup:

        async def one(user: str) -> tuple[RunHandle, list[Any]]:
            handle = await sup.submit(user, ["first", "second"], input={"owner": user})
            events = [e async for e in handle.events()]
            return handle, events

        outcomes = await asyncio.gather(*(one(u) for u in users))
        assert sup.stats.engines_created == USERS
        by_user = dict(zip(users, outcomes, strict=True))

        for user, (handle, events) in by_user.items():
            res = await handle.result()
            assert res.ok and res.user_id == user
            for stage in res.stages.values():
                assert stage.user_id == user and stage.run_id == handle.run_id
                assert stage.output["user"] == user and stage.output["input"] == {"owner": user}
            assert res.output("second")["up"]["first"]["user"] == user
            # events: only this run's, only this user's
            assert events and all(e.run_id == handle.run_id and e.user_id == user for e in events)
            mine = [e.data for e in events if e.kind == "whoami"]
            assert mine == [{"user": user, "run": handle.run_id}] * 2

        handles = {u: h for u, (h, _) in by_user.items()}
        for i, user in enumerate(users):
            other = users[(i + 1) % USERS]
            run_id = handles[user].run_id
            # stored records
            runs = await sup.list_runs(user)
            assert [r.run_id for r in runs] == [run_id]
            stored = await sup.get_run(user, run_id)
            assert {s.user_id for s in stored.stages.values()} == {user}
            with pytest.raises(RunNotFoundError):
                await sup.get_run(other, run_id)
            # cache entries
            hit = await sup.cached_result(user, run_id, "second")
            assert hit is not None and hit.output["user"] == user
            assert await sup.cached_result(other, run_id, "second") is None

    # every cache key is namespaced by its owner's keyed hash and holds only that user's data
    assert len(cache.writes) == USERS * 2
    cache.assert_invariant()
    run_owner = {h.run_id: u for u, h in handles.items()}
    for key, _blob in cache.writes:
        ns, u, user_hash, run_id, agent = key.split(":")
        assert (ns, u) == ("agentkit", "u") and agent in ("first", "second")
        owner = run_owner[run_id]
        assert user_hash == sup.hasher.hash(owner)
        assert owner not in key  # never the raw user id
    for result in cache.decoded:
        assert result.output["user"] == run_owner[result.run_id]
    # a blob moved under another user's key does not verify
    key, blob = cache.writes[0]
    parts = key.split(":")
    moved_key = ":".join([parts[0], parts[1], sup.hasher.hash("intruder"), *parts[3:]])
    with pytest.raises(TamperedError):
        codec.decode_result(blob, context=moved_key.encode())
