"""``keep_picklable``: pickle unknown objects only through the default, C-level protocol.

An object is kept as it is when stdlib pickle accepts it *without running code of its own*:
its class (and every class along its MRO, bar ``object``) defines none of the hooks pickling
would call (``__reduce__``, ``__reduce_ex__``, ``__getstate__``, ``__getnewargs__``,
``__getnewargs_ex__``) nor attribute hooks (``__getattribute__``, ``__getattr__``, a
``__class__`` or ``__dict__`` that is not the standard descriptor), and its metaclass is
plain ``type``. The check pickles the object with a pickler whose ``reducer_override``
enforces that rule for every object reached, so nested attributes are held to it too.
"""

from __future__ import annotations

import pickle
import types
from typing import Any
from zoneinfo import ZoneInfo

from agentkit.sanitizer import _safe
from agentkit.sanitizer._fast import FAST_INSTANCE_TYPES

__all__ = ["safe_dumps"]

_HOOKS = (
    "__reduce__",
    "__reduce_ex__",
    "__getstate__",
    "__getnewargs__",
    "__getnewargs_ex__",
    "__getattribute__",
    "__getattr__",
    "__class__",
)
_CLEAN_IDS = frozenset(id(t) for t in FAST_INSTANCE_TYPES)
_verdicts: dict[int, tuple[type, bool]] = {}
_ZONE_KEY = ZoneInfo.__dict__["key"].__get__


class _Refused(Exception):
    """Internal: an object would run its own code when pickled."""


def _default_protocol_only(t: type) -> bool:
    hit = _verdicts.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    ok = type(t) is type
    if ok:
        for c in _safe.mro(t)[:-1]:
            ns = _safe.namespace(c)
            if any(name in ns for name in _HOOKS):
                ok = False
                break
            d = ns.get("__dict__")
            if d is not None and type(d) is not types.GetSetDescriptorType:
                ok = False
                break
    if len(_verdicts) > 4096:
        _verdicts.clear()
    _verdicts[id(t)] = (t, ok)
    return ok


class _KeepPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        if t is ZoneInfo:
            key = _ZONE_KEY(obj)
            if type(key) is str:
                return ZoneInfo, (key,)
            raise _Refused
        if id(t) in _CLEAN_IDS:
            return NotImplemented
        if t is type or t is types.FunctionType:
            return NotImplemented  # by reference: module and qualified name only
        if _default_protocol_only(t):
            return NotImplemented
        raise _Refused


class _Capped:
    __slots__ = ("chunks", "left")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.left = limit

    def write(self, data: Any) -> int:
        self.left -= len(data)
        if self.left < 0:
            raise _Refused
        self.chunks.append(bytes(data))
        return len(data)


def safe_dumps(obj: Any, limit: int) -> bytes | None:
    """Protocol-5 pickle of ``obj`` if no object in it runs its own code; else None."""
    sink = _Capped(limit)
    try:
        _KeepPickler(sink, 5).dump(obj)
    except Exception:
        return None
    return b"".join(sink.chunks)
