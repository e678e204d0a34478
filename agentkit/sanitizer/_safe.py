"""Introspection that never runs code defined by the inspected object or its class.

Everything here reads through the C-level descriptors of ``type`` and ``object`` directly, so
a hostile ``__getattribute__``, ``__getattr__``, ``__class__`` property, metaclass ``__hash__``
or ``__eq__`` is never invoked.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from typing import Any

_MISSING: Any = object()

_type_mro = type.__dict__["__mro__"].__get__
_type_ns = type.__dict__["__dict__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_module = type.__dict__["__module__"].__get__
_GETSET = types.GetSetDescriptorType
_MEMBER = types.MemberDescriptorType
_dict_get = dict.get
_dict_items = dict.items


def mro(t: type) -> tuple[type, ...]:
    """The method resolution order of ``t`` without running metaclass code."""
    result: tuple[type, ...] = _type_mro(t)
    return result


def namespace(t: type) -> Mapping[str, Any]:
    """The class body namespace (``t.__dict__``) read through ``type``'s own descriptor."""
    result: Mapping[str, Any] = _type_ns(t)
    return result


def class_attr(t: type, name: str) -> Any:
    """Look ``name`` up in the namespaces along the MRO; no descriptors are invoked."""
    for c in _type_mro(t):
        ns = _type_ns(c)
        if name in ns:
            return ns[name]
    return _MISSING


_NAMES: dict[int, tuple[type, str]] = {}


def type_name(t: type) -> str:
    """``module.qualname`` of a type (bare qualname for builtins), without metaclass code."""
    hit = _NAMES.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    name = _compute_type_name(t)
    if len(_NAMES) > 4096:
        _NAMES.clear()
    _NAMES[id(t)] = (t, name)
    return name


def _compute_type_name(t: type) -> str:
    qual = qualname_of_type(t)
    mod = module_of_type(t)
    if mod is None:
        return f"?.{qual}"
    return qual if mod == "builtins" else f"{mod}.{qual}"


def qualname_of_type(t: type) -> str:
    """The bare ``__qualname__`` of a type."""
    try:
        qual = _type_qualname(t)
    except Exception:
        return "<unknown>"
    return qual if type(qual) is str else "<unknown>"


def module_of_type(t: type) -> str | None:
    """The ``__module__`` a class was defined in, if it is a plain string."""
    try:
        mod = _type_module(t)
    except Exception:
        return None
    return mod if type(mod) is str else None


def instance_dict(obj: object, t: type) -> dict[Any, Any] | None:
    """The instance ``__dict__`` if the type provides the standard C descriptor for it."""
    desc = class_attr(t, "__dict__")
    if desc is _MISSING or (type(desc) is not _GETSET and type(desc) is not _MEMBER):
        return None
    try:
        d = desc.__get__(obj, t)
    except Exception:
        return None
    return d if isinstance(d, dict) else None


def slot_items(obj: object, t: type) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` for every set ``__slots__`` member along the MRO."""
    seen: set[str] = set()
    for c in _type_mro(t):
        ns = _type_ns(c)
        for name, desc in ns.items():
            if type(desc) is not _MEMBER or type(name) is not str or name in seen:
                continue
            seen.add(name)
            if name in ("__weakref__", "__dict__"):
                continue
            try:
                value = desc.__get__(obj, t)
            except Exception:  # an unset slot raises AttributeError
                value = _MISSING
            if value is not _MISSING:
                yield name, value


def read_attr(obj: object, t: type, name: str) -> Any:
    """One instance attribute from ``__dict__`` or a slot, or ``_MISSING``; no properties."""
    d = instance_dict(obj, t)
    if d is not None:
        v = _dict_get(d, name, _MISSING)
        if v is not _MISSING:
            return v
    desc = class_attr(t, name)
    if type(desc) is _MEMBER:
        try:
            return desc.__get__(obj, t)
        except Exception:
            return _MISSING
    return _MISSING


def dict_items(d: dict[Any, Any]) -> Iterator[tuple[Any, Any]]:
    """Items of a dict or dict subclass through ``dict``'s own iterator."""
    return iter(_dict_items(d))


MISSING = _MISSING
