"""Scalars and keys for the walk: strings, bytes, times, and the cleaning of dict keys."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, cast

from agentkit.report import ReportKind, SanitizeReport
from agentkit.sanitizer import _safe
from agentkit.sanitizer._config import Config
from agentkit.sanitizer._kinds import (
    _ENUM_VALUE,
    _HKEY_IDS,
    _TIME_TZINFO,
    _TZINFO,
    K_BYTES,
    K_DATE,
    K_DATETIME,
    K_DECIMAL,
    K_ENUM,
    K_FLOAT,
    K_FROZENSET,
    K_INT,
    K_NAMEDTUPLE,
    K_STR,
    K_TIME,
    K_TIMEDELTA,
    K_TUPLE,
    K_UUID,
    _clean_tz,
)
from agentkit.sanitizer._paths import Path

__all__ = ["ScalarsMixin"]


class ScalarsMixin:
    """The scalar part of :class:`~agentkit.sanitizer._walk.Walker` (state lives there)."""

    __slots__ = ("cfg", "nbytes", "nodes", "report")

    cfg: Config
    report: SanitizeReport
    nodes: int
    nbytes: int

    def _add(self, path: Path, kind: ReportKind, t: type, reason: str) -> None:
        raise NotImplementedError

    def _resolve(self, t: type) -> tuple[int, Any]:
        raise NotImplementedError

    def _visit(self, obj: Any, path: Path, depth: int) -> Any:
        raise NotImplementedError

    def _redact_texts(self, error: dict[str, Any], path: Path) -> dict[str, Any]:
        """URL credentials out of an exception's message and traceback (and its causes)."""
        if not self.cfg.redact_urls:
            return error
        node: Any = error
        while type(node) is dict:
            for field in ("message", "traceback"):
                text = node.get(field)
                if type(text) is str and "://" in text:
                    red = self.cfg.matcher.redact_url_credentials(text)
                    if red is not None:
                        node[field] = red
                        self._add(path, ReportKind.REDACTED, str, f"credentials in a URL ({field})")
            node = node.get("cause")
        return error

    # --- scalars ------------------------------------------------------------------------

    def _str(self, s: str, path: Path) -> str:
        self.nodes += 1
        n = len(s)
        self.nbytes += n
        cfg = self.cfg
        if n > cfg.max_str_len:
            reason = f"string of {n} chars cut to {cfg.max_str_len}"
            self._add(path, ReportKind.TRUNCATED, str, reason)
            s = s[: cfg.max_str_len]
        if cfg.redact_urls and "://" in s:
            red = cfg.matcher.redact_url_credentials(s)
            if red is not None:
                self._add(path, ReportKind.REDACTED, str, "credentials in a URL")
                return red
        return s

    def _bytes(self, b: bytes, path: Path) -> bytes:
        self.nodes += 1
        n = len(b)
        self.nbytes += n
        limit = self.cfg.max_bytes_len
        if n > limit:
            self._add(path, ReportKind.TRUNCATED, bytes, f"bytes of length {n} cut to {limit}")
            return b[:limit]
        return b

    def _datetime(self, obj: Any, t: type, path: Path) -> datetime:
        return cast(datetime, self._moment(obj, t, datetime, _TZINFO(obj), path))

    def _time(self, obj: Any, t: type, path: Path) -> time:
        return cast(time, self._moment(obj, t, time, _TIME_TZINFO(obj), path))

    def _moment(self, obj: Any, t: type, cls: type[Any], tz: Any, path: Path) -> Any:
        """A datetime or time (``cls``) of exact type with a clean tzinfo: ``obj`` itself,
        or rebuilt from its ISO form (an unclean tzinfo becomes its fixed offset)."""
        clean_tz = _clean_tz(tz)
        if t is cls and clean_tz:
            return obj
        out = cls.fromisoformat(cls.isoformat(obj))
        if clean_tz and tz is not None:
            out = out.replace(tzinfo=tz)
        elif tz is not None:
            self._add(path, ReportKind.REPLACED, type(tz), "time zone became its fixed UTC offset")
        return out

    # --- keys ---------------------------------------------------------------------------

    def _key(self, k: Any, path: Path, index: int, depth: int = 0) -> Any:
        """A hashable clean key for ``k`` (hostile keys become a label and are reported)."""
        t = type(k)
        if t is str:
            if len(k) > self.cfg.max_str_len or ("://" in k and self.cfg.redact_urls):
                return self._str(k, (path, f"<key {index}>"))
            return k
        if id(t) in _HKEY_IDS:
            if t is datetime or t is time:
                return self._datetime(k, t, path) if t is datetime else self._time(k, t, path)
            return k
        if depth < 8:
            if t is tuple:
                return tuple(self._key(e, path, index, depth + 1) for e in tuple.__iter__(k))
            if t is frozenset:
                return frozenset(self._key(e, path, index, depth + 1) for e in k)
            kind, _ = self._resolve(t)
            if kind in (
                K_ENUM,
                K_STR,
                K_INT,
                K_FLOAT,
                K_BYTES,
                K_DATETIME,
                K_DATE,
                K_TIME,
                K_TIMEDELTA,
                K_UUID,
                K_DECIMAL,
                K_TUPLE,
                K_FROZENSET,
                K_NAMEDTUPLE,
            ):
                if kind is K_ENUM:
                    d = _safe.instance_dict(k, t)
                    return self._key(d.get(_ENUM_VALUE) if d else None, path, index, depth + 1)
                if kind is K_TUPLE or kind is K_NAMEDTUPLE:
                    return tuple(self._key(e, path, index, depth + 1) for e in tuple.__iter__(k))
                if kind is K_FROZENSET:
                    return frozenset(
                        self._key(e, path, index, depth + 1) for e in frozenset.__iter__(k)
                    )
                v = self._visit(k, path, 0)
                if id(type(v)) in _HKEY_IDS:
                    return v
        label = f"<{_safe.type_name(t)} #{index}>"
        self._add((path, label), ReportKind.REPLACED, t, "key is not a clean hashable value")
        return label
