"""DaskExecutor against a real loopback cluster: scheduler + 2 workers, separate processes.

The Supervisor runs here (the test's event loop, an asynchronous Dask client in it); every
stage runs in a worker process that resolves the agent by name from its plugin folder.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from distributed import Client
from loopback_cluster import PLUGINS, SIGNING_KEY, LoopbackCluster

from agentkit.agent import AgentContext, SubAgent
from agentkit.dask_executor import DaskExecutor
from agentkit.errors import AgentNotOnWorkerError, BackendError, ConfigurationError
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.status import AgentStatus, RunStatus
from agentkit.supervisor import Supervisor

pytestmark = pytest.mark.timeout(120)


class SupervisorOnly(SubAgent):
    """Registered with the supervisor but installed on no worker."""

    name = "dt_not_on_workers"
    version = "1"

    async def run(self, ctx: AgentContext) -> int:
        return 1


def registry() -> AgentRegistry:
    reg = AgentRegistry()
    reg.load_path(PLUGINS)
    reg.register(SupervisorOnly)
    return reg


@pytest.fixture
async def sup(dask_client: Client, tmp_path: Path) -> AsyncIterator[Supervisor]:
    async with Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=DaskExecutor(dask_client),
        limits=Limits(max_active_runs=16, max_runs_per_user=4),
    ) as s:
        yield s


async def _collect(handle: Any) -> list[Any]:
    return [ev async for ev in handle.events()]


async def test_stages_run_on_workers_and_events_reach_the_caller(
    sup: Supervisor, dask_cluster: LoopbackCluster
) -> None:
    handle = await sup.submit("alice", ["dt_echo", "dt_follow"], input={"q": "hello"})
    events, result = await asyncio.wait_for(
        asyncio.gather(_collect(handle), handle.result()), timeout=30
    )
    assert result.status is RunStatus.SUCCEEDED, result.error
    echo = result.stages["dt_echo"].output
    assert echo["input"] == {"q": "hello"} and echo["user"] == "alice"
    worker_pids = {p.pid for p in dask_cluster.workers.values()}
    assert echo["pid"] in worker_pids and echo["pid"] != os.getpid()
    assert result.stages["dt_follow"].output == {"saw": {"q": "hello"}, "user": "alice"}
    progress = [e for e in events if e.kind == "progress"]
    assert [e.data["step"] for e in progress] == [0, 1, 2]
    assert all(e.run_id == handle.run_id and e.user_id == "alice" for e in events)
    assert events[0].kind == "run_started" and events[-1].kind == "run_completed"
    stored = await sup.get_run("alice", handle.run_id)
    assert stored.stages["dt_echo"].output == echo


async def test_contaminated_result_is_cleaned_on_the_worker(
    sup: Supervisor, dask_client: Client
) -> None:
    # The raw result cannot cross a process boundary: pickle refuses it, and so does Dask.
    raw = {"module": os, "lock": threading.Lock(), "fn": lambda x: x, "value": 42}
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        pickle.dumps(raw)

    def make_raw() -> Any:
        import os as os_
        import threading as threading_

        return {"module": os_, "lock": threading_.Lock(), "fn": lambda x: x}

    shipped = dask_client.submit(make_raw, pure=False)
    with pytest.raises(Exception, match=r"(?i)pickle|serializ"):
        await asyncio.wait_for(shipped, timeout=30)

    # Through the executor it arrives as a clean result built on the worker.
    result = await asyncio.wait_for(sup.run("bob", ["dt_contaminated"]), timeout=30)
    assert result.status is RunStatus.SUCCEEDED, result.error
    stage = result.stages["dt_contaminated"]
    out = stage.output
    assert out["value"] == 42
    for live in ("module", "lock", "fn"):
        assert isinstance(out[live], dict) and "__agentkit_placeholder__" in out[live], out[live]
    assert stage.report.total >= 3
    pickle.loads(pickle.dumps(out))  # the clean output is plain data


async def test_agent_missing_on_workers_fails_with_a_typed_error_naming_it(
    sup: Supervisor,
) -> None:
    result = await asyncio.wait_for(sup.run("carol", ["dt_not_on_workers"]), timeout=30)
    assert result.status is RunStatus.FAILED
    stage = result.stages["dt_not_on_workers"]
    assert stage.status is AgentStatus.FAILED and stage.error is not None
    assert stage.error.type.endswith(AgentNotOnWorkerError.__name__)
    assert "dt_not_on_workers" in stage.error.message
    assert "Dask worker w" in stage.error.message
    assert "AGENTKIT_PLUGIN_PATH" in stage.error.message


async def test_worker_without_the_supervisors_key_is_a_clear_failure(
    dask_client: Client, tmp_path: Path
) -> None:
    async with Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=b"another-key-of-32-bytes-00000000",
        executor=DaskExecutor(dask_client),
    ) as s:
        result = await asyncio.wait_for(s.run("dave", ["dt_echo"]), timeout=30)
    stage = result.stages["dt_echo"]
    assert stage.status is AgentStatus.FAILED and stage.error is not None
    assert stage.error.type.endswith(ConfigurationError.__name__)
    assert "AGENTKIT_SIGNING_KEY" in stage.error.message
    assert SIGNING_KEY.hex() not in stage.error.message


async def _processing(client: Client) -> int:
    return sum(len(v) for v in (await client.scheduler.processing()).values())


async def test_cancel_cancels_the_dask_future_and_stops_the_agent(
    sup: Supervisor, dask_client: Client
) -> None:
    def _executing(dask_worker: Any) -> int:  # nested: shipped by value to the workers
        return len(dask_worker.state.executing)

    handle = await sup.submit("erin", ["dt_sleepy"], input={"seconds": 30})
    async for ev in handle.events():
        if ev.kind == "progress":  # the agent is running on a worker now
            break
    assert await _processing(dask_client) == 1
    await asyncio.wait_for(handle.cancel(), timeout=10)
    result = await asyncio.wait_for(handle.result(), timeout=10)
    assert result.status is RunStatus.CANCELLED
    # The scheduler forgets the task, and the worker really stops the agent (it would
    # otherwise sleep 30 s more): no worker thread is executing anything within seconds.
    for _ in range(100):
        if (
            await _processing(dask_client) == 0
            and sum((await dask_client.run(_executing)).values()) == 0
        ):
            break
        await asyncio.sleep(0.05)
    assert await _processing(dask_client) == 0
    assert sum((await dask_client.run(_executing)).values()) == 0


async def test_run_deadline_times_out_a_remote_stage(dask_client: Client, tmp_path: Path) -> None:
    async with Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=DaskExecutor(dask_client),
        limits=Limits(run_deadline=1.0),
    ) as s:
        result = await asyncio.wait_for(s.run("frank", ["dt_sleepy"], input={"seconds": 30}), 15)
    assert result.status is RunStatus.FAILED
    assert result.stages["dt_sleepy"].status is AgentStatus.TIMED_OUT


async def test_executor_url_string_connects_its_own_client(
    dask_cluster: LoopbackCluster, tmp_path: Path
) -> None:
    url = dask_cluster.address.replace("tcp://", "dask://")
    async with Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=url,
    ) as s:
        assert isinstance(s.executor, DaskExecutor)
        results = await asyncio.wait_for(
            asyncio.gather(*(s.run(f"user{i}", ["dt_echo"], input=i) for i in range(20))),
            timeout=60,
        )
    assert [r.stages["dt_echo"].output["input"] for r in results] == list(range(20))
    assert all(r.stages["dt_echo"].output["user"] == f"user{i}" for i, r in enumerate(results))


def test_from_url_rejects_what_is_not_a_scheduler_url() -> None:
    with pytest.raises(ConfigurationError, match="dask://host:8786"):
        DaskExecutor.from_url("redis://127.0.0.1:6379")
    with pytest.raises(ConfigurationError, match="asynchronous"):
        DaskExecutor(object())
    with pytest.raises(ConfigurationError, match="exactly one"):
        DaskExecutor()
    ex = DaskExecutor.from_url("dask+tls://127.0.0.1:9999")
    assert "tls://127.0.0.1:9999" in repr(ex)


class NoopV2(SubAgent):
    """The supervisor has version 2 of dt_noop; the workers have version 1."""

    name = "dt_noop"
    version = "2"

    async def run(self, ctx: AgentContext) -> int:
        return 2


async def test_version_mismatch_between_supervisor_and_worker_is_named(
    dask_client: Client, tmp_path: Path
) -> None:
    async with Supervisor(
        [NoopV2],
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=DaskExecutor(dask_client),
    ) as s:
        result = await asyncio.wait_for(s.run("hank", ["dt_noop"]), timeout=30)
    err = result.stages["dt_noop"].error
    assert err is not None and err.type.endswith(AgentNotOnWorkerError.__name__)
    assert "version '1'" in err.message and "version '2'" in err.message


async def test_events_arrive_batched_with_the_result_when_live_events_are_off(
    dask_client: Client, tmp_path: Path
) -> None:
    async with Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=DaskExecutor(dask_client, live_events=False),
    ) as s:
        handle = await s.submit("ivy", ["dt_echo"], input=1)
        events, result = await asyncio.wait_for(
            asyncio.gather(_collect(handle), handle.result()), timeout=30
        )
    assert result.status is RunStatus.SUCCEEDED
    assert [e.data["step"] for e in events if e.kind == "progress"] == [0, 1, 2]
    assert {e.data["user"] for e in events if e.kind == "progress"} == {"ivy"}


def test_submit_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="submit_options"):
        DaskExecutor(address="tcp://127.0.0.1:1", submit_options={"key": "x"})


async def test_unreachable_scheduler_is_a_clear_error_at_start(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sup = Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=DaskExecutor(address=f"tcp://127.0.0.1:{port}", connect_timeout=1.0),
    )
    with pytest.raises(BackendError, match="cannot reach the Dask scheduler"):
        await asyncio.wait_for(sup.start(), timeout=30)
    await sup.aclose()


async def test_cancel_user_and_drain_stop_remote_stages(
    dask_client: Client, tmp_path: Path
) -> None:
    def _executing(dask_worker: Any) -> int:
        return len(dask_worker.state.executing)

    sup = Supervisor(
        registry(),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
        signing_key=SIGNING_KEY,
        executor=DaskExecutor(dask_client),
        limits=Limits(drain_timeout=0.5),
    )
    await sup.start()
    try:
        mine = [await sup.submit("lena", ["dt_sleepy"], input={"seconds": 30}) for _ in range(2)]
        cancelled = await asyncio.wait_for(sup.cancel_user("lena"), timeout=15)
        assert cancelled == 2
        for h in mine:
            assert (await asyncio.wait_for(h.result(), 10)).status is RunStatus.CANCELLED
        # a run still going when the supervisor closes is stopped and recorded as interrupted
        late = await sup.submit("mona", ["dt_sleepy"], input={"seconds": 30})
        async for ev in late.events():
            if ev.kind == "progress":
                break
    finally:
        await asyncio.wait_for(sup.aclose(), timeout=20)
    assert (await asyncio.wait_for(late.result(), 10)).status is RunStatus.INTERRUPTED
    for _ in range(100):
        if sum((await dask_client.run(_executing)).values()) == 0:
            break
        await asyncio.sleep(0.05)
    assert sum((await dask_client.run(_executing)).values()) == 0


async def test_a_finished_result_can_be_fetched_from_its_worker_directly(
    dask_client: Client,
) -> None:
    """The fallback used when the client's gather stalls (e.g. on a lost worker)."""
    from agentkit._dask_worker import StageCall, WorkerReply, run_stage_task
    from agentkit.executor import StageJob
    from agentkit.signing import build_codec

    codec = build_codec(SIGNING_KEY)
    job = StageJob(
        agent="dt_echo",
        agent_version="1",
        run_id="r-direct",
        user_id="nina",
        user_hash="0" * 32,
        session_id=None,
        input={"x": 1},
        upstream={},
        attempt=1,
        timeout=30.0,
        deadline=None,
        blob_context=b"store:r-direct:dt_echo",
    )
    call = StageCall("tok", "", codec.signing_key_id, codec.layers)
    future = dask_client.submit(run_stage_task, job, call, pure=False)
    gathered = await asyncio.wait_for(future, 30)
    executor = DaskExecutor(dask_client)
    fetched = await executor._fetch_from_worker(job, future)
    assert isinstance(fetched, WorkerReply)
    assert fetched.blob == gathered.blob and fetched.execution == gathered.execution
    result = codec.decode_result(fetched.blob, context=job.blob_context)
    assert result.output["input"] == {"x": 1}


async def test_a_wait_the_dask_client_cancels_resubmits_the_stage_not_the_run(
    sup: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancellation that is not the run's (here: the reply waiter, cancelled as a client
    reconnecting after a lost worker may do) must not end the run as interrupted."""
    import agentkit.dask_executor as dask_executor

    real = dask_executor._result_of
    calls = 0

    async def cancelled_once(future: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncio.CancelledError
        return await real(future)

    monkeypatch.setattr(dask_executor, "_result_of", cancelled_once)
    result = await asyncio.wait_for(sup.run("olga", ["dt_echo"], input={"n": 1}), timeout=60)
    assert result.status.value == "succeeded", result.error
    assert calls == 2  # submitted again after the foreign cancellation
