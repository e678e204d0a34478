"""PickleValidator: every offending leaf, with path, type and the pickler's error."""

from __future__ import annotations

import functools
import os
import pickle
import sys
import threading
from typing import Any

import pytest

from agentkit.errors import ConfigurationError
from agentkit.validator import PickleReport, PickleValidator


class Holder:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def method(self) -> int:
        return 1


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b


class RaisesRecursion:
    def __reduce__(self) -> Any:
        raise RecursionError("deep")


class RaisesAttribute:
    def __reduce__(self) -> Any:
        raise AttributeError("nope")


class RaisesSystemExit:
    def __reduce__(self) -> Any:
        raise SystemExit(3)


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


class RaisesBadStr:
    def __reduce__(self) -> Any:
        raise BadStr


def test_clean_value_is_ok_with_size() -> None:
    value = {"a": [1, 2.5, "x"], "b": (None, b"y")}
    report = PickleValidator().check(value)
    assert report == PickleReport(
        ok=True, pickler="pickle", size=len(pickle.dumps(value, protocol=5))
    )


def test_every_offender_inside_dicts_lists_and_attributes() -> None:
    value = {
        "items": [1, threading.Lock(), {"deep": [os]}],
        "obj": Holder(ok=1, lock=threading.RLock()),
        "slots": Slotted(1, sys),
        "fine": "yes",
    }
    report = PickleValidator().check(value)
    assert not report.ok and report.size is None
    assert report.paths == ["$.items[1]", "$.items[2].deep[0]", "$.obj.lock", "$.slots.b"]
    by_path = {o.path: o for o in report.offenders}
    assert by_path["$.items[1]"].type == "_thread.lock"
    assert "cannot pickle '_thread.lock' object" in by_path["$.items[1]"].error
    assert by_path["$.items[2].deep[0]"].type == "module"


def test_lambda_bound_method_partial_and_keys() -> None:
    lock = threading.Lock()
    value = {
        "fn": lambda: 1,
        "bound": Holder(lock=lock).method,
        "partial": functools.partial(print, lock),
        "tuple": (1, os),
        "set": frozenset({1}),
    }
    report = PickleValidator().check(value)
    assert report.paths == [
        "$.fn",
        "$.bound.__self__.lock",
        "$.partial.args[0]",
        "$.tuple[1]",
    ]


def test_cloudpickle_localises_closures_and_globals() -> None:
    lock = threading.Lock()

    def uses_closure() -> Any:
        return lock

    report = PickleValidator().check({"f": uses_closure, "g": lambda: 1}, pickler="cloudpickle")
    assert report.paths == ["$.f.__closure__.lock"]
    assert report.offenders[0].type == "_thread.lock"
    # the same value under stdlib pickle fails at the functions themselves
    assert PickleValidator().check({"f": uses_closure}).paths == ["$.f"]


GLOBAL_LOCK = threading.Lock()


def _uses_global() -> Any:
    return GLOBAL_LOCK


def test_cloudpickle_globals_of_functions_pickled_by_value() -> None:
    fn = _uses_global
    # make cloudpickle pickle it by value, as it does for functions of unimportable modules
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        report = PickleValidator().check([fn], pickler="cloudpickle")
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert report.paths == ["$[0].__globals__.GLOBAL_LOCK"]


def test_cycles_are_safe() -> None:
    a: dict[str, Any] = {"lock": threading.Lock()}
    a["self"] = a
    lst: list[Any] = [os]
    lst.append(lst)
    report = PickleValidator().check({"a": a, "l": lst})
    assert report.paths == ["$.a.lock", "$.l[0]"]


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        (RaisesRecursion(), "ecursion"),
        (RaisesAttribute(), "AttributeError: nope"),
        (RaisesSystemExit(), "SystemExit: 3"),
        (RaisesBadStr(), "<error message could not be rendered>"),
    ],
)
@pytest.mark.parametrize("pickler", ["pickle", "cloudpickle"])
def test_every_exception_is_caught(obj: Any, error: str, pickler: Any) -> None:
    report = PickleValidator().check({"x": [obj]}, pickler=pickler)
    assert report.paths == ["$.x[0]"]
    assert error in report.offenders[0].error


def test_deep_nesting_is_reported_at_the_depth_limit() -> None:
    root: list[Any] = []
    cur = root
    for _ in range(100_000):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    report = PickleValidator(max_depth=20).check(root)
    assert not report.ok
    assert report.paths == ["$" + "[0]" * 20]
    assert "RecursionError" in report.offenders[0].error
    assert "not localised below depth 20" in report.offenders[0].error


def test_unhashable_odd_keys() -> None:
    report = PickleValidator().check({(1, 2): 1, Holder(m=os): 2})
    assert report.paths == ['$["<key 1>"].m']


def test_max_offenders_truncates() -> None:
    report = PickleValidator(max_offenders=2).check([threading.Lock() for _ in range(5)])
    assert len(report.offenders) == 2 and report.truncated


def test_bad_pickler_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown pickler 'json'"):
        PickleValidator().check(1, pickler="json")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        PickleValidator(max_depth=0)
