"""The compiled pass (``_native.c``): same results as the walk, exact pickles, no leaks."""

from __future__ import annotations

import gc
import pickle
import threading
import tracemalloc
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agentkit.codec import pickle_layer
from agentkit.sanitizer import ObjectSanitizer, SanitizeContext, native_available

NATIVE = ObjectSanitizer()
WALK = ObjectSanitizer(fast_path=False)


def test_the_compiled_pass_is_built() -> None:
    # the dev install compiles it; a missing compiler would silently cost 3-5x on every
    # result, so CI must notice
    assert native_available(), (
        "agentkit.sanitizer._native is not built; install a C compiler and the Python "
        "headers, then reinstall: pip install -e '.[dev]'"
    )


def _exact(a: Any, b: Any) -> None:
    """Equal, and of the same types all the way down (True is not 1, tuple is not list)."""
    assert type(a) is type(b), (a, b)
    if type(a) is dict:
        assert list(a) == list(b)
        for k in a:
            _exact(a[k], b[k])
    elif type(a) in (list, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _exact(x, y)
    else:
        assert a == b or repr(a) == repr(b)  # NaN
        if type(a) in (datetime, time):
            assert a.fold == b.fold and a.tzinfo == b.tzinfo
            assert (a.tzinfo is None) == (b.tzinfo is None)


SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    255,
    256,
    65535,
    65536,
    -1,
    -129,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**64) - 5,
    10**400,
    -(10**400),
    0.0,
    -0.0,
    1.5,
    float("inf"),
    float("-inf"),
    "",
    "a",
    "ü",
    "日本語",
    "🙂 emoji",
    "x" * 255,
    "x" * 256,
    "y" * 70_000,
    b"",
    b"\x00\xff",
    b"z" * 255,
    b"z" * 256,
    b"z" * 70_000,
    datetime(2024, 5, 1, 9, 30, 1, 123456),
    datetime(1, 1, 1),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2021, 10, 31, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2021, 10, 31, 2, 30, fold=0, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30), "IST")),
    date(2024, 2, 29),
    date(1, 1, 1),
    time(0, 0),
    time(23, 59, 59, 999999, tzinfo=UTC),
    time(1, 2, 3, fold=1),
    timedelta(0),
    timedelta(days=-1, seconds=5, microseconds=7),
    timedelta(days=999_999_999),
    UTC,
    timezone(timedelta(hours=2), "X"),
    ZoneInfo("America/New_York"),
    uuid.UUID(int=0),
    uuid.UUID(int=2**128 - 1),
    uuid.uuid4(),
    Decimal("1.10"),
    Decimal("-0"),
    Decimal("NaN"),
    Decimal("1e-999"),
]


IDS = [f"{type(v).__name__}-{i}" for i, v in enumerate(SCALARS)]


@pytest.mark.parametrize("value", SCALARS, ids=IDS)
def test_every_clean_scalar_round_trips_exactly(value: Any) -> None:
    for wrapped in (value, [value], {"k": value}, (value,), (1, 2, 3, value)):
        clean, report, data = NATIVE.sanitize_pickled(wrapped)
        assert clean is wrapped and report.total == 0
        _exact(pickle_layer.loads(data), wrapped)
        _exact(pickle.loads(data), wrapped)
        _exact(pickle._loads(data), wrapped)  # the pure-Python unpickler agrees


def test_containers_of_every_shape() -> None:
    value = {
        "empty": [{}, [], (), set(), frozenset()],
        "tuples": [(1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), tuple(range(300))],
        "sets": [{1, "a", b"b", None, 1.5, False}, frozenset({"x", 2})],
        "keys": {1: "int", 2.5: "float", None: "none", False: "bool", "s": "str"},
        "nested": [[[[[[{"deep": [1]}]]]]]],
        "many": list(range(5000)),
        "wide": {f"k{i}": i for i in range(3000)},
    }
    clean, report, data = NATIVE.sanitize_pickled(value)
    assert clean is value and report.total == 0
    _exact(pickle_layer.loads(data), value)


def test_shared_tzinfos_and_keys_are_written_once() -> None:
    tz = timezone(timedelta(hours=2))
    rows = [{"when": datetime(2024, 1, 1, i, tzinfo=tz), "label": "x"} for i in range(20)]
    data = NATIVE.sanitize_pickled(rows)[2]
    assert data.count(b"timezone") == 1 and data.count(b"label") == 1
    back = pickle_layer.loads(data)
    assert back == rows and back[0]["when"].tzinfo is back[19]["when"].tzinfo


class Live:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.name = "svc"


def _contaminated() -> dict[str, Any]:
    return {
        "ok": [1, 2, {"a": "b"}],
        "rows": [
            {"id": uuid.UUID(int=i), "at": datetime(2024, 1, 1, tzinfo=UTC), "n": i}
            for i in range(10)
        ],
        "mod": {"m": threading},
        "deep": [[{"lock": threading.Lock()}]],
        "fn": (1, lambda x: x, 3),
        "obj": Live(),
        "od": __import__("collections").OrderedDict(a=1),
    }


def test_foreign_objects_are_replaced_exactly_as_the_walk_does() -> None:
    value = _contaminated()
    clean, report, data = NATIVE.sanitize_pickled(value)
    ref, ref_report = WALK.sanitize(value)
    assert clean == ref
    assert [(e.path, e.kind, e.type) for e in report.entries] == [
        (e.path, e.kind, e.type) for e in ref_report.entries
    ]
    assert report.paths == ["$.mod.m", "$.deep[0][0].lock", "$.fn[1]", "$.obj", "$.obj.lock"]
    assert pickle_layer.loads(data) == clean
    # copy on write: the input is untouched, untouched subtrees are shared, not copied
    assert value["mod"]["m"] is threading and callable(value["fn"][1])
    assert clean["ok"] is value["ok"] and clean["rows"] is value["rows"]
    assert clean["deep"] is not value["deep"] and type(clean["fn"]) is tuple


def test_a_cycle_through_a_foreign_object_is_reported_at_its_target() -> None:
    value: dict[str, Any] = {"a": [1]}
    obj = Live()
    obj.back = value  # type: ignore[attr-defined]
    value["a"].append(obj)
    clean, report = NATIVE.sanitize(value)
    ref, ref_report = WALK.sanitize(value)
    assert clean == ref and report.paths == ref_report.paths
    assert any(e.kind.value == "cycle" and "refers back to $" in e.reason for e in report.entries)


def test_plain_cycles_and_too_deep_values_go_to_the_walk() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    clean, report = NATIVE.sanitize(loop)
    assert report.paths == ["$[1]"] and clean[0] == 1
    deep: Any = threading.Lock()
    for _ in range(100):
        deep = [deep]
    clean, report = NATIVE.sanitize(deep)
    ref, ref_report = WALK.sanitize(deep)
    assert clean == ref and report.paths == ref_report.paths  # cut at max_depth, not replaced


def test_clean_values_deeper_than_max_depth_are_kept_whole() -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = [deep]
    clean, report, data = ObjectSanitizer(max_depth=10).sanitize_pickled(deep)
    assert clean is deep and report.total == 0 and pickle_layer.loads(data) == deep


@pytest.mark.parametrize(
    ("value", "options"),
    [
        ({"password": "hunter2", "n": 1}, {}),
        ({"tokens": {"in": 1, "out": 2}, "api_key": [1, "x"]}, {}),
        ({"dsn": "postgresql://u:pw@h/db"}, {}),
        ({"postgresql://u:pw@h/db": 1}, {}),
        ({"s": {"redis://:pw@h"}}, {}),
        (["x" * 50], {"max_str_len": 10}),
        ([b"x" * 50], {"max_bytes_len": 10}),
        (list(range(50)), {"max_items": 10}),
        ([[1, 2], [3, 4], [5, 6]], {"max_nodes": 5}),
        (["abc"] * 10, {"max_total_bytes": 12}),
        ({(1, 2): "tuple key", b"k": 1}, {}),
        ({"s": "\udc80 lone surrogate"}, {}),
    ],
)
def test_what_the_walk_must_decide_gives_the_walks_answer(
    value: Any, options: dict[str, Any]
) -> None:
    clean, report, data = ObjectSanitizer(**options).sanitize_pickled(value)
    ref, ref_report = ObjectSanitizer(fast_path=False, **options).sanitize(value)
    assert clean == ref
    assert [(e.path, e.kind) for e in report.entries] == [
        (e.path, e.kind) for e in ref_report.entries
    ]
    assert pickle.loads(data) == clean


def test_registered_handlers_take_clean_types_out_of_the_pass() -> None:
    san = ObjectSanitizer()
    san.register(uuid.UUID, lambda u, ctx: f"uuid at {ctx.path}")
    clean, _ = san.sanitize({"ids": [uuid.UUID(int=5)], "at": date(2024, 1, 1)})
    assert clean == {"ids": ["uuid at $.ids[0]"], "at": date(2024, 1, 1)}


def test_a_handler_that_mutates_the_value_mid_pass_cannot_break_it() -> None:
    class Token:
        pass

    value: dict[str, Any] = {"a": Token(), "b": [Token(), 2]}

    def grab(obj: Token, ctx: SanitizeContext) -> str:
        value.pop("zzz", None)
        value["zzz"] = 1  # the dict being walked changes size... then back
        value["b"].append(3)
        return "token"

    san = ObjectSanitizer()
    san.register(Token, grab)
    clean, _, data = san.sanitize_pickled(value)
    assert clean["a"] == "token" and pickle.loads(data) == clean


def test_repeated_passes_do_not_leak() -> None:
    value = _contaminated()
    clean_value = {"rows": value["rows"], "ok": value["ok"]}
    for _ in range(200):
        NATIVE.sanitize_pickled(value)
        NATIVE.sanitize_pickled(clean_value)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(3000):
        NATIVE.sanitize_pickled(value)
        NATIVE.sanitize_pickled(clean_value)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 200_000, f"{grown} bytes kept after 6000 passes"


def test_a_handler_replacing_checked_items_in_place_cannot_smuggle_them_in() -> None:
    class Token:
        pass

    shared: dict[str, Any] = {"first": "clean", "t": Token()}
    value = {"rows": ["checked", Token(), "later"], "d": shared}

    def swap(obj: Token, ctx: SanitizeContext) -> str:
        value["rows"][0] = threading.Lock()  # already checked by the pass
        value["rows"][2] = threading.Lock()  # not read yet: it will be, and cleaned
        shared["first"] = threading.Lock()
        return "token"

    san = ObjectSanitizer()
    san.register(Token, swap)
    clean, _, data = san.sanitize_pickled(value)
    assert pickle.loads(data) == clean  # the value and its pickle agree
    assert pickle.dumps(clean)  # and nothing live slipped into the value
    assert clean["rows"][0] == "checked"  # the copy keeps what the pass read and wrote
    assert clean["rows"][2]["__agentkit_placeholder__"] == "lock"  # read later: cleaned
    assert clean["d"]["first"]["__agentkit_placeholder__"] == "lock"


def test_passes_leave_reference_counts_as_they_were() -> None:
    import sys

    key = "".join(["recurring", "_key"])  # a fresh str object, not an interned constant
    tz = timezone(timedelta(hours=3))
    stamp = datetime(2024, 1, 1, tzinfo=tz)
    lock = threading.Lock()
    value = {key: [stamp, {key: 1}], "live": lock, "t": (1, lock)}
    tracked = (key, tz, stamp, lock, value, value[key])
    NATIVE.sanitize_pickled(value)  # the key matcher's cache keeps the key it has seen
    before = [sys.getrefcount(o) for o in tracked]
    for _ in range(100):
        NATIVE.sanitize_pickled(value)
        NATIVE.sanitize_pickled(value[key])
    gc.collect()
    assert [sys.getrefcount(o) for o in tracked] == before


def test_results_make_no_report_object_unless_something_changed() -> None:
    from agentkit.result import SerializableAgentResult

    san = ObjectSanitizer()
    assert san._sanitize_for_result({"ok": 1})[1] is None
    report = san._sanitize_for_result({"lock": threading.Lock()})[1]
    assert report is not None and report.paths == ["$.lock"]
    ids: dict[str, Any] = {"agent": "a", "user_id": "u", "run_id": "r"}
    result = SerializableAgentResult.from_raw({"lock": threading.Lock()}, sanitizer=san, **ids)
    assert result.report.total == 1 and result.report.entries[0].path == "$.lock"
    assert SerializableAgentResult.from_raw({"ok": 1}, sanitizer=san, **ids).report.total == 0

    class Marking(ObjectSanitizer):
        def sanitize_pickled(self, obj: Any) -> tuple[Any, Any, bytes]:
            clean, rep, _ = super().sanitize_pickled(obj)
            return {"marked": clean}, rep, pickle.dumps({"marked": clean})

    marked = SerializableAgentResult.from_raw({"ok": 1}, sanitizer=Marking(), **ids)
    assert marked.output == {"marked": {"ok": 1}}  # an override is always called
