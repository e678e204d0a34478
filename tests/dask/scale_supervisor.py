"""One Supervisor process of the scale-out test (started twice by ``test_dask_scale.py``).

It runs its share of runs on the Dask cluster, writes what each caller saw to a JSON file,
then waits for its peer's file and reads every one of the peer's runs through *its own*
supervisor (shared Redis + PostgreSQL): a user's reads work from any supervisor, and
another user's run id gives not-found. Config comes as JSON in argv[1]; the signing key
comes in the environment (never on the command line).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agentkit.cache.redis import RedisCache
from agentkit.errors import RunNotFoundError
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.store.postgres import PostgresStore
from agentkit.supervisor import Supervisor

PIPELINE = ["dt_echo", "dt_follow"]


async def one_run(sup: Supervisor, user: str, i: int) -> dict[str, Any]:
    handle = await sup.submit(user, PIPELINE, input={"user": user, "i": i})
    events = [ev async for ev in handle.events()]
    result = await handle.result()
    echo = result.stages.get("dt_echo")
    return {
        "run_id": handle.run_id,
        "user": user,
        "i": i,
        "status": result.status.value,
        "error": result.error,
        "kinds": [ev.kind for ev in events],
        "steps": sorted({ev.data.get("step") for ev in events if ev.kind == "progress"}),
        "event_users": sorted(
            {ev.user_id for ev in events}
            | {ev.data.get("user") for ev in events if ev.kind == "progress"}
        ),
        "event_runs": sorted({ev.run_id for ev in events}),
        "echo_input": None if echo is None else echo.output.get("input"),
    }


async def main(cfg: dict[str, Any]) -> None:
    registry = AgentRegistry()
    registry.load_path(cfg["plugins"])
    key = bytes.fromhex(os.environ["AGENTKIT_TEST_SIGNING_KEY"])
    cache = RedisCache(cfg["redis"], key_prefix=cfg["prefix"])
    store = PostgresStore(cfg["postgres"], schema=cfg["schema"])
    out = Path(cfg["out"])
    async with Supervisor(
        registry,
        cache=cache,
        store=store,
        signing_key=key,
        executor=cfg["executor"],
        limits=Limits(max_active_runs=48, max_runs_per_user=4, run_deadline=120.0),
    ) as sup:
        jobs = [one_run(sup, u, i) for u in cfg["users"] for i in range(cfg["runs_per_user"])]
        started = time.monotonic()
        runs = await asyncio.gather(*jobs)
        elapsed = time.monotonic() - started
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"runs": runs, "elapsed": elapsed}))
        tmp.replace(out)

        peer = Path(cfg["peer_out"])
        deadline = time.monotonic() + 150
        while not peer.exists():
            if time.monotonic() > deadline:
                raise SystemExit("peer supervisor never finished")
            await asyncio.sleep(0.1)
        peer_runs = json.loads(peer.read_text())["runs"]
        read_ok = not_found_ok = 0
        for r in peer_runs:
            got = await sup.get_run(r["user"], r["run_id"])
            if got.user_id == r["user"] and got.stages["dt_echo"].output["input"]["i"] == r["i"]:
                read_ok += 1
            other = cfg["users"][0] if r["user"] != cfg["users"][0] else cfg["users"][1]
            try:
                await sup.get_run(other, r["run_id"])
            except RunNotFoundError:
                not_found_ok += 1
    await cache.aclose()
    await store.aclose()
    check = out.with_name(out.stem + "-reads.json")
    check.write_text(json.dumps({"read_ok": read_ok, "not_found_ok": not_found_ok}))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
