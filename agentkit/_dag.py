"""Turn a pipeline (agent names) into an execution plan: validated, levelled, cached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentkit.agent import SubAgent
from agentkit.errors import DependencyCycleError, MissingUpstreamError, PipelineError
from agentkit.registry import AgentRegistry

__all__ = ["Plan", "build_plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated pipeline.

    Attributes:
        name: the pipeline's display name (its agent names joined with ``+``).
        order: agent names in a dependency-respecting order.
        agents: the agent class of each name.
        levels: groups of stages whose dependencies are all in earlier groups; the stages of
            one group run concurrently.
        ancestors: for each stage, every stage it depends on directly or transitively
            (its ``ctx.upstream``), in ``order``.
    """

    name: str
    order: tuple[str, ...]
    agents: dict[str, type[SubAgent]]
    levels: tuple[tuple[str, ...], ...]
    ancestors: dict[str, tuple[str, ...]]


def build_plan(registry: AgentRegistry, pipeline: Sequence[str]) -> Plan:
    """Validate ``pipeline`` against ``registry`` and compute its plan.

    Raises:
        PipelineError: the pipeline is empty, not a list of names, or names one agent twice.
        UnknownAgentError: a name is not registered (lists the known ones).
        MissingUpstreamError: an agent depends on one that is not in the pipeline.
        DependencyCycleError: ``depends_on`` forms a cycle (names it).
    """
    if isinstance(pipeline, str) or not isinstance(pipeline, Sequence) or not pipeline:
        raise PipelineError(f"a pipeline is a non-empty list of agent names, got {pipeline!r:.100}")
    names = list(pipeline)
    for n in names:
        if not isinstance(n, str):
            raise PipelineError(f"pipeline entries must be agent names (str), got {n!r:.80}")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise PipelineError(f"pipeline names {dupes} more than once; list each agent once")
    agents = {n: registry.get(n) for n in names}
    for n, cls in agents.items():
        for dep in cls.depends_on:
            if dep not in agents:
                raise MissingUpstreamError(
                    f"agent {n!r} depends on {dep!r}, which is not in the pipeline "
                    f"{names}; add {dep!r} to the pipeline"
                )
    _check_cycles(agents)

    levels: list[tuple[str, ...]] = []
    level_of: dict[str, int] = {}
    remaining = list(names)
    while remaining:
        ready = [n for n in remaining if all(d in level_of for d in agents[n].depends_on)]
        for n in ready:
            level_of[n] = len(levels)
        levels.append(tuple(ready))
        remaining = [n for n in remaining if n not in level_of]
    order = tuple(n for level in levels for n in level)
    ancestors: dict[str, tuple[str, ...]] = {}
    for n in order:
        seen: set[str] = set()
        stack = list(agents[n].depends_on)
        while stack:
            d = stack.pop()
            if d not in seen:
                seen.add(d)
                stack.extend(agents[d].depends_on)
        ancestors[n] = tuple(a for a in order if a in seen)
    return Plan(
        name="+".join(names),
        order=order,
        agents=agents,
        levels=tuple(levels),
        ancestors=ancestors,
    )


def _check_cycles(agents: dict[str, type[SubAgent]]) -> None:
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(agents, white)
    path: list[str] = []

    def visit(n: str) -> None:
        color[n] = grey
        path.append(n)
        for d in agents[n].depends_on:
            if color[d] == grey:
                cycle = [*path[path.index(d) :], d]
                raise DependencyCycleError(
                    f"agents depend on each other in a cycle: {' -> '.join(cycle)}; "
                    "remove one of these depends_on entries"
                )
            if color[d] == white:
                visit(d)
        path.pop()
        color[n] = black

    for n in agents:
        if color[n] == white:
            visit(n)
