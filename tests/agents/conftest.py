"""Load the reference agents from the plugin folder, the way applications load them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agentkit.agent import AgentContext
from agentkit.registry import AgentRegistry

AGENTS_DIR = Path(__file__).resolve().parents[2] / "agents"


@pytest.fixture(scope="session")
def registry() -> AgentRegistry:
    reg = AgentRegistry()
    reg.load_path(AGENTS_DIR)
    return reg


@pytest.fixture(scope="session")
def plugin(registry: AgentRegistry) -> Callable[[str], ModuleType]:
    """The module that defines the agent ``name``."""

    def get(name: str) -> ModuleType:
        return sys.modules[registry.get(name).__module__]

    return get


@pytest.fixture
def make_ctx() -> Callable[..., tuple[AgentContext, list[tuple[str, dict[str, Any]]]]]:
    """An AgentContext plus the list its ``emit`` calls are collected into."""

    def make(
        agent: str, *, user_id: str = "user-001", input: Any = None, upstream: Any = None
    ) -> tuple[AgentContext, list[tuple[str, dict[str, Any]]]]:
        emitted: list[tuple[str, dict[str, Any]]] = []
        ctx = AgentContext(
            user_id=user_id,
            run_id="run-test",
            session_id=None,
            agent=agent,
            input=input,
            upstream=upstream or {},
            _emit=lambda kind, data: emitted.append((kind, data)),
        )
        return ctx, emitted

    return make
