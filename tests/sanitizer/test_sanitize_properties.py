"""Acceptance 3: hypothesis properties of the sanitizer."""

from __future__ import annotations

import os
import pickle
import threading
from datetime import UTC, timedelta, timezone
from typing import Any

from hostile import EvilRepr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.report import ReportKind
from agentkit.sanitizer import ObjectSanitizer
from agentkit.sanitizer.redact import DEFAULT_SECRET_KEYS, normalise_key

FAST = ObjectSanitizer()  # the compiled pass where it is built
FAST_PY = ObjectSanitizer(native=False)
SLOW = ObjectSanitizer(fast_path=False)


def _not_secret(key: str) -> bool:
    norm = normalise_key(key)
    return not any(f in norm for f in DEFAULT_SECRET_KEYS) and "://" not in key


timezones = st.one_of(
    st.none(),
    st.just(UTC),
    st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30).filter(_not_secret),
    st.binary(max_size=30),
    st.datetimes(timezones=timezones),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.decimals(allow_nan=False),
)
hkeys = st.one_of(
    st.text(max_size=12).filter(_not_secret),
    st.integers(),
    st.tuples(st.integers(), st.text(max_size=5).filter(_not_secret)),
)
clean_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(hkeys, children, max_size=6),
        st.sets(st.one_of(st.integers(), st.text(max_size=8)), max_size=5),
        st.frozensets(st.integers(), max_size=5),
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_values)
def test_safe_structures_come_back_equal_with_an_empty_report(value: Any) -> None:
    for sanitizer in (FAST, FAST_PY, SLOW):
        clean, report, blob = sanitizer.sanitize_pickled(value)
        assert clean == value
        assert type(clean) is type(value)
        assert report.total == 0 and not report.lossy and report.entries == []
        assert pickle.loads(blob) == value


LIVE = [
    lambda: threading.Lock(),
    lambda: os,
    lambda: lambda: 1,
    lambda: EvilRepr(),
    lambda: threading.Event(),
]
ident_keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(_not_secret)
tree_values = st.recursive(
    st.one_of(st.integers(), st.text(max_size=8).filter(_not_secret), st.none()),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(ident_keys, st.integers()), children, max_size=5),
    ),
    max_leaves=30,
)


def _containers(value: Any, path: str, out: list[tuple[Any, str]]) -> None:
    if type(value) is list:
        out.append((value, path))
        for i, v in enumerate(value):
            _containers(v, f"{path}[{i}]", out)
    elif type(value) is dict:
        out.append((value, path))
        for k, v in value.items():
            _containers(v, f"{path}.{k}" if type(k) is str else f"{path}[{k}]", out)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(ident_keys, tree_values, min_size=1, max_size=5), st.data())
def test_live_objects_at_random_paths_are_reported_at_exactly_those_paths(
    root: dict[str, Any], data: st.DataObject
) -> None:
    containers: list[tuple[Any, str]] = []
    _containers(root, "$", containers)
    picks = data.draw(
        st.lists(st.integers(0, len(containers) - 1), min_size=1, max_size=4), label="where"
    )
    expected = []
    for n, index in enumerate(picks):
        target, path = containers[index]
        live = data.draw(st.sampled_from(LIVE), label="what")()
        if type(target) is list:
            expected.append(f"{path}[{len(target)}]")
            target.append(live)
        else:
            expected.append(f"{path}.live_{n}")
            target[f"live_{n}"] = live
    for sanitizer in (FAST, FAST_PY, SLOW):
        clean, report = sanitizer.sanitize(root)
        assert sorted(report.paths) == sorted(expected)
        assert {e.kind for e in report.entries} <= {ReportKind.REPLACED, ReportKind.SUMMARISED}
        assert pickle.loads(pickle.dumps(clean)) == clean
