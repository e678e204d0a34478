"""OpenTelemetry context flows into anyio tasks and worker threads; runs never cross-attach."""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread
from otel_helpers import Otel

from agentkit.telemetry import Telemetry


async def test_anyio_tasks_and_threads_inherit_the_current_span(otel: Otel) -> None:
    tel = otel.tel

    def in_thread(name: str) -> None:
        with tel.step_span(name):
            tel.agent_event("from-thread", {"n": 1})

    async def stage(agent: str) -> None:
        with tel.agent_span(agent, "1", run_id="r", user_hash="h"):
            await anyio.sleep(0.001)
            await anyio.to_thread.run_sync(in_thread, f"agentkit.store.save.{agent}")

    with tel.workflow_span("p", run_id="r", user_hash="h"):
        async with anyio.create_task_group() as tg:
            for agent in ("a", "b", "c"):
                tg.start_soon(stage, agent)

    root = otel.one("invoke_workflow p")
    for agent in ("a", "b", "c"):
        span = otel.one(f"invoke_agent {agent}")
        assert span.parent is not None and span.parent.span_id == root.context.span_id
        step = otel.one(f"agentkit.store.save.{agent}")
        assert step.parent is not None and step.parent.span_id == span.context.span_id
        (ev,) = step.events
        assert ev.name == "from-thread"


def test_plain_thread_uses_captured_context(otel: Otel) -> None:
    tel = otel.tel
    with tel.workflow_span("p", run_id="r", user_hash="h"):
        captured = tel.capture_context()

        def worker() -> None:
            with tel.use_context(captured), tel.step_span("agentkit.cache.set"):
                pass

        t = threading.Thread(target=worker)
        t.start()
        t.join()
    step = otel.one("agentkit.cache.set")
    assert step.parent is not None
    assert step.parent.span_id == otel.one("invoke_workflow p").context.span_id


async def test_caller_span_parents_a_run_started_in_another_task(otel: Otel) -> None:
    """The engine pattern: capture at submit, re-attach in a long-lived worker task."""
    tel = otel.tel
    caller = otel.tracer_provider.get_tracer("app")
    send, receive = anyio.create_memory_object_stream[tuple[str, object]](10)

    async def worker() -> None:  # started before any caller span exists
        async with receive:
            async for run_id, ctx in receive:
                with (
                    tel.workflow_span("p", run_id=run_id, user_hash="h", parent=ctx),  # type: ignore[arg-type]
                    tel.agent_span("a", "1", run_id=run_id, user_hash="h"),
                ):
                    await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        async with send:
            for i in range(3):
                with caller.start_as_current_span(f"request {i}"):
                    await send.send((f"run-{i}", tel.capture_context()))
    for i in range(3):
        req = otel.one(f"request {i}")
        (wf,) = [
            s
            for s in otel.named("invoke_workflow p")
            if (s.attributes or {})["agentkit.run.id"] == f"run-{i}"
        ]
        assert wf.parent is not None and wf.parent.span_id == req.context.span_id
        assert wf.context.trace_id == req.context.trace_id


async def test_fifty_concurrent_runs_never_cross_attach(otel: Otel) -> None:
    tel = otel.tel

    async def one_run(i: int) -> None:
        run_id = f"run-{i}"
        with tel.workflow_span("p", run_id=run_id, user_hash=f"h{i}"):
            async with anyio.create_task_group() as tg:
                for agent in ("a", "b", "c", "d"):
                    tg.start_soon(stage, run_id, i, agent)

    async def stage(run_id: str, i: int, agent: str) -> None:
        with tel.agent_span(agent, "1", run_id=run_id, user_hash=f"h{i}"):
            for _ in range(3):
                await anyio.sleep(0)
            with tel.step_span("agentkit.cache.set", run_id=run_id):
                await anyio.to_thread.run_sync(lambda: None)
                tel.agent_event("tick", {"i": i})

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one_run, i)

    spans = otel.spans()
    assert len(spans) == 50 * (1 + 4 * 2)
    by_id = {s.context.span_id: s for s in spans}
    for s in spans:
        run_id = (s.attributes or {})["agentkit.run.id"]
        if s.name.startswith("invoke_workflow"):
            assert s.parent is None
            continue
        parent = by_id[s.parent.span_id]  # type: ignore[union-attr]
        assert (parent.attributes or {})["agentkit.run.id"] == run_id, s.name
        assert parent.context.trace_id == s.context.trace_id
        if s.name == "agentkit.cache.set":
            (ev,) = s.events
            assert f"run-{(ev.attributes or {})['agentkit.event.i']}" == run_id
    assert len({s.context.trace_id for s in spans}) == 50


async def test_noop_context_helpers_are_inert() -> None:
    tel = Telemetry.noop()
    with tel.use_context(tel.capture_context()), tel.workflow_span("p", run_id="r", user_hash="h"):
        await anyio.sleep(0)
