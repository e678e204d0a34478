"""The slow path: an iterative allow-list walk that builds the clean value and the report.

Containers are generator frames on an explicit stack, so nesting depth never touches the
interpreter's recursion limit. Objects are only ever inspected through :mod:`._safe`, are
never hashed or compared (cycle tracking is by ``id``), and every step that touches a known
protocol is guarded: whatever happens, the walk returns a clean value.
"""

from __future__ import annotations

import array
import collections
import itertools
import operator
import types
import uuid
from collections.abc import Callable, Generator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from agentkit.report import ReportKind, SanitizeReport
from agentkit.sanitizer import _safe, handlers
from agentkit.sanitizer._config import Config, SanitizeContext
from agentkit.sanitizer._keep import safe_dumps
from agentkit.sanitizer._kinds import (
    _ENUM_VALUE,
    _NUMERIC_IDS,
    _PLAIN,
    _UUID_INT,
    K_ARRAY,
    K_BYTEARRAY,
    K_BYTES,
    K_CLASS,
    K_DATACLASS,
    K_DATE,
    K_DATETIME,
    K_DECIMAL,
    K_DICT,
    K_ENUM,
    K_EXC,
    K_FLOAT,
    K_FROZENSET,
    K_HANDLER,
    K_INT,
    K_LIST,
    K_LIVE,
    K_MODEL,
    K_NAMEDTUPLE,
    K_PATH,
    K_ROOTMODEL,
    K_SECRET,
    K_SET,
    K_STR,
    K_TIME,
    K_TIMEDELTA,
    K_TUPLE,
    K_UUID,
    _is_secret,
    _model_items,
    _named_items,
    _why,
    classify,
    numeric_only,
)
from agentkit.sanitizer._paths import Path, format_path
from agentkit.sanitizer._scalars import ScalarsMixin
from agentkit.sanitizer.redact import REDACTED

_GEN = types.GeneratorType
_DICT_ITEMS: type = type({}.items())
_is_native_container = frozenset(map(id, (dict, list, tuple))).__contains__  # ids: no __hash__
_second = operator.itemgetter(1)
_REPLACED = ReportKind.REPLACED
_KIND_VALUES = {k: k.value for k in ReportKind}


class _Reasons(dict[str, str]):
    def __missing__(self, category: str) -> str:
        reason = self[category] = f"live object ({category}) cannot be stored"
        return reason


_LIVE_REASONS = _Reasons()


class Walker(ScalarsMixin):
    """One walk over one value; not reusable."""

    __slots__ = (
        "active",
        "dropped",
        "exhausted",
        "kinds",
        "native",
        "rejected",
        "secret_cache",
        "tried",
    )

    def __init__(
        self,
        cfg: Config,
        report: SanitizeReport,
        kinds: dict[int, Any],
        native: Callable[[Any], int | None] | None = None,
        rejected: Callable[[], int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.native = native
        self.rejected = rejected
        self.tried = 0  # id of the child whose native pass just failed (do not retry it)
        self.dropped = 0  # report entries counted but not listed (added to the report at the end)
        self.report = report
        self.kinds = kinds
        self.active: dict[int, Path] = {}
        self.nodes = 0
        self.nbytes = 0
        self.exhausted = False
        self.secret_cache = cfg.matcher._cache

    # --- driver -----------------------------------------------------------------------

    def run(self, root: Any, path: Path = None, depth: int = 0) -> Any:
        """Sanitize ``root``; never raises (except BaseExceptions like KeyboardInterrupt).

        ``path`` and ``depth`` place ``root`` inside a larger value (whose containers on the
        way to it the caller has put in ``active``).
        """
        try:
            return self._run(root, path, depth)
        finally:
            if self.dropped:
                self.report.entries_dropped += self.dropped
                self.dropped = 0

    def _run(self, root: Any, path: Path, base: int) -> Any:
        first = self._visit_guarded(root, path, base)
        if type(first) is not _GEN:
            return first
        stack: list[tuple[Generator[Any, Any, Any], Path, int]] = [(first, path, id(root))]
        self.active[id(root)] = path
        send: Any = None
        gen: Generator[Any, Any, Any] = first
        while True:
            try:
                req = gen.send(send)
            except StopIteration as stop:
                result = stop.value
            except Exception as exc:  # a guarded protocol misbehaved inside a frame
                self._add(path, ReportKind.ERROR, type(exc), f"walk failed here: {_why(exc)}")
                result = {handlers.PLACEHOLDER_KEY: "error", "type": "builtins.object"}
            else:
                child, seg = req
                cpath = (path, seg)
                value = self._visit_guarded(child, cpath, base + len(stack))
                if type(value) is _GEN:
                    self.active[id(child)] = cpath
                    stack.append((value, cpath, id(child)))
                    gen, path, send = value, cpath, None
                else:
                    send = value
                continue
            self.active.pop(stack.pop()[2], None)
            if not stack:
                return result
            gen, path, _ = stack[-1]
            send = result

    # --- reporting --------------------------------------------------------------------

    def _add(self, path: Path, kind: ReportKind, t: type, reason: str) -> None:
        report = self.report
        if len(report.entries) >= report.max_entries:  # only counted: skip formatting
            counts = report.counts
            key = _KIND_VALUES[kind]
            counts[key] = counts.get(key, 0) + 1
            self.dropped += 1
            return
        report.add(format_path(path), kind, _safe.type_name(t), reason)

    def _depth_cut(self, path: Path, t: type) -> dict[str, Any]:
        limit = self.cfg.max_depth
        self._add(path, ReportKind.DEPTH, t, f"nested deeper than max_depth={limit}")
        return handlers.placeholder("depth", t)

    def _spend(self, path: Path, t: type) -> bool:
        """Count one node; False (and report) when the node budget is gone."""
        self.nodes += 1
        if self.nodes > self.cfg.max_nodes or self.nbytes > self.cfg.max_total_bytes:
            if not self.exhausted:
                self.exhausted = True
                self._add(path, ReportKind.BUDGET, t, "total node/byte budget exhausted here")
            return False
        return True

    # --- one value --------------------------------------------------------------------

    def _visit_guarded(self, obj: Any, path: Path, depth: int) -> Any:
        try:
            return self._visit(obj, path, depth)
        except Exception as exc:
            t = type(obj)
            self._add(path, ReportKind.ERROR, t, f"could not be inspected: {_why(exc)}")
            return handlers.placeholder("error", t)

    def _resolve(self, t: type) -> tuple[int, Any]:
        hit = self.kinds.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1], hit[2]
        kind, extra = classify(t, self.cfg.handlers)
        if len(self.kinds) > 4096:
            self.kinds.clear()
        self.kinds[id(t)] = (t, kind, extra)
        return kind, extra

    def _visit(self, obj: Any, path: Path, depth: int) -> Any:
        t = type(obj)
        if id(t) in _PLAIN:
            self.nodes += 1
            return obj
        if t is str:
            return self._str(obj, path)
        if t is bytes:
            return self._bytes(obj, path)
        kind, extra = self._resolve(t)
        if (
            kind is K_DICT
            or kind is K_LIST
            or kind is K_TUPLE
            or kind is K_SET
            or (kind is K_FROZENSET)
        ):
            return self._container(obj, t, kind, path, depth)
        if not self._spend(path, t):
            return handlers.placeholder("budget", t)
        if kind is K_HANDLER:
            return self._handler(obj, t, extra, path, depth)
        if kind is K_LIVE:
            category, describe = extra
            self._add(path, _REPLACED, t, _LIVE_REASONS[category])
            out = handlers.placeholder(category, t)
            out.update(describe(obj, t))
            return out
        if kind is K_DATETIME:
            return self._datetime(obj, t, path)
        if t is date or t is timedelta or t is uuid.UUID or t is Decimal:
            return obj
        if kind is K_TIME:
            return self._time(obj, t, path)
        if kind is K_STR:
            return self._str(str.__str__(obj), path)
        if kind is K_INT:
            return int.__index__(obj)
        if kind is K_FLOAT:
            return float.__float__(obj)
        if kind is K_BYTES:
            return self._bytes(bytes.__bytes__(obj), path)
        if kind is K_BYTEARRAY:
            return self._bytes(bytes(bytearray.copy(obj)), path)
        if kind is K_DATE:
            return date.fromordinal(date.toordinal(obj))
        if kind is K_TIMEDELTA:
            return timedelta(
                timedelta.__dict__["days"].__get__(obj),
                timedelta.__dict__["seconds"].__get__(obj),
                timedelta.__dict__["microseconds"].__get__(obj),
            )
        if kind is K_UUID:
            return uuid.UUID(int=_UUID_INT.__get__(obj, t))
        if kind is K_DECIMAL:
            return Decimal(obj)
        if kind is K_ENUM:
            d = _safe.instance_dict(obj, t)
            value = d.get(_ENUM_VALUE) if d is not None else None
            return self._nested(value, path, depth)
        if kind is K_CLASS:
            self._add(path, ReportKind.REPLACED, t, "a class is a reference, not data")
            return handlers.placeholder("class", t, **handlers._class(obj, t))
        if kind is K_EXC:
            self._add(path, ReportKind.REPLACED, t, "exception became a structured error")
            return self._redact_texts(handlers.describe_exception(obj), path)
        if kind is K_SECRET:
            self._add(path, ReportKind.REDACTED, t, "pydantic secret value")
            return REDACTED
        if kind is K_PATH:
            self._add(path, ReportKind.REPLACED, t, "path became its string form")
            return (
                self._str(str(obj), path)
                if _safe.module_of_type(t) == "pathlib"
                else handlers.placeholder("value", t)
            )
        if kind is K_ARRAY:
            return self._nested(array.array.tolist(obj), path, depth)
        if depth >= self.cfg.max_depth:
            return self._depth_cut(path, t)
        oid = id(obj)
        if oid in self.active:
            self._add(path, ReportKind.CYCLE, t, f"refers back to {format_path(self.active[oid])}")
            return handlers.placeholder("cycle", t, target=format_path(self.active[oid]))
        if kind is K_MODEL:
            return self._fields_gen(obj, t, path, _model_items(obj, t))
        if kind is K_ROOTMODEL:
            d = _safe.instance_dict(obj, t) or {}
            return self._nested(d.get("root"), path, depth)
        if kind is K_DATACLASS:
            return self._fields_gen(obj, t, path, _named_items(obj, t, extra))
        if kind is K_NAMEDTUPLE:
            values = list(tuple.__iter__(obj))
            return self._fields_gen(obj, t, path, list(zip(extra, values, strict=False)))
        return self._unknown(obj, t, path)

    def _nested(self, value: Any, path: Path, depth: int) -> Any:
        """A value standing in for the current one (enum value, root model, handler result)."""
        if depth >= self.cfg.max_depth:
            t = type(value)
            return self._depth_cut(path, t)
        return self._visit(value, path, depth + 1)

    def _handler(self, obj: Any, t: type, fn: Any, path: Path, depth: int) -> Any:
        ctx = SanitizeContext(path=format_path(path), depth=depth, type_name=_safe.type_name(t))
        try:
            result = fn(obj, ctx)
        except Exception as exc:
            self._add(path, ReportKind.ERROR, t, f"registered handler raised {_why(exc)}")
            return handlers.placeholder("error", t)
        if result is obj:
            self._add(path, ReportKind.ERROR, t, "registered handler returned its input")
            return handlers.placeholder("error", t)
        return self._nested(result, path, depth)

    # --- containers ---------------------------------------------------------------------

    def _container(self, obj: Any, t: type, kind: int, path: Path, depth: int) -> Any:
        if not self._spend(path, t):
            return handlers.placeholder("budget", t)
        if depth >= self.cfg.max_depth:
            return self._depth_cut(path, t)
        oid = id(obj)
        if oid in self.active:
            target = format_path(self.active[oid])
            self._add(path, ReportKind.CYCLE, t, f"refers back to {target}")
            return handlers.placeholder("cycle", t, target=target)
        native = self.native
        if (
            native is not None
            and depth > 0
            and (t is dict or t is list or t is tuple)
            and oid != self.tried
        ):
            # a clean subtree is proven so by one native pass and kept as it is; it is
            # charged to the budgets by its encoded size
            size = native(obj)
            if size is not None:
                self.nodes += size >> 3
                self.nbytes += size
                return obj
        if kind is K_DICT:
            if t is dict:
                items: Any = obj.items()
                n = len(obj)
            elif t is collections.OrderedDict:
                items = collections.OrderedDict.items(obj)
                n = dict.__len__(obj)
            else:
                items = dict.items(obj)
                n = dict.__len__(obj)
            return self._dict_gen(items, n, path, t)
        if kind is K_LIST:
            if t is list or t is tuple:
                return self._seq_gen(obj, len(obj), path, t, list)
            if t is collections.deque:
                return self._seq_gen(obj, len(obj), path, t, list)
            return self._seq_gen(
                list.__iter__(obj) if issubclass(t, list) else collections.deque.__iter__(obj),
                -1,
                path,
                t,
                list,
            )
        if kind is K_TUPLE:
            src = obj if t is tuple else tuple.__iter__(obj)
            return self._seq_gen(src, tuple.__len__(obj), path, t, tuple)
        it = (
            obj
            if (t is set or t is frozenset)
            else (set.__iter__(obj) if kind is K_SET else frozenset.__iter__(obj))
        )
        return self._set_gen(it, path, t, set if kind is K_SET else frozenset)

    def _truncated(self, path: Path, t: type, n: int) -> None:
        self._add(
            path,
            ReportKind.TRUNCATED,
            t,
            f"kept the first {self.cfg.max_items} of {n if n >= 0 else 'more'} items",
        )

    def _out_of_budget(self, path: Path, t: type) -> None:
        self.exhausted = True
        self._add(
            path, ReportKind.BUDGET, t, "total node/byte budget exhausted; remaining items cut"
        )

    def _seq_gen(
        self, items: Any, n: int, path: Path, t: type, make: type
    ) -> Generator[Any, Any, Any]:
        out: list[Any] = []
        append = out.append
        limit = self.cfg.max_items
        maxs = self.cfg.max_str_len
        maxn = self.cfg.max_nodes
        maxb = self.cfg.max_total_bytes
        plain = _PLAIN
        native = self.native
        i = -1
        for i, v in enumerate(items):
            if i >= limit:
                self._truncated(path, t, n)
                break
            if self.exhausted or self.nodes > maxn or self.nbytes > maxb:
                self._out_of_budget(path, t)
                break
            tv = type(v)
            if id(tv) in plain:
                self.nodes += 1
                append(v)
            elif tv is str:
                if len(v) > maxs or "://" in v:
                    append(self._str(v, (path, i)))
                else:
                    append(v)
                    self.nodes += 1
                    self.nbytes += len(v)
            else:
                if native is not None and (tv is dict or tv is list or tv is tuple):
                    # offer a clean-looking child to the native pass before walking it
                    size = native(v)
                    if size is not None:
                        self.nodes += size >> 3
                        self.nbytes += size
                        append(v)
                        continue
                    self.tried = id(v)
                append((yield v, i))
        return out if make is list else tuple(out)

    def _dict_gen(
        self, items: Any, n: int, path: Path, t: type
    ) -> Generator[Any, Any, dict[Any, Any]]:
        out: dict[Any, Any] = {}
        limit = self.cfg.max_items
        maxs = self.cfg.max_str_len
        maxn = self.cfg.max_nodes
        maxb = self.cfg.max_total_bytes
        plain = _PLAIN
        native = self.native
        cache = self.secret_cache
        matcher = self.cfg.matcher
        converted = False
        suspect = self._sole_suspect(items) if native is not None else 0
        for i, (k, v) in enumerate(items):
            if i >= limit:
                self._truncated(path, t, n)
                break
            if self.exhausted or self.nodes > maxn or self.nbytes > maxb:
                self._out_of_budget(path, t)
                break
            if type(k) is str and len(k) <= 256 and "://" not in k:
                key: Any = k
                secret = cache.get(k)
                if secret is None:
                    secret = matcher.is_secret_key(k)
            else:
                key = self._key(k, path, i)
                converted = converted or key is not k
                secret = _is_secret(matcher, key)
            if converted and key in out:
                new = f"{key!s}#{i}"
                reason = f"key collided; renamed {new!r}"
                self._add((path, key), ReportKind.REPLACED, type(k), reason)
                key = new
            tv = type(v)
            if secret and id(tv) not in _NUMERIC_IDS and not numeric_only(v):
                self.nodes += 1
                self._add((path, key), ReportKind.REDACTED, tv, "value under a secret-looking key")
                out[key] = REDACTED
            elif id(tv) in plain:
                self.nodes += 1
                out[key] = v
            elif tv is str:
                if len(v) > maxs or "://" in v:
                    out[key] = self._str(v, (path, key))
                else:
                    out[key] = v
                    self.nodes += 1
                    self.nbytes += len(v)
            else:
                if native is not None and (tv is dict or tv is list or tv is tuple):
                    if id(v) != suspect:
                        size = native(v)
                        if size is not None:
                            self.nodes += size >> 3
                            self.nbytes += size
                            out[key] = v
                            continue
                    self.tried = id(v)
                out[key] = yield v, key
        return out

    def _sole_suspect(self, items: Any) -> int:
        """Id of the one container value of a dict whose native pass just failed, when the
        object it failed on is not one of the dict's own values (so that container holds
        it, unless a key does); 0 when unsure. Trying that container natively again would
        fail the same way. Only a hint: a wrong guess costs time, never correctness."""
        view: Any = items
        if type(view) is not _DICT_ITEMS or self.rejected is None:
            return 0
        # the view's own iteration: no subclass method is called
        values: list[Any] = list(map(_second, items))
        kinds = list(map(_is_native_container, map(id, map(type, values))))
        if kinds.count(True) != 1:
            return 0
        rejected = self.rejected()
        if not rejected or rejected in set(map(id, values)):
            return 0
        return id(next(itertools.compress(values, kinds)))

    def _set_gen(self, items: Any, path: Path, t: type, make: type) -> Any:
        # set members are hashable already; they are cleaned as keys (no generator needed)
        out = []
        limit = self.cfg.max_items
        for i, v in enumerate(items):
            if i >= limit:
                self._truncated(path, t, -1)
                break
            if not self._spend((path, i), type(v)):
                break
            out.append(self._key(v, path, i))
        return make(out)

    def _fields_gen(
        self, obj: Any, t: type, path: Path, items: list[tuple[Any, Any]]
    ) -> Generator[Any, Any, dict[Any, Any]]:
        return self._dict_gen(items, len(items), path, t)

    def _unknown(self, obj: Any, t: type, path: Path) -> Any:
        cfg = self.cfg
        if cfg.keep_picklable and safe_dumps(obj, cfg.max_total_bytes) is not None:
            return obj
        if cfg.unknown == "placeholder":
            self._add(path, ReportKind.SUMMARISED, t, "unknown object replaced by its type")
            return handlers.placeholder("object", t)
        self._add(path, ReportKind.SUMMARISED, t, "unknown object summarised as its attributes")
        return self._object_gen(obj, t, path)

    def _object_gen(self, obj: Any, t: type, path: Path) -> Generator[Any, Any, Any]:
        d = _safe.instance_dict(obj, t)
        n = dict.__len__(d) if d is not None else 0
        items = itertools.chain(
            _safe.dict_items(d) if d is not None else (), _safe.slot_items(obj, t)
        )
        attrs = yield from self._dict_gen(items, n, path, t)
        return handlers.placeholder("object", t, attributes=attrs)


__all__ = ["Walker"]
