"""Report paths: ``$.a[3].b`` and ``$["weird key"]``, built lazily as linked tuples."""

from __future__ import annotations

import json
from typing import Any

#: a path is None (the root) or ``(parent, segment)``
Path = tuple[Any, Any] | None

ROOT: Path = None


def _segment(seg: Any) -> str:
    t = type(seg)
    if t is int:
        return f"[{seg}]"
    if t is str:
        if seg.isidentifier():
            return f".{seg}"
        return "[" + str(json.dumps(seg, ensure_ascii=False)) + "]"
    if t is float or t is bool or t is type(None) or t is bytes or t is tuple:
        return f"[{seg!r}]"
    return f"[<{t.__name__}>]"


def format_path(path: Path) -> str:
    """Render a linked path as ``$.a[3].b``."""
    parts: list[Any] = []
    while path is not None:
        path, seg = path
        parts.append(seg)
    return "$" + "".join(_segment(s) for s in reversed(parts))
