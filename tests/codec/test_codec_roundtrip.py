"""Every layer round-trips the clean domain; mixed layers read back through one decode."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from codec_strategies import clean_values, same
from hypothesis import HealthCheck, given, settings

from agentkit.codec import Codec, CorruptError, EncodeError
from agentkit.envelope import EnvelopeFlags

KEY = b"k" * 32
SIGNED = Codec([("k1", KEY)])
UNSIGNED = Codec()
PICKLE_ONLY = Codec([("k1", KEY)], layers=("pickle",))
JSON_SIGNED = Codec([("k1", KEY)], layers=("json",))
JSON_UNSIGNED = Codec(layers=("json",))
STR_ONLY = Codec([("k1", KEY)], layers=("str",))

EDGE: dict[Any, Any] = {
    "floats": [0.0, -0.0, math.inf, -math.inf, math.nan, 1e308, 5e-324],
    "big": 2**200,
    "dt_naive": datetime(2024, 5, 1, 12, 30, 1, 5),
    "dt_utc": datetime(2024, 5, 1, 12, tzinfo=UTC),
    "dt_offset": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-5, seconds=7))),
    "dt_zone_fold": datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    "date": date(9999, 12, 31),
    "time": time(23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=3))),
    "time_fold": time(1, fold=1),
    "td": timedelta(days=-3, seconds=5, microseconds=1),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "dec": [Decimal("-0.00"), Decimal("1E+3"), Decimal("NaN"), Decimal("-Infinity")],
    "bytes": b"\x00\xff" * 3,
    "text": "naïve ☃ \x00 \ud800",
    (1, "tuple-key"): {frozenset({1, 2}), frozenset()},
    None: (),
    3.5: [set(), {(1, (2, b"x"))}],
    "$ak": {"$ak": "dt", "v": "not a tag: user data"},
    True: {1: "one", "1": "string one"},
}


@pytest.mark.parametrize("codec", [PICKLE_ONLY, JSON_SIGNED, JSON_UNSIGNED], ids=repr)
def test_edge_values_round_trip_exactly(codec: Codec) -> None:
    blob = codec.encode(EDGE, context=b"ctx")
    assert codec.inspect(blob).layer == codec.layers[0]
    assert not codec.inspect(blob).lossy
    assert same(codec.decode(blob, context=b"ctx"), EDGE)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_values)
def test_pickle_layer_round_trips_clean_values(value: Any) -> None:
    blob = PICKLE_ONLY.encode(value, context=b"c")
    assert PICKLE_ONLY.inspect(blob).layer == "pickle"
    assert same(PICKLE_ONLY.decode(blob, context=b"c"), value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clean_values)
def test_json_layer_round_trips_clean_values(value: Any) -> None:
    for codec in (JSON_SIGNED, JSON_UNSIGNED):
        blob = codec.encode(value, context=b"c")
        assert codec.inspect(blob).layer == "json"
        assert same(codec.decode(blob, context=b"c"), value)


@settings(max_examples=50, deadline=None)
@given(clean_values)
def test_str_layer_always_decodes_to_text_and_is_lossy(value: Any) -> None:
    blob = STR_ONLY.encode(value)
    info = STR_ONLY.inspect(blob)
    assert info.layer == "str" and info.lossy
    text = STR_ONLY.decode(blob)
    assert type(text) is str
    if type(value) is str:
        assert text == value


def test_default_order_prefers_pickle_then_json_then_str() -> None:
    assert SIGNED.inspect(SIGNED.encode({"a": 1})).layer == "pickle"
    # no key: pickle is off for encoding
    assert UNSIGNED.inspect(UNSIGNED.encode({"a": 1})).layer == "json"

    class Opaque:
        __slots__ = ()

    # not clean: neither pickle (restricted) nor JSON takes it, the string layer does
    blob = SIGNED.encode({"x": Opaque()})
    assert SIGNED.inspect(blob).layer == "str"
    assert "Opaque" in SIGNED.decode(blob)


def test_no_layer_can_encode_raises_encode_error() -> None:
    codec = Codec([("k1", KEY)], layers=("pickle", "json"))
    with pytest.raises(EncodeError, match="sanitize it first"):
        codec.encode({"lock": object()})


def test_mixed_layers_read_back_through_one_decode() -> None:
    reader = Codec([("k1", KEY)], allow_unsigned=True)
    writers = [PICKLE_ONLY, JSON_SIGNED, STR_ONLY, JSON_UNSIGNED, UNSIGNED]
    value = {"when": datetime(2024, 1, 2, tzinfo=UTC), "ids": (UUID(int=7),), "n": {1, 2}}
    blobs = [w.encode(value, context=b"k") for w in writers]
    layers = [reader.inspect(b).layer for b in blobs]
    assert layers == ["pickle", "json", "str", "json", "json"]
    for blob, layer in zip(blobs, layers, strict=True):
        out = reader.decode(blob, context=b"k")
        if layer == "str":
            assert out == STR_ONLY.decode(blob, context=b"k") and "datetime" in out
        else:
            assert same(out, value)


def test_inspect_reports_header_without_decoding() -> None:
    blob = SIGNED.encode(["x"] * 10, context=b"whatever")
    info = SIGNED.inspect(blob)
    assert info.layer == "pickle" and info.layer_tag == 1
    assert info.signed and not info.lossy and not info.is_result
    assert info.key_id == "k1"
    assert info.total_size == len(blob) == info.header_size + info.payload_size + 32
    assert info.flags == EnvelopeFlags.SIGNED
    unsigned = UNSIGNED.inspect(UNSIGNED.encode("x"))
    assert unsigned.key_id is None and not unsigned.signed


def test_context_may_be_str_or_bytes() -> None:
    blob = SIGNED.encode([1], context="store:r1:agent")
    assert SIGNED.decode(blob, context=b"store:r1:agent") == [1]


class Money:
    """An author's own value type, allowed explicitly through pickle_types."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents, self.currency = cents, currency

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]


def test_pickle_types_allow_an_authors_own_class_both_ways() -> None:
    value = {"price": Money(1250, "EUR")}
    allowed = Codec([("k1", KEY)], layers=("pickle",), pickle_types=(Money,))
    blob = allowed.encode(value)
    assert allowed.inspect(blob).layer == "pickle"
    assert allowed.decode(blob) == value
    # a codec that was not told about Money neither writes it as pickle nor loads it
    plain = Codec([("k1", KEY)])
    assert plain.inspect(plain.encode(value)).layer == "str"
    with pytest.raises(CorruptError, match="clean value domain"):
        plain.decode(blob)
