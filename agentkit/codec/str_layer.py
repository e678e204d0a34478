"""The string layer: the last resort. Lossy, and always decodable as ``str``.

A ``str`` value is written as it is; anything else as its ``repr`` (bounded), or, when even
``repr`` fails, as ``<unrepresentable TYPE>``. Decoding always gives back a ``str``. The
codec marks every envelope of this layer LOSSY.
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["MAX_CHARS", "dumps", "loads", "to_text"]

MAX_CHARS = 1_000_000

_REPR = reprlib.Repr()
_REPR.maxstring = 10_000
_REPR.maxother = 10_000
_REPR.maxlevel = 12
for _attr in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_REPR, _attr, 1_000)


def to_text(value: Any) -> str:
    """The text the string layer stores for ``value`` (never raises)."""
    if type(value) is str:
        text = value
    else:
        try:
            text = _REPR.repr(value)
        except Exception:  # a hostile __repr__; the type name is all we can say safely
            t = type(value)
            text = f"<unrepresentable {t.__module__}.{t.__qualname__}>"
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + "…[truncated]"
    return text


def dumps(value: Any) -> bytes:
    """Encode ``value`` as UTF-8 text (lone surrogates kept via ``surrogatepass``)."""
    return to_text(value).encode("utf-8", "surrogatepass")


def loads(payload: bytes | memoryview) -> str:
    """Decode the text.

    Raises:
        UnicodeDecodeError: the payload is not UTF-8 text.
    """
    return bytes(payload).decode("utf-8", "surrogatepass")
