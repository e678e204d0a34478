"""Acceptance 4: cycles, depth, items, string/bytes length, node and byte budgets, in time."""

from __future__ import annotations

import os
import pickle
import threading
import time
import tracemalloc
from typing import Any

from agentkit.report import ReportKind
from agentkit.sanitizer import PLACEHOLDER_KEY, ObjectSanitizer


def _timed(obj: Any, s: ObjectSanitizer | None = None) -> tuple[Any, Any, bytes, float]:
    s = s or ObjectSanitizer()
    start = time.perf_counter()
    clean, report, blob = s.sanitize_pickled(obj)
    return clean, report, blob, time.perf_counter() - start


def _deep(n: int) -> list[Any]:
    root: list[Any] = []
    cur = root
    for _ in range(n):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


def test_100k_deep_nesting_is_cut_at_max_depth_without_recursion_error() -> None:
    clean, report, blob, elapsed = _timed(_deep(100_000))
    assert elapsed < 2.0
    assert report.counts == {"depth": 1}
    assert report.paths == ["$" + "[0]" * 64]
    node = clean
    for _ in range(64):
        node = node[0]
    assert node[PLACEHOLDER_KEY] == "depth"
    assert pickle.loads(blob) == clean


def test_deep_dirty_nesting_goes_through_the_walk_iteratively() -> None:
    obj = _deep(100_000)
    obj.append(os)  # forces the walk, which must not recurse per level
    _clean, report, _, elapsed = _timed(obj, ObjectSanitizer(max_depth=400))
    assert elapsed < 2.0
    assert report.counts == {"replaced": 1, "depth": 1}


def test_self_referencing_graph_reports_the_cycle() -> None:
    a: dict[str, Any] = {"name": "a"}
    b: dict[str, Any] = {"name": "b", "peer": a}
    a["peer"] = b
    lst: list[Any] = [1]
    lst.append(lst)
    clean, report, blob, elapsed = _timed({"graph": a, "lst": lst})
    assert elapsed < 2.0
    assert report.paths == ["$.graph.peer.peer", "$.lst[1]"]
    assert {e.kind for e in report.entries} == {ReportKind.CYCLE}
    assert clean["graph"]["peer"]["peer"] == {
        PLACEHOLDER_KEY: "cycle",
        "type": "dict",
        "target": "$.graph",
    }
    assert clean["lst"][1]["target"] == "$.lst"
    assert pickle.loads(blob) == clean


def test_shared_but_acyclic_reference_is_not_a_cycle() -> None:
    shared = {"x": 1}
    clean, report = ObjectSanitizer().sanitize({"a": shared, "b": shared, "m": os})
    assert clean["a"] == clean["b"] == {"x": 1}
    assert report.paths == ["$.m"]


def _peak_memory(obj: Any) -> int:
    tracemalloc.start()
    try:
        ObjectSanitizer().sanitize_pickled(obj)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_ten_million_element_list_is_truncated_fast_with_bounded_memory() -> None:
    big = list(range(10_000_000))
    clean, report, blob, elapsed = _timed(big)
    assert elapsed < 2.0
    assert len(clean) == 100_000 and clean[-1] == 99_999
    assert report.counts == {"truncated": 1} and report.paths == ["$"]
    assert "of 10000000 items" in report.entries[0].reason
    assert pickle.loads(blob) == clean
    assert _peak_memory(big) < 50_000_000  # the input alone is ~360 MB


def test_100mb_bytes_value_is_truncated_fast_with_bounded_memory() -> None:
    blob_in = b"x" * 100_000_000
    clean, report, _blob, elapsed = _timed({"payload": blob_in})
    assert elapsed < 2.0
    assert len(clean["payload"]) == 10_000_000
    assert report.paths == ["$.payload"] and report.counts == {"truncated": 1}
    assert _peak_memory({"payload": blob_in}) < 60_000_000


def test_string_length_budget() -> None:
    clean, report = ObjectSanitizer(max_str_len=10).sanitize({"s": "a" * 50, "t": "short"})
    assert clean == {"s": "a" * 10, "t": "short"}
    assert report.paths == ["$.s"] and report.entries[0].kind is ReportKind.TRUNCATED


def test_items_budget_on_dicts_sets_and_tuples() -> None:
    s = ObjectSanitizer(max_items=3)
    clean, report = s.sanitize({"d": {i: i for i in range(5)}, "t": tuple(range(5)), "s": set()})
    assert clean["d"] == {0: 0, 1: 1, 2: 2} and clean["t"] == (0, 1, 2)
    assert report.paths == ["$.d", "$.t"]


def test_total_node_budget_cuts_the_rest_and_reports_once_per_container() -> None:
    s = ObjectSanitizer(max_nodes=50)
    obj = {"rows": [[i, i + 1] for i in range(100)], "m": threading.Lock()}
    clean, report = s.sanitize(obj)
    assert "budget" in report.counts
    assert report.total < 10
    assert len(clean["rows"]) < 30
    assert pickle.loads(pickle.dumps(clean)) == clean


def test_total_bytes_budget() -> None:
    s = ObjectSanitizer(max_total_bytes=1000)
    clean, report = s.sanitize([os] + ["y" * 300 for _ in range(10)])
    assert report.counts.get("budget") == 1
    assert sum(len(x) for x in clean if type(x) is str) <= 1300


def test_wide_shared_dag_is_bounded_by_the_node_budget() -> None:
    level: Any = [1]
    for _ in range(40):  # 2**40 paths if expanded naively
        level = [level, level]
    start = time.perf_counter()
    _clean, report = ObjectSanitizer(max_nodes=10_000).sanitize(level)
    assert time.perf_counter() - start < 2.0
    assert report.counts.get("budget") or report.counts.get("depth")


def test_clean_but_deep_value_is_kept_whole_by_the_native_path() -> None:
    obj = _deep(100)
    clean, report = ObjectSanitizer().sanitize(obj)
    assert clean is obj and report.total == 0


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.peer: Any = None


def test_cycles_through_object_attributes() -> None:
    a, b = Node("a"), Node("b")
    a.peer, b.peer = b, a
    clean, report = ObjectSanitizer().sanitize({"a": a})
    assert report.paths == ["$.a", "$.a.peer", "$.a.peer.peer"]
    assert report.entries[-1].kind is ReportKind.CYCLE
    assert clean["a"]["attributes"]["peer"]["attributes"]["peer"]["target"] == "$.a"


def test_a_handler_that_keeps_returning_new_instances_is_cut_by_depth() -> None:
    class Matryoshka:
        pass

    s = ObjectSanitizer(max_depth=20)
    s.register(Matryoshka, lambda obj, ctx: Matryoshka())
    start = time.perf_counter()
    clean, report = s.sanitize([Matryoshka()])
    assert time.perf_counter() - start < 2.0
    assert report.counts == {"depth": 1}
    assert clean[0][PLACEHOLDER_KEY] == "depth"


def test_many_live_objects_stay_within_time() -> None:
    locks = [threading.Lock()] * 1_000_000
    start = time.perf_counter()
    clean, report = ObjectSanitizer(max_report_entries=100).sanitize(locks)
    assert time.perf_counter() - start < 2.0
    assert len(clean) == 100_000  # max_items
    assert report.counts == {"replaced": 100_000, "truncated": 1}
    assert len(report.entries) == 100 and report.entries_dropped == 99_901


def test_concurrent_use_from_threads_is_consistent() -> None:
    import concurrent.futures

    s = ObjectSanitizer()
    values = [{"i": i, "m": os, "rows": [{"k": j} for j in range(20)]} for i in range(200)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(s.sanitize_pickled, values))
    for i, (clean, report, blob) in enumerate(results):
        assert clean["i"] == i and report.paths == ["$.m"]
        assert pickle.loads(blob) == clean
