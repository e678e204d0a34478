"""The compiled fast path (``_native.c``): one C pass that checks, cleans and pickles.

The pass writes the pickle of exact built-in clean values itself and hands every other
object to the walk (:class:`~agentkit.sanitizer._walk.Walker`), at its path and depth, with
the containers above it marked active for cycle detection; the walk's clean value takes the
object's place. Whatever the pass cannot decide exactly as the walk would (a budget crossed,
a secret to redact, a foreign object nested deeper than ``max_depth``) makes it give up, and
the caller runs the whole walk instead. Without a C compiler at install time the module is
absent and :func:`native_available` is False.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

from agentkit.report import SanitizeReport
from agentkit.sanitizer._config import Config
from agentkit.sanitizer._fast import FAST_INSTANCE_TYPES
from agentkit.sanitizer._kinds import numeric_only
from agentkit.sanitizer._walk import Walker

_native: ModuleType | None
try:
    from agentkit.sanitizer import _native
except ImportError:  # built without a compiler: the pure-Python fast path is used
    _native = None

__all__ = ["NativePass", "native_available"]

#: the classes the C pass encodes itself, in the order its ``allowed`` bits use
_CLASSES: tuple[type, ...] = FAST_INSTANCE_TYPES


def native_available() -> bool:
    """True when the compiled fast path was built and is used by default."""
    return _native is not None


class _GiveUp(Exception):
    """Internal: the walk of a foreign object ran out of budget; walk everything instead."""


class NativePass:
    """The C encoder configured for one sanitizer.

    Args:
        cfg: the sanitizer's options.
        kinds: the sanitizer's type-classification cache (shared with its walks).
        instance_types: which of the clean instance types the pass may encode itself (a type
            with a registered handler must reach the walk instead).
    """

    __slots__ = ("_cfg", "_encoder", "_kinds")

    def __init__(self, cfg: Config, kinds: dict[int, Any], instance_types: Iterable[type]) -> None:
        if _native is None:
            raise RuntimeError("the compiled module agentkit.sanitizer._native is not built")
        allowed_types = tuple(instance_types)
        allowed = 0
        for bit, cls in enumerate(_CLASSES):
            if any(t is cls for t in allowed_types):
                allowed |= 1 << bit
        matcher = cfg.matcher
        self._cfg = cfg
        self._kinds = kinds
        self._encoder = _native.Encoder(
            (
                cfg.max_depth,
                cfg.max_items,
                cfg.max_str_len,
                cfg.max_bytes_len,
                cfg.max_nodes,
                cfg.max_total_bytes,
            ),
            cfg.redact_urls,
            allowed,
            _CLASSES,
            tuple((c.__module__, c.__qualname__) for c in _CLASSES),
            matcher._cache,
            matcher.is_secret_key,
            numeric_only,
            matcher.redact_url_credentials,
        )

    def run(self, obj: Any) -> tuple[Any, SanitizeReport | None, bytes] | None:
        """``(clean, report, pickle)``, or None when the whole walk must decide.

        ``report`` is None when no object had to be walked (nothing changed): the common
        case makes no report object at all.
        """
        try:
            out = self._encoder.encode(obj, self._on_other)
        except Exception:  # a budget ran out in the walk, or the pass failed: walk it all
            return None
        if out is None:
            return None
        clean, data, box = out
        return clean, (box[0] if box else None), data

    def _on_other(
        self,
        value: Any,
        segments: tuple[Any, ...],
        ancestors: tuple[Any, ...],
        depth: int,
        nodes: int,
        nbytes: int,
        box: list[SanitizeReport],
    ) -> tuple[Any, int, int]:
        """The walk of one foreign object at its place; ``box`` is the pass's own list,
        which holds its report once there is one."""
        cfg = self._cfg
        if not box:
            box.append(SanitizeReport(max_entries=cfg.max_report_entries))
        walker = Walker(cfg, box[0], self._kinds)
        walker.nodes = nodes
        walker.nbytes = nbytes
        active = walker.active
        path: Any = None
        for container, seg in zip(ancestors, segments, strict=True):
            active[id(container)] = path
            path = (path, seg)
        clean = walker.run(value, path, depth)
        if walker.exhausted:
            raise _GiveUp
        return clean, walker.nodes, walker.nbytes
