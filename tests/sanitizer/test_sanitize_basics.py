"""Allow-listed data, known protocols, handlers, options and the native fast path."""

from __future__ import annotations

import collections
import dataclasses
import enum
import pathlib
import pickle
import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ConfigDict, RootModel

from agentkit.errors import ConfigurationError
from agentkit.report import ReportKind
from agentkit.sanitizer import PLACEHOLDER_KEY, ObjectSanitizer, SanitizeContext

# the compiled pass, the pure-Python fast path, the walk alone
MODES = {"native": {}, "python-fast": {"native": False}, "walk": {"fast_path": False}}
BOTH = pytest.mark.parametrize("mode", list(MODES))


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1


class Point(NamedTuple):
    x: int
    y: int


@dataclasses.dataclass
class Rec:
    id: uuid.UUID
    score: float
    tags: list[str]


class Item(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    at: datetime


class Tag(str):
    pass


class Money(Decimal):
    pass


class Stamp(datetime):
    pass


@BOTH
def test_clean_scalars_and_containers_pass_unchanged(mode: str) -> None:
    value = {
        "none": None,
        "t": True,
        "i": 10**40,
        "f": float("inf"),
        "s": "ü",
        "b": b"\x00",
        "dt": datetime(2026, 1, 1, tzinfo=UTC),
        "naive": datetime(2026, 1, 1),
        "tz": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30), "IST")),
        "zone": datetime(2026, 6, 1, tzinfo=ZoneInfo("Europe/Paris")),
        "d": date(2026, 1, 2),
        "tm": time(1, 2, 3, tzinfo=UTC),
        "td": timedelta(days=-1),
        "u": uuid.uuid4(),
        "dec": Decimal("1.10"),
        "l": [1, [2]],
        "tu": (1, (2,)),
        "se": {1, "a"},
        "fs": frozenset({(1, 2)}),
        (1, "k"): "tuple key",
        3: "int key",
    }
    clean, report, blob = ObjectSanitizer(**MODES[mode]).sanitize_pickled(value)
    assert clean == value and report.total == 0
    assert pickle.loads(blob) == value
    assert pickle._loads(blob) == value  # the pure-Python unpickler accepts the framing too
    if mode != "walk":
        assert clean is value  # the native pass proved it clean: no copy


def test_enum_members_become_their_values_as_values_and_keys() -> None:
    clean, report = ObjectSanitizer().sanitize({Color.RED: Color.BLUE, "lvl": Level.LOW})
    assert clean == {"red": 2, "lvl": 1}
    assert type(clean["lvl"]) is int and report.total == 0


def test_subclasses_of_clean_types_become_exact_types() -> None:
    value = [
        Tag("x"),
        Money("1.5"),
        Stamp(2026, 1, 1),
        bytearray(b"ab"),
        collections.OrderedDict(a=1),
        collections.defaultdict(int, b=2),
        collections.deque([1, 2]),
        collections.Counter("aa"),
    ]
    clean, report = ObjectSanitizer().sanitize(value)
    assert clean == [
        "x",
        Decimal("1.5"),
        datetime(2026, 1, 1),
        b"ab",
        {"a": 1},
        {"b": 2},
        [1, 2],
        {"a": 2},
    ]
    assert [type(v) for v in clean] == [str, Decimal, datetime, bytes, dict, dict, list, dict]
    assert report.total == 0


def test_known_protocols_become_field_data() -> None:
    rid = uuid.uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    value = {
        "rec": Rec(rid, 0.5, ["a"]),
        "item": Item(name="n", at=at, extra_field=1),
        "pt": Point(1, 2),
        "root": RootModel[list[int]]([1, 2]),
    }
    clean, report = ObjectSanitizer().sanitize(value)
    assert clean == {
        "rec": {"id": rid, "score": 0.5, "tags": ["a"]},
        "item": {"name": "n", "at": at, "extra_field": 1},
        "pt": {"x": 1, "y": 2},
        "root": [1, 2],
    }
    assert report.total == 0


def test_non_fixed_tzinfo_is_normalised_and_reported() -> None:
    class Custom(tzinfo):
        def utcoffset(self, dt: Any) -> timedelta:
            return timedelta(hours=2)

        def dst(self, dt: Any) -> timedelta:
            return timedelta(0)

    clean, report = ObjectSanitizer().sanitize([datetime(2026, 1, 1, tzinfo=Custom())])
    assert clean == [datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))]
    assert report.paths == ["$[0]"] and report.entries[0].kind is ReportKind.REPLACED


def test_unknown_objects_are_summarised_with_attributes() -> None:
    class Client:
        def __init__(self) -> None:
            self.host = "h"
            self.lock = threading.Lock()

    clean, report = ObjectSanitizer().sanitize({"c": Client()})
    assert clean["c"][PLACEHOLDER_KEY] == "object"
    assert clean["c"]["type"].endswith("Client")
    assert clean["c"]["attributes"]["host"] == "h"
    assert clean["c"]["attributes"]["lock"][PLACEHOLDER_KEY] == "lock"
    assert report.paths == ["$.c", "$.c.lock"]
    assert [e.kind for e in report.entries] == [ReportKind.SUMMARISED, ReportKind.REPLACED]
    clean, report = ObjectSanitizer(unknown="placeholder").sanitize({"c": Client()})
    assert "attributes" not in clean["c"] and report.paths == ["$.c"]


class Picklable:
    def __init__(self) -> None:
        self.v = 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Picklable) and other.v == self.v

    __hash__ = object.__hash__


def test_keep_picklable_keeps_objects_pickle_accepts() -> None:
    s = ObjectSanitizer(keep_picklable=True)
    obj = Picklable()
    clean, report, blob = s.sanitize_pickled({"p": obj, "l": threading.Lock()})
    assert clean["p"] is obj
    assert report.paths == ["$.l"]
    assert pickle.loads(blob)["p"] == obj


def test_register_handler_result_is_sanitized_again() -> None:
    class Conn:
        pass

    s = ObjectSanitizer()
    seen: list[SanitizeContext] = []

    def handler(obj: Conn, ctx: SanitizeContext) -> Any:
        seen.append(ctx)
        return {"conn": "db", "lock": threading.Lock(), "password": "pw"}

    s.register(Conn, handler)
    clean, report = s.sanitize({"x": [Conn()]})
    assert clean["x"][0]["conn"] == "db" and clean["x"][0]["password"] == "***"
    assert clean["x"][0]["lock"][PLACEHOLDER_KEY] == "lock"
    assert report.paths == ["$.x[0].lock", "$.x[0].password"]
    assert seen[0].path == "$.x[0]" and seen[0].type_name.endswith("Conn")


def test_raising_handler_and_identity_handler_are_errors_never_raised() -> None:
    class A:
        pass

    class B:
        pass

    s = ObjectSanitizer()
    s.register(A, lambda obj, ctx: 1 / 0)
    s.register(B, lambda obj, ctx: obj)
    clean, report = s.sanitize([A(), B()])
    assert [e.kind for e in report.entries] == [ReportKind.ERROR, ReportKind.ERROR]
    assert "ZeroDivisionError" in report.entries[0].reason
    assert clean[0][PLACEHOLDER_KEY] == "error"


def test_registering_over_a_fast_type_disables_it_on_the_native_path() -> None:
    s = ObjectSanitizer()
    s.register(uuid.UUID, lambda u, ctx: str(u))
    u = uuid.uuid4()
    clean, _ = s.sanitize({"id": u})
    assert clean == {"id": str(u)}


def test_register_rejects_native_types_and_non_classes() -> None:
    s = ObjectSanitizer()
    with pytest.raises(ConfigurationError, match="built-in clean type"):
        s.register(dict, lambda o, c: o)
    with pytest.raises(ConfigurationError, match="needs a class"):
        s.register("x", lambda o, c: o)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not callable"):
        s.register(Tag, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_depth": 0},
        {"max_items": -1},
        {"max_depth": 10_000},
        {"unknown": "drop"},
        {"secret_keys": "password"},
        {"max_nodes": 1.5},
    ],
)
def test_bad_options_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ObjectSanitizer(**kwargs)


def test_key_collisions_after_conversion_are_renamed_and_reported() -> None:
    clean, report = ObjectSanitizer().sanitize({Color.RED: 1, "red": 2})
    assert clean == {"red": 1, "red#1": 2}
    assert report.entries[0].kind is ReportKind.REPLACED


def test_paths_and_misc_values() -> None:
    clean, report = ObjectSanitizer().sanitize(
        {"p": pathlib.PurePosixPath("/a/b"), "c": 1 + 2j, "r": range(3), "e": ...}
    )
    assert clean["p"] == "/a/b"
    assert clean["c"] == {PLACEHOLDER_KEY: "value", "type": "complex", "real": 1.0, "imag": 2.0}
    assert clean["r"]["stop"] == 3
    assert report.paths == ["$.p", "$.c", "$.r", "$.e"]


def test_report_summary_is_bounded() -> None:
    s = ObjectSanitizer(max_report_entries=5)
    _, report = s.sanitize([threading.Lock() for _ in range(20)])
    assert len(report.entries) == 5 and report.entries_dropped == 15 and report.total == 20
    summary = report.summary(max_entries=3)
    assert summary.total == 20 and len(summary.entries) == 3 and summary.lossy


def test_sanitize_never_raises_on_a_broken_known_protocol() -> None:
    class Broken(BaseModel):
        a: int = 1

    m = Broken()
    object.__setattr__(m, "__dict__", {"a": threading.Lock(), 5: "odd key"})
    clean, report = ObjectSanitizer().sanitize(m)
    assert clean["a"][PLACEHOLDER_KEY] == "lock" and clean[5] == "odd key"
    assert report.paths == ["$.a"]


def test_timezone_names_survive_the_native_pickle() -> None:
    named = timezone(timedelta(hours=2), "CEST")
    plain = timezone(timedelta(hours=2))
    value = [datetime(2026, 1, 1, tzinfo=named), datetime(2026, 1, 1, tzinfo=plain)] * 3
    s = ObjectSanitizer()
    for _ in range(2):  # the second run uses the cached reductions
        _, _, blob = s.sanitize_pickled(value)
        back = pickle.loads(blob)
        assert [d.tzname() for d in back] == ["CEST", "UTC+02:00"] * 3


class Stateful:
    def __init__(self) -> None:
        self.v = 1
        self.at = datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))
        self.id = uuid.UUID(int=5)


class CustomReduce:
    def __reduce__(self) -> Any:
        raise AssertionError("keep_picklable must not run __reduce__")


class HoldsCustom:
    def __init__(self) -> None:
        self.inner = CustomReduce()


def test_keep_picklable_never_runs_methods_of_the_kept_objects() -> None:
    s = ObjectSanitizer(keep_picklable=True)
    kept, custom, holder = Stateful(), CustomReduce(), HoldsCustom()
    clean, report, blob = s.sanitize_pickled({"k": kept, "c": custom, "h": holder})
    assert clean["k"] is kept
    assert clean["c"][PLACEHOLDER_KEY] == "object"  # would run its own __reduce__
    assert clean["h"][PLACEHOLDER_KEY] == "object"  # holds such an object
    assert report.paths == ["$.c", "$.h", "$.h.inner"]
    back = pickle.loads(blob)
    assert back["k"].v == 1 and back["k"].at == kept.at and back["k"].id == kept.id
