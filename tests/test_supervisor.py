"""Supervisor: input validation, backpressure, cancellation, drain, eviction, scoped reads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentkit.agent import AgentContext, SubAgent
from agentkit.errors import (
    ConfigurationError,
    DependencyCycleError,
    InvalidUserIdError,
    MissingUpstreamError,
    PipelineError,
    QueueFullError,
    RunNotFoundError,
    SupervisorClosedError,
    TamperedError,
    UnknownAgentError,
    UnknownBackendError,
)
from agentkit.limits import Limits
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.sqlite import SQLiteStore
from agentkit.supervisor import Supervisor
from agentkit.testing import RecordingStore, make_agent


def _blocker(
    name: str, started: asyncio.Event | None = None, stopped: list[str] | None = None
) -> type[SubAgent]:
    async def body(ctx: AgentContext) -> int:
        if started is not None:
            started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if stopped is not None:
                stopped.append(ctx.run_id)
            raise
        return 1

    return make_agent(name, body, timeout=None)


@pytest.fixture
async def sups() -> AsyncIterator[list[Supervisor]]:
    made: list[Supervisor] = []
    yield made
    for s in made:
        await s.aclose(timeout=0.3)


async def _start(sups: list[Supervisor], agents: list[type[SubAgent]], **kw: Any) -> Supervisor:
    kw.setdefault("store", RecordingStore())
    sup = Supervisor(agents, **kw)
    await sup.start()
    sups.append(sup)
    return sup


# --- bad input fails before anything runs -------------------------------------------------


async def test_bad_pipelines_fail_with_typed_errors(sups: list[Supervisor]) -> None:
    class CycA(SubAgent):
        name = "cyc_a"
        depends_on = ("cyc_b",)

        async def run(self, ctx: AgentContext) -> None:
            return None

    class CycB(SubAgent):
        name = "cyc_b"
        depends_on = ("cyc_a",)

        async def run(self, ctx: AgentContext) -> None:
            return None

    store = RecordingStore()
    sup = await _start(
        sups,
        [make_agent("a"), make_agent("b", depends_on=["a"]), CycA, CycB],
        store=store,
    )
    with pytest.raises(UnknownAgentError, match="known agents: a, b, cyc_a, cyc_b"):
        await sup.submit("u", ["a", "zzz"])
    with pytest.raises(MissingUpstreamError, match="'b' depends on 'a'"):
        await sup.submit("u", ["b"])
    with pytest.raises(
        DependencyCycleError, match=r"cyc_a -> cyc_b -> cyc_a|cyc_b -> cyc_a -> cyc_b"
    ):
        await sup.submit("u", ["cyc_a", "cyc_b"])
    with pytest.raises(PipelineError):
        await sup.submit("u", [])
    with pytest.raises(PipelineError, match="more than once"):
        await sup.submit("u", ["a", "a"])
    with pytest.raises(PipelineError):
        await sup.submit("u", "a")  # type: ignore[arg-type]
    for bad_user in ("", " padded ", "x" * 300, "new\nline", 42):
        with pytest.raises(InvalidUserIdError):
            await sup.submit(bad_user, ["a"])  # type: ignore[arg-type]
    assert store.run_writes == [] and store.result_writes == []  # nothing ran


def test_unknown_backend_schemes_list_the_known_ones() -> None:
    with pytest.raises(UnknownBackendError, match=r"known: .*memory://"):
        Supervisor([], cache="memcached://localhost")
    with pytest.raises(UnknownBackendError, match=r"known: .*sqlite://"):
        Supervisor([], store="mongodb://localhost")
    with pytest.raises(UnknownBackendError, match="no executor"):
        Supervisor([], store=RecordingStore(), executor="ray://x")
    with pytest.raises(ConfigurationError):
        Supervisor([], store=RecordingStore(), signing_key=b"short")
    with pytest.raises(ConfigurationError):
        Limits(max_active_runs=0)
    with pytest.raises(ConfigurationError):
        Limits(run_deadline=-1)


async def test_submit_needs_a_started_open_supervisor() -> None:
    sup = Supervisor([make_agent("a")], store=RecordingStore())
    with pytest.raises(SupervisorClosedError, match="not started"):
        await sup.submit("u", ["a"])
    async with sup:
        assert (await sup.run("u", ["a"])).ok
    with pytest.raises(SupervisorClosedError):
        await sup.submit("u", ["a"])


# --- backpressure --------------------------------------------------------------------------


async def test_queue_full_is_per_user(sups: list[Supervisor]) -> None:
    started = asyncio.Event()
    sup = await _start(
        sups,
        [_blocker("block", started)],
        limits=Limits(max_runs_per_user=1, max_queued_per_user=2),
    )
    running = await sup.submit("heavy", ["block"])
    await started.wait()
    queued = [await sup.submit("heavy", ["block"]) for _ in range(2)]
    with pytest.raises(QueueFullError, match="max_queued_per_user=2"):
        await sup.submit("heavy", ["block"])
    other = await sup.submit("light", ["block"])  # another user is not affected
    assert other.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    assert await sup.cancel_user("heavy") == 3
    assert running.status is RunStatus.CANCELLED
    assert all(q.status is RunStatus.CANCELLED for q in queued)
    await sup.submit("heavy", ["block"])  # room again


# --- cancellation --------------------------------------------------------------------------


async def test_cancel_one_running_run_really_stops_it(sups: list[Supervisor]) -> None:
    started = asyncio.Event()
    stopped: list[str] = []
    sup = await _start(
        sups,
        [
            make_agent("first", returns=1),
            _blocker("block", started, stopped),
            make_agent("after", depends_on=["block"]),
        ],
    )
    handle = await sup.submit("u", ["first", "block", "after"])
    other = await sup.submit("u", ["first"])
    await started.wait()
    assert await handle.cancel() is True
    res = await handle.result()
    assert stopped == [handle.run_id]
    assert res.status is RunStatus.CANCELLED
    assert res.stages["first"].status is AgentStatus.SUCCEEDED
    assert res.stages["block"].status is AgentStatus.CANCELLED
    assert res.stages["after"].status is AgentStatus.SKIPPED
    assert (await other.result()).ok
    assert await handle.cancel() is False  # already finished
    assert (await sup.get_run("u", handle.run_id)).status is RunStatus.CANCELLED
    kinds = [e.kind async for e in handle.events()]
    assert kinds[-1] == "run_completed"


async def test_cancel_a_queued_run_never_starts_it(sups: list[Supervisor]) -> None:
    started = asyncio.Event()
    ran: list[str] = []
    sup = await _start(
        sups,
        [_blocker("block", started), make_agent("mark", lambda ctx: ran.append(ctx.run_id))],
        limits=Limits(max_runs_per_user=1),
    )
    first = await sup.submit("u", ["block"])
    await started.wait()
    queued = await sup.submit("u", ["mark"])
    assert queued.status is RunStatus.QUEUED
    assert await queued.cancel()
    res = await queued.result()
    assert res.status is RunStatus.CANCELLED
    assert res.stages["mark"].status is AgentStatus.SKIPPED
    assert res.timings["run_s"] == 0.0
    await first.cancel()
    assert ran == []


async def test_cancel_user_stops_all_their_runs_and_no_one_elses(sups: list[Supervisor]) -> None:
    stopped: list[str] = []
    sup = await _start(sups, [_blocker("block", None, stopped)], limits=Limits(max_runs_per_user=2))
    mine = [await sup.submit("victim", ["block"]) for _ in range(4)]  # 2 running, 2 queued
    theirs = await sup.submit("bystander", ["block"])
    await asyncio.sleep(0.05)
    assert await sup.cancel_user("victim") == 4
    assert {h.status for h in mine} == {RunStatus.CANCELLED}
    assert sorted(stopped) == sorted(h.run_id for h in mine[:2])
    assert theirs.status is RunStatus.RUNNING
    assert await sup.cancel_user("nobody-here") == 0


async def test_threaded_agent_sees_cancellation(sups: list[Supervisor]) -> None:
    saw_cancel = threading.Event()
    entered = threading.Event()

    def spin(ctx: AgentContext) -> int:
        entered.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ctx.cancelled:
                saw_cancel.set()
                return 0
            time.sleep(0.01)
        return 1

    sup = await _start(sups, [make_agent("spin", spin, threaded=True, timeout=None)])
    handle = await sup.submit("u", ["spin"])
    await asyncio.to_thread(entered.wait, 5)
    t0 = time.monotonic()
    await handle.cancel()
    assert time.monotonic() - t0 < 1  # the engine does not wait for the thread
    assert await asyncio.to_thread(saw_cancel.wait, 5)


# --- drain ---------------------------------------------------------------------------------


async def test_aclose_drains_then_interrupts(tmp_path: Path) -> None:
    db = tmp_path / "drain.db"
    stopped: list[str] = []
    sup = Supervisor(
        [make_agent("quick", delay=0.1, returns="done"), _blocker("block", None, stopped)],
        store=f"sqlite:///{db}",
    )
    await sup.start()
    quick = await sup.submit("u", ["quick"])
    stuck = await sup.submit("u", ["block"])
    await asyncio.sleep(0.02)
    t0 = time.monotonic()
    closing = asyncio.create_task(sup.aclose(timeout=0.5))
    await asyncio.sleep(0.01)
    with pytest.raises(SupervisorClosedError):
        await sup.submit("u", ["quick"])
    await closing
    assert 0.45 < time.monotonic() - t0 < 3
    assert (await quick.result()).status is RunStatus.SUCCEEDED  # finished within the drain
    res = await stuck.result()
    assert res.status is RunStatus.INTERRUPTED
    assert res.stages["block"].status is AgentStatus.INTERRUPTED
    assert stopped == [stuck.run_id]
    # both outcomes are durable
    store = SQLiteStore(db)
    await store.start()
    try:
        got = await store.get_run("u", stuck.run_id)
        assert got is not None and got.run.status is RunStatus.INTERRUPTED
        assert got.results[0].status is AgentStatus.INTERRUPTED
        got = await store.get_run("u", quick.run_id)
        assert got is not None and got.run.status is RunStatus.SUCCEEDED
    finally:
        await store.aclose()


async def test_drain_lets_queued_runs_finish_within_the_timeout() -> None:
    sup = Supervisor(
        [make_agent("q", delay=0.05, returns=1)],
        store=RecordingStore(),
        limits=Limits(max_runs_per_user=1),
    )
    await sup.start()
    handles = [await sup.submit("u", ["q"]) for _ in range(4)]
    await sup.aclose(timeout=5)
    assert [(await h.result()).status for h in handles] == [RunStatus.SUCCEEDED] * 4


# --- engines -------------------------------------------------------------------------------


async def test_engines_are_reused_and_evicted_only_when_idle(sups: list[Supervisor]) -> None:
    started = asyncio.Event()
    sup = await _start(
        sups,
        [_blocker("block", started), make_agent("a", returns=1)],
        limits=Limits(engine_idle_ttl=0.1),
    )
    await sup.run("u1", ["a"])
    await sup.run("u1", ["a"])
    assert sup.stats.engines_created == 1  # reused
    handle = await sup.submit("u2", ["block"])
    await started.wait()
    await asyncio.sleep(0.4)  # well past the idle TTL
    assert sup.active_engines == 1  # u1 evicted, u2 kept while its run is active
    assert sup.stats.engines_evicted == 1
    await handle.cancel()
    await asyncio.sleep(0.4)
    assert sup.active_engines == 0
    assert (await sup.run("u1", ["a"])).ok  # re-created on demand
    assert sup.stats.engines_created == 3


# --- reads are scoped by user --------------------------------------------------------------


async def test_reads_are_scoped_by_user(sups: list[Supervisor]) -> None:
    sup = await _start(sups, [make_agent("a", returns={"note": "alice's"})])
    res = await sup.run("alice", ["a"])
    assert (await sup.get_run("alice", res.run_id)).output("a") == {"note": "alice's"}
    with pytest.raises(RunNotFoundError):
        await sup.get_run("bob", res.run_id)
    with pytest.raises(RunNotFoundError):
        await sup.results("bob", res.run_id)
    with pytest.raises(RunNotFoundError):
        await sup.get_run("alice", "no-such-run")
    assert await sup.list_runs("bob") == []
    assert await sup.cached_result("bob", res.run_id, "a") is None
    assert [r.run_id for r in await sup.list_runs("alice")] == [res.run_id]
    assert [r.run_id for r in await sup.list_runs("alice", status=RunStatus.FAILED)] == []


async def test_run_ids_and_owner_are_unique() -> None:
    a = Supervisor([make_agent("a")], store=RecordingStore())
    b = Supervisor([make_agent("a")], store=RecordingStore())
    assert a.owner != b.owner
    async with a:
        ids = {(await a.submit("u", ["a"])).run_id for _ in range(50)}
    assert len(ids) == 50


async def test_an_agent_that_swallows_cancellation_does_not_keep_the_run_going(
    sups: list[Supervisor],
) -> None:
    started = asyncio.Event()
    ran_after: list[str] = []

    async def stubborn(ctx: AgentContext) -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "ignored the cancel"
        return "slept"

    sup = await _start(
        sups,
        [
            make_agent("stubborn", stubborn, timeout=None),
            make_agent("next", lambda ctx: ran_after.append(ctx.run_id), depends_on=["stubborn"]),
        ],
    )
    handle = await sup.submit("u", ["stubborn", "next"])
    await started.wait()
    await handle.cancel()
    res = await handle.result()
    assert res.status is RunStatus.CANCELLED
    assert ran_after == []
    assert res.stages["next"].status is AgentStatus.SKIPPED


async def test_a_store_that_cannot_start_fails_start_and_closes_what_was_opened(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    sup = Supervisor([make_agent("a")], store=f"sqlite:///{blocker / 'sub' / 'x.db'}")
    with pytest.raises(Exception, match=r"(?i)cannot open|directory|exists"):
        async with sup:
            pass
    with pytest.raises(SupervisorClosedError):
        await sup.submit("u", ["a"])


async def test_waiting_for_a_result_can_be_cancelled_without_touching_the_run(
    sups: list[Supervisor],
) -> None:
    gate = asyncio.Event()

    async def gated(ctx: AgentContext) -> int:
        await gate.wait()
        return 7

    sup = await _start(sups, [make_agent("gated", gated, timeout=None)])
    handle = await sup.submit("u", ["gated"])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(handle.result(), 0.05)  # cancels the waiting call only
    impatient = asyncio.create_task(handle.result())
    await asyncio.sleep(0)
    impatient.cancel()
    waiters = [asyncio.create_task(handle.result()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not handle.done
    gate.set()
    results = await asyncio.gather(*waiters)
    assert [r.output("gated") for r in results] == [7, 7, 7]
    assert (await handle.result()).output("gated") == 7  # done: returns at once
    assert impatient.cancelled()
    assert handle._state.waiters is None


async def test_a_stored_result_moved_to_another_users_run_is_refused(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "s.db"
    key = b"supervisor-test-signing-key-0123"
    async with Supervisor([make_agent("a")], store=f"sqlite:///{db}", signing_key=key) as sup:
        bobs = await sup.run("bob", ["a"])
    raw = sqlite3.connect(db)  # someone with write access to the file re-labels bob's run
    raw.execute("UPDATE runs SET user_id = 'alice' WHERE run_id = ?", (bobs.run_id,))
    raw.execute("UPDATE results SET user_id = 'alice' WHERE run_id = ?", (bobs.run_id,))
    raw.commit()
    raw.close()
    async with Supervisor([make_agent("a")], store=f"sqlite:///{db}", signing_key=key) as sup:
        with pytest.raises(TamperedError, match="another user's"):
            await sup.get_run("alice", bobs.run_id)
