"""fast_frozen_init: the same constructor as the dataclass's, without object.__setattr__."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field

import pytest

from agentkit._fastinit import fast_frozen_init
from agentkit.agent import AgentContext
from agentkit.executor import StageJob, StageOutcome
from agentkit.run import RunResult


def _pair() -> tuple[type, type]:
    def make() -> type:
        @dataclass(frozen=True, slots=True)
        class Point:
            x: int
            y: str = "y"
            tags: list[str] = field(default_factory=list)

        return Point

    return make(), fast_frozen_init(make())


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "b"), {}), ((1,), {"tags": ["t"]}), ((), {"x": 2, "y": "z"})],
)
def test_it_builds_what_the_generated_init_builds(args: tuple, kwargs: dict) -> None:
    slow, fast = _pair()
    a, b = slow(*args, **kwargs), fast(*args, **kwargs)
    assert dataclasses.astuple(a) == dataclasses.astuple(b)
    assert repr(a).split("(", 1)[1] == repr(b).split("(", 1)[1]


def test_defaults_factories_errors_and_frozenness_are_kept() -> None:
    _, fast = _pair()
    one, two = fast(1), fast(1)
    assert one.tags == [] and one.tags is not two.tags  # a fresh list per instance
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        fast()
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        fast(1, z=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.x = 5
    assert dataclasses.replace(one, y="q") == fast(1, "q")
    assert str(inspect.signature(fast)) == str(inspect.signature(_pair()[0]))


def test_it_refuses_classes_it_cannot_serve() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True, slots=True)
    class Post:
        x: int

        def __post_init__(self) -> None:
            pass

    with pytest.raises(TypeError, match="not a frozen slots dataclass"):
        fast_frozen_init(Mutable)
    with pytest.raises(TypeError, match="__post_init__"):
        fast_frozen_init(Post)


def test_engine_value_objects_pickle_replace_and_stay_frozen() -> None:
    job = StageJob("a", "1", "r", "u", "h", None, {"in": 1}, {}, 1, None, None, b"ctx")
    assert pickle.loads(pickle.dumps(job)) == job  # what an executor sends to a worker
    assert dataclasses.replace(job, attempt=2).attempt == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.attempt = 3  # type: ignore[misc]
    ctx = AgentContext("u", "r", None, "a", None, {})
    assert ctx.attempt == 1 and not ctx.cancelled and ctx.user_hash == ""


@pytest.mark.parametrize("cls", [StageJob, StageOutcome, AgentContext, RunResult])
def test_the_engine_value_objects_keep_their_dataclass_signature(cls: type) -> None:
    params = inspect.signature(cls).parameters
    fields = dataclasses.fields(cls)
    assert list(params) == [f.name for f in fields]
    for f in fields:
        p = params[f.name]
        if f.default is not dataclasses.MISSING:
            assert p.default is f.default
        elif f.default_factory is not dataclasses.MISSING:
            assert repr(p.default) == "<factory>"
        else:
            assert p.default is inspect.Parameter.empty
