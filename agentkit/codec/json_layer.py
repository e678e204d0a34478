"""The JSON layer: an exact, tagged JSON form of the clean value domain.

JSON has no datetimes, UUIDs, Decimals, bytes, tuples, sets, non-string keys or NaN, so
those become *tagged objects*: JSON objects whose reserved key ``"$ak"`` names the kind and
whose ``"v"`` holds a JSON-native form (``{"$ak": "uuid", "v": "6f1c…"}``). A dict whose keys
are not all strings, or that has a ``"$ak"`` key of its own, is written as a list of pairs
(``{"$ak": "map", "v": [[k, v], …]}``), so every JSON object with a ``"$ak"`` key is a tag
and user data can never be mistaken for one.

Decoding maps each tag to a fixed constructor from a closed table: no name in the payload is
ever imported or looked up. Anything outside the clean domain raises :class:`NotEncodable`
when encoding (the codec then tries its next layer); a malformed tag raises ``ValueError``
when decoding (the codec reports it as :class:`~agentkit.errors.CorruptError`).

The text is JSON, UTF-8 encoded, except that NaN and the infinities are written as the
``NaN`` / ``Infinity`` / ``-Infinity`` constants Python's reader accepts (a ``"f"`` tag is
also read, for writers that avoid them). Store columns use
:meth:`~agentkit.result.SerializableAgentResult.output_json`, which is standard JSON.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pydantic_core

from agentkit.codec._common import NotEncodable

__all__ = ["TAG_KEY", "NotEncodable", "dumps", "loads", "to_tagged"]

TAG_KEY = "$ak"


_Enc = Callable[[Any], Any]


def _tz_extra(tz: object, out: dict[str, Any]) -> None:
    # A named zone survives as its key, so the value comes back with the same tzinfo.
    if type(tz) is ZoneInfo and tz.key:
        out["z"] = tz.key


def _enc_datetime(o: datetime) -> dict[str, Any]:
    tz = o.tzinfo
    if (tz is None or tz is UTC) and not o.fold:
        # the writer formats these natively and exactly; other offsets may have seconds,
        # which it would round to minutes, so Python formats those
        return {TAG_KEY: "dt", "v": o}
    out: dict[str, Any] = {TAG_KEY: "dt", "v": o.isoformat()}
    if tz is not None and type(tz) is not timezone:
        _tz_extra(tz, out)
    if o.fold:
        out["f"] = 1
    return out


def _enc_time(o: time) -> dict[str, Any]:
    out: dict[str, Any] = {TAG_KEY: "t", "v": o.isoformat()}
    if o.tzinfo is not None and type(o.tzinfo) is not timezone:
        _tz_extra(o.tzinfo, out)
    if o.fold:
        out["f"] = 1
    return out


def to_tagged(value: Any) -> Any:
    """Return the tagged form of a clean ``value``: JSON types, plus datetimes (naive or UTC),
    dates, UUIDs and Decimals inside tags, which the writer formats natively.

    Raises:
        NotEncodable: ``value`` holds something outside the clean domain.
        RecursionError: ``value`` is nested too deeply (or is cyclic).
    """
    t = type(value)
    if t in _PLAIN:
        return value
    if t is dict:
        return _enc_dict(value)
    if t is list:
        return [v if type(v) in _PLAIN else to_tagged(v) for v in value]
    enc = _ENCODERS.get(t)
    if enc is None:
        raise NotEncodable(f"{t.__module__}.{t.__qualname__} is not in the clean value domain")
    return enc(value)


# Scalars JSON carries as they are. Floats include NaN and the infinities: the writer emits
# them as the NaN / Infinity constants, which the reader parses back exactly.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _enc_dict(value: dict[Any, Any]) -> Any:
    # the scalar case is inlined: a call per scalar value is most of the cost of tagging
    out = {}
    for k, v in value.items():
        if type(k) is not str:
            return _enc_map(value)
        t = type(v)
        if t in _PLAIN:
            out[k] = v
        elif t is dict:
            out[k] = _enc_dict(v)
        elif t is list:
            out[k] = _enc_list(v)
        elif t is datetime:
            out[k] = _enc_datetime(v)
        else:
            enc = _ENCODERS.get(t)
            if enc is None:
                raise NotEncodable(
                    f"{t.__module__}.{t.__qualname__} is not in the clean value domain"
                )
            out[k] = enc(v)
    if TAG_KEY in out:
        return _enc_map(value)
    return out


def _enc_list(value: Iterable[Any]) -> list[Any]:
    return [v if type(v) in _PLAIN else to_tagged(v) for v in value]


def _enc_map(value: dict[Any, Any]) -> dict[str, Any]:
    return {TAG_KEY: "map", "v": [[to_tagged(k), to_tagged(v)] for k, v in value.items()]}


_ENCODERS: dict[type, _Enc] = {
    datetime: _enc_datetime,
    date: lambda o: {TAG_KEY: "d", "v": o},
    time: _enc_time,
    timedelta: lambda o: {TAG_KEY: "td", "v": [o.days, o.seconds, o.microseconds]},
    # the writer formats UUIDs, Decimals (as str() does) and dates natively
    UUID: lambda o: {TAG_KEY: "uuid", "v": o},
    Decimal: lambda o: {TAG_KEY: "dec", "v": o},
    bytes: lambda o: {TAG_KEY: "b", "v": base64.b64encode(o).decode("ascii")},
    tuple: lambda o: {TAG_KEY: "tup", "v": _enc_list(o)},
    set: lambda o: {TAG_KEY: "set", "v": _enc_list(o)},
    frozenset: lambda o: {TAG_KEY: "fset", "v": _enc_list(o)},
}


# --- decoding ------------------------------------------------------------------------------


def _str(v: object) -> str:
    if type(v) is not str:
        raise ValueError("tagged value must hold a string")
    return v


def _list(v: object) -> list[Any]:
    if type(v) is not list:
        raise ValueError("tagged value must hold a list")
    return v


def _fold(d: dict[str, Any]) -> int:
    fold = d.get("f", 0)
    if fold not in (0, 1) or type(fold) is not int:
        raise ValueError("fold must be 0 or 1")
    return fold


def _zone(key: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(key)
    except Exception:  # unknown or malformed key: the caller keeps what it has
        return None


def _dec_datetime(d: dict[str, Any]) -> datetime:
    dt = datetime.fromisoformat(_str(d["v"]))
    key = d.get("z")
    if key is not None:
        zone = _zone(_str(key))
        if zone is not None:  # else the zone is unknown here: keep the fixed offset
            local = dt.replace(tzinfo=zone, fold=_fold(d))
            if local.utcoffset() == dt.utcoffset():
                return local
    return dt.replace(fold=_fold(d)) if "f" in d else dt


def _dec_time(d: dict[str, Any]) -> time:
    t = time.fromisoformat(_str(d["v"]))
    key = d.get("z")
    if key is not None:
        zone = _zone(_str(key))
        if zone is not None:  # else the zone is unknown here: keep what isoformat said
            zoned = t.replace(tzinfo=zone)
            if t.tzinfo is None or zoned.utcoffset() == t.utcoffset():
                t = zoned
    return t.replace(fold=_fold(d)) if "f" in d else t


def _dec_float(d: dict[str, Any]) -> float:
    s = _str(d["v"])
    if s not in ("nan", "inf", "-inf"):
        raise ValueError(f"unexpected non-finite float {s!r}")
    return float(s)


def _dec_timedelta(d: dict[str, Any]) -> timedelta:
    days, seconds, micros = _list(d["v"])
    if not (type(days) is int and type(seconds) is int and type(micros) is int):
        raise ValueError("timedelta parts must be integers")
    return timedelta(days=days, seconds=seconds, microseconds=micros)


def _dec_bytes(d: dict[str, Any]) -> bytes:
    return base64.b64decode(_str(d["v"]), validate=True)


def _dec_map(d: dict[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for pair in _list(d["v"]):
        if type(pair) is not list or len(pair) != 2:
            raise ValueError("map entries must be [key, value] pairs")
        out[pair[0]] = pair[1]
    return out


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dt": _dec_datetime,
    "d": lambda d: date.fromisoformat(_str(d["v"])),
    "t": _dec_time,
    "td": _dec_timedelta,
    "uuid": lambda d: UUID(hex=_str(d["v"])),
    "dec": lambda d: Decimal(_str(d["v"])),
    "b": _dec_bytes,
    "tup": lambda d: tuple(_list(d["v"])),
    "set": lambda d: set(_list(d["v"])),
    "fset": lambda d: frozenset(_list(d["v"])),
    "map": _dec_map,
    "f": _dec_float,
}
_ALLOWED_TAG_KEYS = frozenset({TAG_KEY, "v", "z", "f"})


def _object_hook(d: dict[str, Any]) -> Any:
    if TAG_KEY not in d:
        return d
    tag = d[TAG_KEY]
    dec = _DECODERS.get(tag) if type(tag) is str else None
    if dec is None or "v" not in d or not _ALLOWED_TAG_KEYS.issuperset(d):
        raise ValueError(f"malformed or unknown tagged value {tag!r}")
    return dec(d)


def _native_default(o: Any) -> str:
    # what pydantic-core writes for the objects to_tagged leaves inside tags
    t = type(o)
    if t is datetime or t is date:
        return str(o.isoformat())
    if t is UUID or t is Decimal:
        return str(o)
    raise TypeError(f"unexpected {t.__name__} in a tagged tree")


_ASCII_ENCODER = json.JSONEncoder(
    ensure_ascii=True,
    allow_nan=True,
    check_circular=False,
    separators=(",", ":"),
    default=_native_default,
)
_DECODER = json.JSONDecoder(object_hook=_object_hook)


def dumps(value: Any) -> bytes:
    """Encode a clean ``value`` as tagged JSON (UTF-8 bytes).

    Raises:
        NotEncodable: ``value`` is outside the clean domain or nested too deeply.
    """
    try:
        tree = to_tagged(value)
    except RecursionError:
        raise NotEncodable("value is nested too deeply for the JSON layer") from None
    # pydantic-core's encoder is ~3x faster than json's; the tree holds only JSON types and
    # finite floats, which it writes exactly (shortest round-trip form). It refuses lone
    # surrogates (not UTF-8) and very deep nesting: json's encoder takes those.
    with contextlib.suppress(Exception):
        return pydantic_core.to_json(tree)
    try:
        # \u escapes carry lone surrogates exactly
        return _ASCII_ENCODER.encode(tree).encode("ascii")
    except RecursionError:
        raise NotEncodable("value is nested too deeply for the JSON layer") from None


def loads(payload: bytes | memoryview) -> Any:
    """Decode tagged JSON made by :func:`dumps`.

    Raises:
        ValueError: the payload is not valid tagged JSON (includes ``UnicodeDecodeError``
            and ``json.JSONDecodeError``).
        TypeError, KeyError, RecursionError: malformed structure inside a tag.
    """
    return _DECODER.decode(bytes(payload).decode("utf-8"))
