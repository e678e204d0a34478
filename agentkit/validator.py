"""PickleValidator: is a value picklable, and if not, exactly where and why.

>>> import threading
>>> report = PickleValidator().check({"ok": 1, "items": [1, threading.Lock()]})
>>> report.ok, report.paths
(False, ['$.items[1]'])
"""

from __future__ import annotations

import functools
import pickle
import types
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import ConfigurationError
from agentkit.sanitizer import _safe, handlers
from agentkit.sanitizer._paths import Path, format_path

__all__ = ["PickleOffender", "PickleReport", "PickleValidator", "PicklerName"]

PicklerName = Literal["pickle", "cloudpickle"]

_SCALAR_IDS = frozenset(map(id, (type(None), bool, int, float, complex, str, bytes)))
_CAUGHT = (Exception, SystemExit, GeneratorExit)
_KEY_SEGMENT_IDS = frozenset(map(id, (str, int, float, bool, bytes, type(None))))


class PickleOffender(BaseModel):
    """One value the pickler refused, at its path (``$.items[1]``)."""

    model_config = ConfigDict(frozen=True)

    path: str
    type: str = Field(description="qualified name of the offending value's type")
    error: str = Field(description="the pickler's error: exception type and message")


class PickleReport(BaseModel):
    """The result of :meth:`PickleValidator.check`."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    pickler: str
    size: int | None = Field(None, description="pickled size in bytes when ok")
    offenders: list[PickleOffender] = Field(default_factory=list)
    truncated: bool = Field(False, description="more offenders existed than max_offenders")

    @property
    def paths(self) -> list[str]:
        """The offenders' paths, in walk order."""
        return [o.path for o in self.offenders]


class PickleValidator:
    """Finds every leaf a pickler refuses inside a value.

    The whole value is pickled once; if that fails, the validator descends into every child
    that fails on its own (dict values and keys, list/tuple/set items, object attributes,
    bound-method owners, ``functools.partial`` arguments and, for cloudpickle, function
    closures, defaults and referenced globals) until it reaches values whose children all
    pickle: those are the offenders. Every exception a pickler raises is caught.

    Note:
        Checking runs the pickler, so objects' ``__reduce__`` methods do run; use
        :class:`~agentkit.sanitizer.ObjectSanitizer` for untrusted values.

    Args:
        max_depth: how deep to localise; a failure below this depth is reported at it.
        max_offenders: stop after this many offenders (``truncated`` is then set).
        protocol: the pickle protocol to check with.
    """

    def __init__(
        self, *, max_depth: int = 100, max_offenders: int = 1_000, protocol: int = 5
    ) -> None:
        if max_depth < 1 or max_offenders < 1:
            raise ConfigurationError("max_depth and max_offenders must be at least 1")
        if not 0 <= protocol <= pickle.HIGHEST_PROTOCOL:
            raise ConfigurationError(
                f"protocol must be between 0 and {pickle.HIGHEST_PROTOCOL}, got {protocol}"
            )
        self._max_depth = max_depth
        self._max_offenders = max_offenders
        self._protocol = protocol

    def check(self, obj: Any, pickler: PicklerName = "pickle") -> PickleReport:
        """Check ``obj`` with ``pickler`` (``"pickle"`` or ``"cloudpickle"``).

        Raises:
            ConfigurationError: ``pickler`` is not one of the two names.
        """
        dumps = self._dumps(pickler)
        error = _try(dumps, obj)
        if type(error) is int:
            return PickleReport(ok=True, pickler=pickler, size=error)
        offenders: list[PickleOffender] = []
        truncated = False
        visited: set[int] = set()
        leaves: dict[int, PickleOffender] = {}
        cloud = pickler == "cloudpickle"
        stack: list[tuple[Any, Path, str, int]] = [(obj, None, str(error), 0)]
        while stack:
            node, path, err, depth = stack.pop()
            if id(node) in visited:
                # a shared offender is reported wherever it occurs; a shared container once
                if id(node) in leaves and len(offenders) < self._max_offenders:
                    offenders.append(
                        leaves[id(node)].model_copy(update={"path": format_path(path)})
                    )
                continue
            visited.add(id(node))
            failing: list[tuple[Any, Path, str, int]] = []
            if depth < self._max_depth:
                for seg, child in _children(node, cloud):
                    child_error = _try(dumps, child)
                    if type(child_error) is not int:
                        cpath = ((path, seg[0]), seg[1]) if type(seg) is tuple else (path, seg)
                        failing.append((child, cpath, str(child_error), depth + 1))
            elif err:
                err = f"{err} (not localised below depth {self._max_depth})"
            if failing:
                stack.extend(reversed(failing))
                continue
            if len(offenders) >= self._max_offenders:
                truncated = True
                break
            offender = PickleOffender(
                path=format_path(path), type=_safe.type_name(type(node)), error=err
            )
            leaves[id(node)] = offender
            offenders.append(offender)
        return PickleReport(
            ok=False, pickler=pickler, size=None, offenders=offenders, truncated=truncated
        )

    def _dumps(self, pickler: str) -> Callable[[Any], bytes]:
        protocol = self._protocol
        if pickler == "pickle":
            return lambda o: pickle.dumps(o, protocol=protocol)
        if pickler == "cloudpickle":
            import cloudpickle

            return lambda o: bytes(cloudpickle.dumps(o, protocol=protocol))
        raise ConfigurationError(f"unknown pickler {pickler!r}; use 'pickle' or 'cloudpickle'")


def _try(dumps: Callable[[Any], bytes], obj: Any) -> int | str:
    """The pickled size, or the error text."""
    try:
        return len(dumps(obj))
    except _CAUGHT as exc:
        text = ""
        try:
            text = str(exc)
        except _CAUGHT:
            text = "<error message could not be rendered>"
        return f"{_safe.type_name(type(exc))}: {text[:500]}"


def _children(node: Any, cloud: bool) -> Iterator[tuple[Any, Any]]:
    """``(segment, child)`` pairs the pickler would also have to pickle."""
    t = type(node)
    if id(t) in _SCALAR_IDS:
        return
    mro = _safe.mro(t)
    ids = {id(c) for c in mro}
    if id(dict) in ids:
        for i, (k, v) in enumerate(list(_safe.dict_items(node))):
            if id(type(k)) in _KEY_SEGMENT_IDS:
                yield k, v
            else:
                yield f"<key {i}>", k
                yield f"<value of key {i}>", v
        return
    if id(list) in ids or id(tuple) in ids or id(deque) in ids:
        it: Any = (
            list.__iter__(node)
            if id(list) in ids
            else tuple.__iter__(node)
            if id(tuple) in ids
            else deque.__iter__(node)
        )
        yield from enumerate(list(it))
        return
    if id(set) in ids or id(frozenset) in ids:
        it = set.__iter__(node) if id(set) in ids else frozenset.__iter__(node)
        yield from enumerate(list(it))
        return
    if t is types.FunctionType:
        if cloud:
            yield from _function_children(node)
        return
    if t is types.MethodType:
        yield "__self__", node.__self__
        yield "__func__", node.__func__
        return
    if id(functools.partial) in ids:
        yield "func", node.func
        yield from ((("args", i), a) for i, a in enumerate(node.args))
        yield from ((("keywords", k), v) for k, v in node.keywords.items())
        return
    if id(type) in ids or handlers.live_category(mro) is not None:
        return
    d = _safe.instance_dict(node, t)
    if d is not None:
        yield from list(_safe.dict_items(d))
    yield from list(_safe.slot_items(node, t))


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if type(const) is types.CodeType:
            yield from _code_names(const)


def _function_children(fn: types.FunctionType) -> Iterator[tuple[Any, Any]]:
    code = fn.__code__
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        yield ("__closure__", name), value
    glb = fn.__globals__
    for name in dict.fromkeys(_code_names(code)):
        if name in glb:
            yield ("__globals__", name), glb[name]
    for i, default in enumerate(fn.__defaults__ or ()):
        yield ("__defaults__", i), default
    for k, v in (fn.__kwdefaults__ or {}).items():
        yield ("__kwdefaults__", k), v
