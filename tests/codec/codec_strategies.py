"""Hypothesis strategies for the clean value domain, and an exact deep comparison."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

fixed_offsets = st.builds(
    lambda m: timezone(timedelta(minutes=m)), st.integers(min_value=-23 * 60, max_value=23 * 60)
)
tzs = st.none() | st.just(UTC) | fixed_offsets | st.timezones()

hashable_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.dates()
    | st.datetimes(timezones=tzs)
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False)
)
scalars = (
    hashable_scalars
    | st.floats()
    | st.times(timezones=st.none() | fixed_offsets | st.timezones())
    | st.decimals()
)
hkeys = st.recursive(hashable_scalars, lambda inner: st.tuples(inner, inner), max_leaves=4)

clean_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=4).map(tuple)
        | st.sets(hkeys, max_size=4)
        | st.frozensets(hkeys, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
        | st.dictionaries(hkeys, inner, max_size=4)
        | st.dictionaries(st.sampled_from(["$ak", "v", "z"]), inner, max_size=3)
    ),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Exact equality: same types all the way down, NaN equal to NaN, Decimal by its text,
    floats by repr (so -0.0 differs from 0.0), datetimes by instant, offset, fold and zone."""
    if type(a) is not type(b):
        return False
    t = type(a)
    if t is float:
        return (math.isnan(a) and math.isnan(b)) or repr(a) == repr(b)
    if t is Decimal:
        return str(a) == str(b)
    if t is datetime or t is time:
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.utcoffset() == b.utcoffset()
            and a.fold == b.fold
            and getattr(a.tzinfo, "key", None) == getattr(b.tzinfo, "key", None)
        )
    if t is list or t is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if t is set or t is frozenset:
        if len(a) != len(b):
            return False
        index = {x: x for x in b}
        return all(x in index and same(x, index[x]) for x in a)
    if t is dict:
        if len(a) != len(b):
            return False
        keys = {k: k for k in b}
        return all(k in keys and same(k, keys[k]) and same(v, b[k]) for k, v in a.items())
    if t in (date, timedelta, UUID, bytes, str, int, bool) or a is None:
        return bool(a == b)
    raise AssertionError(f"not a clean value: {t}")
