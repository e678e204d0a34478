"""Acknowledged means persisted: a process running load is SIGKILLed; after a restart every
run whose result() had resolved is in the store, and every run in flight is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from agentkit.status import AgentStatus, RunStatus
from agentkit.store.sqlite import SQLiteStore

LOAD = textwrap.dedent(
    """
    import asyncio, random, sys
    from agentkit.agent import SubAgent
    from agentkit.limits import Limits
    from agentkit.supervisor import Supervisor

    class Fetch(SubAgent):
        name = "fetch"
        async def run(self, ctx):
            await asyncio.sleep(random.uniform(0, 0.02))
            return {"user": ctx.user_id, "n": ctx.input}

    class Report(SubAgent):
        name = "report"
        depends_on = ("fetch",)
        async def run(self, ctx):
            await asyncio.sleep(random.uniform(0, 0.02))
            return {"total": ctx.upstream["fetch"]["n"] * 2}

    async def user(sup, u):
        n = 0
        while True:
            n += 1
            handle = await sup.submit(f"user-{u}", ["fetch", "report"], input=n)
            print("SUB", handle.user_id, handle.run_id, flush=True)
            res = await handle.result()
            print("ACK", res.user_id, res.run_id, res.status.value, flush=True)

    async def main():
        limits = Limits(max_active_runs=16, max_runs_per_user=2)
        async with Supervisor([Fetch, Report], store=sys.argv[1], limits=limits,
                              signing_key=b"durability-test-key-0123456789ab") as sup:
            await asyncio.gather(*(user(sup, u) for u in range(40)))

    asyncio.run(main())
    """
)


async def test_sigkill_loses_no_acknowledged_run(tmp_path: Path) -> None:
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    db = tmp_path / "durable.db"
    proc = subprocess.Popen(
        [sys.executable, str(script), f"sqlite:///{db}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    submitted: dict[str, str] = {}
    acked: dict[str, str] = {}
    last_line: dict[str, str] = {}  # user -> SUB or ACK, the last line printed for them
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    try:
        for line in proc.stdout:
            kind, user, run_id, *rest = line.split()
            if kind == "SUB":
                submitted[run_id] = user
            elif kind == "ACK":
                assert rest == ["succeeded"]
                acked[run_id] = user
            last_line[user] = kind
            if len(acked) >= 400 or time.monotonic() > deadline:
                break
        os.kill(proc.pid, signal.SIGKILL)
        # whatever the process printed before it died is also acknowledged; read it through
        # the same text stream (communicate() would read the pipe directly and lose the
        # lines this stream has already buffered but not yet yielded)
        proc.wait(timeout=30)
        rest_out = proc.stdout.read()
        for line in rest_out.splitlines():
            kind, user, run_id, *_ = line.split()
            (acked if kind == "ACK" else submitted)[run_id] = user
            last_line[user] = kind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 400, proc.stderr.read() if proc.stderr else ""
    in_flight = set(submitted) - set(acked)
    assert in_flight, "the kill should catch runs in flight"

    store = SQLiteStore(db)
    await store.start()  # the restart: marks runs left queued or running as interrupted
    try:
        for run_id, user in acked.items():
            got = await store.get_run(user, run_id)
            assert got is not None, f"acknowledged run {run_id} is missing"
            assert got.run.status is RunStatus.SUCCEEDED
            assert {r.agent: r.status for r in got.results} == {
                "fetch": AgentStatus.SUCCEEDED,
                "report": AgentStatus.SUCCEEDED,
            }
        for run_id in in_flight:
            got = await store.get_run(submitted[run_id], run_id)
            assert got is not None, f"submitted run {run_id} is missing"
            # in flight at the kill: interrupted, unless it became durable just before the kill
            if got.run.status is not RunStatus.INTERRUPTED:
                assert got.run.status is RunStatus.SUCCEEDED, got.run
                assert {r.status for r in got.results} == {AgentStatus.SUCCEEDED}
        # Every run the store holds is accounted for. Besides the printed ones, a user may have
        # one run whose queued record was durable but whose submit() had not returned (so no
        # SUB line): only a user with no run in flight, and such a run never started.
        interrupted: set[str] = set()
        for u in range(40):
            user = f"user-{u}"
            stored = await store.list_runs(user, limit=10_000)
            unannounced = [r for r in stored if r.run_id not in submitted]
            assert len(unannounced) <= 1, unannounced
            for rec in unannounced:
                assert last_line.get(user, "ACK") == "ACK", (user, rec)
                assert rec.status is RunStatus.INTERRUPTED, rec
                got = await store.get_run(user, rec.run_id)
                assert got is not None and got.results == [], got
            for rec in stored:
                assert rec.user_id == user
                if rec.run_id in acked:
                    assert rec.status is RunStatus.SUCCEEDED, rec
                if rec.status is RunStatus.INTERRUPTED:
                    interrupted.add(rec.run_id)
            assert {r.run_id for r in stored} >= {
                r for r, owner in submitted.items() if owner == user
            }
        assert interrupted, "the kill should leave runs to interrupt"
        assert not interrupted & set(acked)
        # the restart marked exactly these runs, and nothing else
        assert store.interrupted_on_start == len(interrupted)
    finally:
        await store.aclose()
