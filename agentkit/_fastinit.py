"""A faster ``__init__`` for frozen slots dataclasses built on every stage.

A frozen dataclass's generated ``__init__`` stores each field with ``object.__setattr__``,
which goes through the generic attribute machinery; storing through the field's slot (member
descriptor) does the same thing in half the time. For the four value objects the engine makes
per stage or per run (``StageJob``, ``AgentContext``, ``StageOutcome``, ``RunResult``) that is
about a microsecond per stage. Everything else of the dataclass stays as generated: fields,
``replace``, equality, hashing, ``repr``, pickling, and frozenness (assigning still raises
``FrozenInstanceError``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["fast_frozen_init"]

T = TypeVar("T")


class _Factory:
    """The default of a field with a default factory (shown as ``<factory>``, as dataclasses
    show it)."""

    def __repr__(self) -> str:
        return "<factory>"


_MISSING: Any = _Factory()


def fast_frozen_init(cls: type[T]) -> type[T]:
    """Give the frozen slots dataclass ``cls`` an ``__init__`` that sets each slot directly.

    It takes the same parameters as the generated one (names, order, defaults and default
    factories). Apply it to a class already decorated with
    ``@dataclass(frozen=True, slots=True)`` and without ``__post_init__`` or init-only fields.

    Raises:
        TypeError: ``cls`` is not such a dataclass.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen slots dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__, which this __init__ would skip")
    namespace: dict[str, Any] = {"_MISSING": _MISSING}
    args: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name} is not a positional init field")
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            args.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            args.append(f"{f.name}=_MISSING")
            body.append(f"    if {f.name} is _MISSING:\n        {f.name} = _factory_{f.name}()")
        else:
            args.append(f.name)
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)  # noqa: S102  (source built from field names only, as dataclasses do)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    generated = cls.__dict__["__init__"]
    init.__doc__ = generated.__doc__
    init.__annotations__ = dict(generated.__annotations__)
    type.__setattr__(cls, "__init__", init)
    return cls
