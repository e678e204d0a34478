"""SubAgent definitions, AgentContext, and running one agent with agentkit.testing."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

import pytest

from agentkit.agent import AgentContext, CancelToken, SubAgent, validate_agent_class
from agentkit.errors import AgentDefinitionError, RunCancelledError
from agentkit.result import SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer
from agentkit.status import AgentStatus
from agentkit.testing import assert_clean, contaminated, make_agent, run_agent


def _ctx(**kw: Any) -> AgentContext:
    base: dict[str, Any] = {
        "user_id": "alice",
        "run_id": "r1",
        "session_id": None,
        "agent": "a",
        "input": {"q": 1},
        "upstream": {},
    }
    base.update(kw)
    return AgentContext(**base)


def test_minimal_agent_defaults() -> None:
    class Hello(SubAgent):
        name = "hello"

        async def run(self, ctx: AgentContext) -> str:
            return "hi"

    assert Hello.version == "1" and Hello.depends_on == () and Hello.retries == 0
    assert Hello.run_is_async
    assert validate_agent_class(Hello) is Hello


def test_depends_on_list_becomes_tuple_and_sync_run_is_detected() -> None:
    class Sync(SubAgent):
        name = "sync"
        depends_on = ["x", "y"]  # type: ignore[assignment]

        def run(self, ctx: AgentContext) -> int:  # type: ignore[override]
            return 1

    assert Sync.depends_on == ("x", "y")
    assert not Sync.run_is_async


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        ({"name": "bad name"}, "name must be"),
        ({"name": ""}, "name must be"),
        ({"name": "a", "version": ""}, "version"),
        ({"name": "a", "timeout": 0}, "timeout"),
        ({"name": "a", "timeout": -1.0}, "timeout"),
        ({"name": "a", "retries": -1}, "retries"),
        ({"name": "a", "retry_on": (ValueError, 3)}, "retry_on"),
        ({"name": "a", "result_type": dict}, "result_type"),
        ({"name": "a", "depends_on": ("a",)}, "itself"),
        ({"name": "a", "depends_on": (1,)}, "depends_on"),
    ],
)
def test_malformed_agents_are_rejected_with_the_class_named(
    attrs: dict[str, Any], fragment: str
) -> None:
    async def run(self: SubAgent, ctx: AgentContext) -> None:
        return None

    with pytest.raises(AgentDefinitionError, match=fragment) as info:
        type("Broken", (SubAgent,), {"run": run, **attrs})
    assert "Broken" in str(info.value)


def test_agent_without_run_is_rejected() -> None:
    with pytest.raises(AgentDefinitionError, match="implement run"):

        class NoRun(SubAgent):
            name = "norun"


def test_abstract_base_without_name_is_allowed_and_not_valid_alone() -> None:
    class Base(SubAgent):
        timeout = 5.0

    class Concrete(Base):
        name = "concrete"

        async def run(self, ctx: AgentContext) -> int:
            return 1

    assert Concrete.timeout == 5.0
    with pytest.raises(AgentDefinitionError):
        validate_agent_class(Base)
    with pytest.raises(AgentDefinitionError):
        validate_agent_class(int)


def test_context_is_read_only() -> None:
    ctx = _ctx()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.user_id = "mallory"  # type: ignore[misc]


def test_emit_forwards_and_rejects_engine_kinds() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    ctx = _ctx(_emit=lambda k, d: seen.append((k, d)))
    ctx.emit("progress", step=1)
    assert seen == [("progress", {"step": 1})]
    for bad in ("run_started", "agent_completed", "", "has space"):
        with pytest.raises(AgentDefinitionError):
            ctx.emit(bad)


def test_cancellation_flag_and_check() -> None:
    token = CancelToken()
    ctx = _ctx(_token=token)
    assert not ctx.cancelled
    ctx.check_cancelled()
    token.cancel()
    assert ctx.cancelled
    with pytest.raises(RunCancelledError):
        ctx.check_cancelled()


def test_time_left() -> None:
    assert _ctx().time_left() is None
    left = _ctx(deadline=time.monotonic() + 10).time_left()
    assert left is not None and 9 < left <= 10


def test_logger_is_bound_to_the_run_without_the_raw_user_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = _ctx(user_hash="abc123")
    with caplog.at_level(logging.INFO):
        ctx.logger.info("working")
    rec = caplog.records[-1]
    assert rec.run_id == "r1" and rec.user_hash == "abc123" and rec.agent == "a"  # type: ignore[attr-defined]
    assert "alice" not in repr(rec.__dict__)


async def test_run_agent_cleans_a_contaminated_result() -> None:
    Dirty = make_agent("dirty", returns=contaminated())
    result = await run_agent(Dirty, {"q": 1})
    assert result.status is AgentStatus.SUCCEEDED
    assert result.output["answer"] == 42
    assert result.output["module"]["__agentkit_placeholder__"] == "module"
    assert result.report.total >= 8
    assert_clean(result.output)


async def test_run_agent_sees_input_upstream_and_collects_events() -> None:
    def body(ctx: AgentContext) -> dict[str, Any]:
        ctx.emit("progress", pct=50)
        return {"input": ctx.input, "up": dict(ctx.upstream)}

    Agent = make_agent("echo", body, depends_on=["prev"])
    events: list[tuple[str, dict[str, Any]]] = []
    result = await run_agent(Agent, {"q": 2}, upstream={"prev": {"v": 1}}, events=events)
    assert result.output == {"input": {"q": 2}, "up": {"prev": {"v": 1}}}
    assert events == [("progress", {"pct": 50})]


async def test_plain_def_run_runs_in_a_worker_thread() -> None:
    main = threading.get_ident()

    def body(ctx: AgentContext) -> dict[str, Any]:
        ctx.emit("from_thread", ok=True)
        return {"same_thread": threading.get_ident() == main}

    events: list[tuple[str, dict[str, Any]]] = []
    result = await run_agent(make_agent("t", body, threaded=True), events=events)
    assert result.output == {"same_thread": False}
    assert events == [("from_thread", {"ok": True})]


async def test_exceptions_become_failed_results_with_structured_errors() -> None:
    result = await run_agent(make_agent("boom", raises=KeyError("missing")))
    assert result.status is AgentStatus.FAILED
    assert result.error is not None and result.error.type.endswith("KeyError")
    assert result.output is None


async def test_fresh_instance_per_run_and_setup_teardown() -> None:
    calls: list[str] = []

    class Stateful(SubAgent):
        name = "stateful"

        async def setup(self, ctx: AgentContext) -> None:
            calls.append("setup")
            self.count = 0

        async def run(self, ctx: AgentContext) -> int:
            self.count += 1
            return self.count

        async def teardown(self, ctx: AgentContext) -> None:
            calls.append("teardown")

    first = await run_agent(Stateful)
    second = await run_agent(Stateful)
    assert first.output == second.output == 1
    assert calls == ["setup", "teardown", "setup", "teardown"]


async def test_result_type_hook_shapes_the_output() -> None:
    class Summary(SerializableAgentResult):
        @classmethod
        def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
            return {"total": sum(raw["values"]), "conn": raw["conn"]}

    Agent = make_agent(
        "summing", returns={"values": [1, 2, 3], "conn": threading.Lock()}, result_type=Summary
    )
    result = await run_agent(Agent)
    assert isinstance(result, Summary)
    assert result.output["total"] == 6
    assert result.output["conn"]["__agentkit_placeholder__"] == "lock"
