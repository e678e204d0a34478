"""Acceptance 2: every hostile kind is survived, reported at its exact path, and stays out."""

from __future__ import annotations

import contextlib
import math
import pickle
import time
from typing import Any

import pytest
from hostile import CASES, TOUCHED, Case

from agentkit.report import ReportKind
from agentkit.sanitizer import PLACEHOLDER_KEY, ObjectSanitizer

EMBED = "$.result.items[1]"


def _embed(value: Any) -> dict[str, Any]:
    return {"result": {"items": ["before", value, "after"], "n": 3}}


def _no_nan(value: Any) -> bool:
    if type(value) is float:
        return not math.isnan(value)
    if type(value) is dict:
        return all(_no_nan(k) and _no_nan(v) for k, v in value.items())
    if type(value) in (list, tuple, set, frozenset):
        return all(_no_nan(v) for v in value)
    return True


def test_suite_is_large_and_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(case: Case) -> None:
    TOUCHED.clear()
    with contextlib.ExitStack() as stack:
        value = case.factory(stack)
        start = time.perf_counter()
        clean, report, blob = ObjectSanitizer().sanitize_pickled(_embed(value))
        elapsed = time.perf_counter() - start
        assert TOUCHED == [], f"hostile methods were called: {TOUCHED}"
    assert elapsed < 1.0
    expected = {EMBED + rel for rel in case.paths}
    assert expected <= set(report.paths), (expected, report.paths)
    assert all(p.startswith(EMBED) for p in report.paths), report.paths
    assert report.lossy
    assert clean["result"]["items"][0] == "before" and clean["result"]["items"][2] == "after"
    # the clean output pickles with stdlib pickle, round-trips equal, and matches the blob
    assert _no_nan(clean)
    again = pickle.loads(pickle.dumps(clean, protocol=5))
    assert again == clean
    assert pickle.loads(blob) == clean


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case_as_root_with_placeholder_policy(case: Case) -> None:
    TOUCHED.clear()
    with contextlib.ExitStack() as stack:
        clean, report = ObjectSanitizer(unknown="placeholder").sanitize(case.factory(stack))
        assert TOUCHED == []
    assert report.total >= 1
    assert pickle.loads(pickle.dumps(clean)) == clean


def test_placeholders_carry_metadata() -> None:
    import os
    import threading

    clean, _ = ObjectSanitizer().sanitize({"m": os, "l": threading.Lock(), "f": len})
    assert clean["m"] == {
        PLACEHOLDER_KEY: "module",
        "type": "module",
        "name": "os",
        "version": None,
    }
    assert clean["l"][PLACEHOLDER_KEY] == "lock" and clean["l"]["locked"] is False
    assert clean["f"]["qualname"] == "len" and clean["f"]["module"] == "builtins"


def test_exception_becomes_structured_error() -> None:
    def fail() -> None:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ValueError("outer", 3) from exc

    try:
        fail()
    except ValueError as exc:
        err = exc
    clean, report = ObjectSanitizer().sanitize({"error": err})
    out = clean["error"]
    assert out["type"] == "ValueError" and out["message"] == "outer, 3"
    assert "in fail" in out["traceback"] and out["traceback"].endswith("ValueError: outer, 3")
    assert out["cause"]["type"] == "KeyError" and out["cause"]["message"] == "inner"
    assert report.entries[0].kind is ReportKind.REPLACED and report.paths == ["$.error"]


def test_types_with_hostile_metaclasses_are_never_compared() -> None:
    from hostile import WithEvilMeta

    TOUCHED.clear()
    value = {
        "password": WithEvilMeta(),  # a secret key checks the value's type
        "k": {WithEvilMeta(): 1},  # a hostile key type
        "err": ValueError(WithEvilMeta()),  # exception args are rendered by type
        "set": {WithEvilMeta()},
    }
    for options in ({}, {"native": False}, {"fast_path": False}):
        clean, report = ObjectSanitizer(**options).sanitize(value)
        assert TOUCHED == []
        assert clean["password"] == "***"
        assert clean["err"]["message"].startswith("<")
        assert len(report.entries) == 4
