"""How the walk classifies types, and the guarded readers of known protocols' fields.

Everything reads types through :mod:`._safe` (no metaclass code runs) and compares types by
identity or ``id``, never with ``==``.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import enum
import pathlib
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import pydantic.types as pydantic_types

from agentkit.sanitizer import _safe, handlers

_NoneType = type(None)
_PLAIN = frozenset({id(_NoneType), id(bool), id(int), id(float)})
#: exact hashable clean scalars allowed as dict keys and set members
_HKEY_SCALARS = (
    _NoneType,
    bool,
    int,
    float,
    str,
    bytes,
    datetime,
    date,
    time,
    timedelta,
    uuid.UUID,
    Decimal,
)
_NUMERIC_IDS = frozenset(map(id, (_NoneType, bool, int, float)))
_HKEY_IDS = frozenset(map(id, _HKEY_SCALARS))
_SECRET_BASE: type = pydantic_types._SecretBase
_ROOT_MODEL: type = pydantic.RootModel
_BASE_MODEL: type = pydantic.BaseModel
_DC_FIELD = dataclasses._FIELD  # type: ignore[attr-defined]
_PYD_EXTRA = _safe.namespace(pydantic.BaseModel)["__pydantic_extra__"]
_TZINFO = datetime.__dict__["tzinfo"].__get__
_TIME_TZINFO = time.__dict__["tzinfo"].__get__
_ENUM_VALUE = "_value_"
_UUID_INT = _safe.namespace(uuid.UUID)["int"]
_ZONE_KEY = ZoneInfo.__dict__["key"].__get__

# kinds a type resolves to (cached per type)
(
    K_HANDLER,
    K_CLASS,
    K_ENUM,
    K_SECRET,
    K_ROOTMODEL,
    K_MODEL,
    K_DATACLASS,
    K_NAMEDTUPLE,
    K_EXC,
    K_LIVE,
    K_DICT,
    K_LIST,
    K_TUPLE,
    K_SET,
    K_FROZENSET,
    K_STR,
    K_INT,
    K_FLOAT,
    K_BYTES,
    K_BYTEARRAY,
    K_DATETIME,
    K_DATE,
    K_TIME,
    K_TIMEDELTA,
    K_UUID,
    K_DECIMAL,
    K_PATH,
    K_ARRAY,
    K_UNKNOWN,
) = range(29)

_BUILTIN_KINDS: list[tuple[type, int]] = [
    (bool, K_INT),
    (dict, K_DICT),
    (list, K_LIST),
    (collections.deque, K_LIST),
    (tuple, K_TUPLE),
    (set, K_SET),
    (frozenset, K_FROZENSET),
    (str, K_STR),
    (int, K_INT),
    (float, K_FLOAT),
    (bytes, K_BYTES),
    (bytearray, K_BYTEARRAY),
    (datetime, K_DATETIME),
    (date, K_DATE),
    (time, K_TIME),
    (timedelta, K_TIMEDELTA),
    (uuid.UUID, K_UUID),
    (Decimal, K_DECIMAL),
    (pathlib.PurePath, K_PATH),
    (array.array, K_ARRAY),
]
_BUILTIN_BY_ID = {id(t): (t, k) for t, k in _BUILTIN_KINDS}


def classify(t: type, registered: dict[int, tuple[type, Any]]) -> tuple[int, Any]:
    """The kind a type resolves to, and its extra data (handler, fields, category)."""
    mro = _safe.mro(t)
    ids = {id(c) for c in mro}
    for c in mro:
        h = registered.get(id(c))
        if h is not None and h[0] is c:
            return K_HANDLER, h[1]
    if id(type) in ids:
        return K_CLASS, None
    if id(enum.Enum) in ids:
        return K_ENUM, None
    if id(_SECRET_BASE) in ids:
        return K_SECRET, None
    if id(_ROOT_MODEL) in ids:
        return K_ROOTMODEL, None
    if id(_BASE_MODEL) in ids:
        return K_MODEL, None
    fields = _safe.class_attr(t, "__dataclass_fields__")
    if type(fields) is dict:
        names = tuple(
            n
            for n, f in fields.items()
            if type(n) is str and type(f) is dataclasses.Field and f._field_type is _DC_FIELD  # type: ignore[attr-defined]
        )
        return K_DATACLASS, names
    if id(tuple) in ids:
        nt_fields = _safe.class_attr(t, "_fields")
        if type(nt_fields) is tuple and all(type(f) is str for f in nt_fields):
            return K_NAMEDTUPLE, nt_fields
    if id(BaseException) in ids:
        return K_EXC, None
    live = handlers.live_category(mro)
    if live is not None:
        return K_LIVE, live
    for c in mro:
        row = _BUILTIN_BY_ID.get(id(c))
        if row is not None and row[0] is c:
            return row[1], None
    return K_UNKNOWN, None


def _is_secret(matcher: Any, key: Any) -> bool:
    """Secret-looking str keys, and bytes keys read as Latin-1 (``os.environb`` style)."""
    if type(key) is str:
        return bool(matcher.is_secret_key(key))
    if type(key) is bytes and len(key) <= 256:
        return bool(matcher.is_secret_key(key.decode("latin-1")))
    return False


_NUMBER_IDS = frozenset(map(id, (_NoneType, bool, int, float)))
_SEQ_IDS = frozenset(map(id, (list, tuple)))


def numeric_only(value: Any, budget: int = 10_000) -> bool:
    """True when ``value`` can carry no secret: a number, bool or None, or plain dicts, lists
    and tuples of those whose keys are short lower-case identifiers (``{"in_p50": 12}``).

    Token counts under a key like ``tokens`` are kept this way; anything else under a
    secret-looking key is redacted. Only exact types count; the check is bounded.
    """
    stack = [value]
    while stack:
        budget -= 1
        if budget < 0:
            return False
        cur = stack.pop()
        tid = id(type(cur))
        if tid in _NUMBER_IDS:
            continue
        if tid in _SEQ_IDS:
            stack.extend(cur)
        elif type(cur) is dict:
            for k, v in cur.items():
                if type(k) is not str or len(k) > 24 or not (k.isidentifier() and k.islower()):
                    return False
                stack.append(v)
        else:
            return False
    return True


def _clean_tz(tz: Any) -> bool:
    """None, a fixed-offset timezone, or a ZoneInfo that can be rebuilt from its key."""
    t = type(tz)
    return tz is None or t is timezone or (t is ZoneInfo and type(_ZONE_KEY(tz)) is str)


def _model_items(obj: Any, t: type) -> list[tuple[Any, Any]]:
    d = _safe.instance_dict(obj, t)
    items = list(_safe.dict_items(d)) if d is not None else []
    try:
        extra = _PYD_EXTRA.__get__(obj, t)
    except Exception:
        extra = None
    if type(extra) is dict:
        items.extend(extra.items())
    return items


def _named_items(obj: Any, t: type, names: tuple[str, ...]) -> list[tuple[Any, Any]]:
    out = []
    for name in names:
        v = _safe.read_attr(obj, t, name)
        if v is not _safe.MISSING:
            out.append((name, v))
    return out


def _why(exc: BaseException) -> str:
    return _safe.type_name(type(exc))
