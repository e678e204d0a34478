"""The pickle layer: stdlib pickle, restricted to the clean domain on both sides.

The codec only ever hands this module bytes whose HMAC it has verified. Even then, loading
goes through :class:`RestrictedUnpickler`, whose ``find_class`` resolves names from a closed
table (the datetime types, ``uuid.UUID``, ``decimal.Decimal``, ``zoneinfo.ZoneInfo``, ``set``
and ``frozenset``) and never imports anything. A full unpickler is used only when the codec
was built with ``full_pickle=True`` (for private caches fed by the sanitizer's
``keep_picklable`` mode), and even then only for verified bytes.

Encoding uses :class:`CleanPickler`, which refuses anything a restricted unpickler could not
load, so a value this layer writes is a value the same codec can read back.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, SafeUUID
from zoneinfo import ZoneInfo

from agentkit.codec._common import NotEncodable

__all__ = [
    "PROTOCOL",
    "CleanPickler",
    "ForbiddenGlobal",
    "RestrictedUnpickler",
    "dumps",
    "loads",
    "safe_globals",
]

PROTOCOL = 5

_CLEAN_CLASSES: tuple[type, ...] = (
    datetime,
    date,
    time,
    timedelta,
    timezone,
    UUID,
    SafeUUID,
    Decimal,
    ZoneInfo,
)
# objects other than the types above that a clean pickle may pass through save_global
_CLEAN_TYPES = frozenset(_CLEAN_CLASSES)


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle names a global that is not on the allow list."""


def _zoneinfo_getattr(obj: object, name: str) -> Any:
    # Standard pickles of ZoneInfo are `getattr(ZoneInfo, "_unpickle")(key, from_cache)`.
    # The real getattr would make every allowed class a door to its module's globals, so
    # only this one lookup is served.
    if obj is ZoneInfo and name == "_unpickle":
        return ZoneInfo._unpickle  # type: ignore[attr-defined]
    raise ForbiddenGlobal(f"getattr({obj!r}, {name!r}) is not allowed in a clean pickle")


def safe_globals(extra: Iterable[type] = ()) -> dict[tuple[str, str], Any]:
    """The allow list: ``(module, qualified name) -> object`` for ``find_class``."""
    table: dict[tuple[str, str], Any] = {
        (cls.__module__, cls.__qualname__): cls for cls in (*_CLEAN_CLASSES, *extra)
    }
    table[("builtins", "set")] = set
    table[("builtins", "frozenset")] = frozenset
    table[("builtins", "getattr")] = _zoneinfo_getattr
    return table


_DEFAULT_GLOBALS = safe_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only from a closed table and imports nothing."""

    def __init__(self, file: io.BytesIO, allowed: dict[tuple[str, str], Any]) -> None:
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        """Return the allowed object for ``module.name``.

        Raises:
            ForbiddenGlobal: the name is not on the allow list.
        """
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise ForbiddenGlobal(
                f"pickle references {module}.{name}, which is not in the clean value domain; "
                "if the blob was written by a codec with full_pickle=True, decode it with one"
            ) from None


class CleanPickler(pickle.Pickler):
    """A pickler that raises :class:`NotEncodable` on anything outside the clean domain.

    ``reducer_override`` sees every object the C pickler does not handle natively, which is
    exactly the non-builtin ones, so the check costs one call per datetime/UUID/Decimal.
    UUIDs get a compact reduction (``UUID(int=…)``) that is cheaper than their default one.
    """

    def __init__(self, file: io.BytesIO, extra: frozenset[type] = frozenset()) -> None:
        super().__init__(file, PROTOCOL)
        self._extra = extra

    def reducer_override(self, obj: Any) -> Any:
        """Allow clean types (and the classes themselves); refuse everything else."""
        t = type(obj)
        if t is UUID:
            return (UUID, (None, None, None, None, obj.int))
        if t is ZoneInfo:
            if obj.key is None:
                raise NotEncodable("a ZoneInfo made from a file (no key) cannot be pickled")
            return (ZoneInfo, (obj.key,))
        if t in _CLEAN_TYPES or t in self._extra:
            return NotImplemented
        if t is type and (obj in _CLEAN_TYPES or obj in self._extra):
            return NotImplemented
        raise NotEncodable(f"{t.__module__}.{t.__qualname__} is not in the clean value domain")


def dumps(value: Any, *, full: bool = False, extra: frozenset[type] = frozenset()) -> bytes:
    """Pickle ``value`` (protocol 5).

    Args:
        value: what to pickle.
        full: use the unrestricted pickler (the codec's ``full_pickle`` mode).
        extra: additional classes a restricted reader is told to allow.

    Raises:
        NotEncodable: a value outside the allowed types, or one pickle cannot handle.
    """
    try:
        if full:
            return pickle.dumps(value, PROTOCOL)
        buf = io.BytesIO()
        CleanPickler(buf, extra).dump(value)
        return buf.getvalue()
    except NotEncodable:
        raise
    except Exception as exc:  # pickle raises many types: TypeError, PicklingError, ...
        raise NotEncodable(f"pickle cannot encode the value: {type(exc).__name__}: {exc}") from None


def loads(
    payload: bytes | memoryview,
    *,
    full: bool = False,
    allowed: dict[tuple[str, str], Any] | None = None,
) -> Any:
    """Unpickle verified bytes through the restricted unpickler (or fully if ``full``).

    Raises:
        ForbiddenGlobal: a global outside the allow list (restricted mode).
        Exception: whatever the unpickler raises for malformed data; the codec wraps it.
    """
    buf = io.BytesIO(payload)
    if full:
        value = pickle.Unpickler(buf).load()
    else:
        value = RestrictedUnpickler(buf, allowed or _DEFAULT_GLOBALS).load()
    if buf.tell() != len(buf.getbuffer()):
        raise pickle.UnpicklingError("trailing bytes after the pickle")
    return value
