"""ObjectSanitizer: the public face of the fast path and the walk."""

from __future__ import annotations

import gc
import pickle
from collections.abc import Iterable
from itertools import compress
from typing import Any

from agentkit.errors import ConfigurationError
from agentkit.report import ReportKind, SanitizeReport
from agentkit.sanitizer import _safe
from agentkit.sanitizer._compiled import NativePass, native_available
from agentkit.sanitizer._config import Config, Handler, UnknownPolicy
from agentkit.sanitizer._fast import FAST_INSTANCE_TYPES, NATIVE_TYPES, FastEncoder, Seeds
from agentkit.sanitizer._keep import safe_dumps
from agentkit.sanitizer._kinds import numeric_only
from agentkit.sanitizer._walk import Walker
from agentkit.sanitizer.redact import DEFAULT_SECRET_KEYS

__all__ = ["ObjectSanitizer"]

_NUMERIC = (type(None), bool, int, float)
_CONTAINERS = (list, tuple, set, frozenset)


class ObjectSanitizer:
    """Turns any Python value into a clean, storable value and a report of what changed.

    ``sanitize`` never raises and never calls methods of unknown objects: clean values pass
    through (in one native pass when the whole value is clean), known live objects become
    typed placeholders, unknown objects are summarised, secrets are redacted, and cycles,
    depth and size budgets are enforced. Every change is reported with its path.

    Args:
        max_depth: containers or objects nested deeper than this are cut (reported DEPTH).
            The native fast path keeps an entirely clean value whole whatever its depth.
        max_items: items kept per container (reported TRUNCATED).
        max_str_len: characters kept per string (reported TRUNCATED).
        max_bytes_len: bytes kept per bytes value (reported TRUNCATED).
        max_nodes: values visited in total before the rest is cut (reported BUDGET).
        max_total_bytes: string and bytes payload in total before the rest is cut.
        max_report_entries: entries kept in the report (counts always cover everything).
        unknown: ``"summarise"`` (type, module and instance attributes, walked under the same
            budgets) or ``"placeholder"`` (type only) for objects of unknown types.
        keep_picklable: keep unknown objects as they are when stdlib pickle accepts them
            through its default protocol alone, without running any method of theirs (for
            private, signed caches that want full fidelity; loading them later does run
            their ``__setstate__``, if they define one).
        secret_keys: key fragments whose values are redacted (case-insensitive substring of
            the key with separators removed); numbers and None under such keys are kept.
        redact_urls: replace passwords inside URL strings (``redis://u:***@host``).
        fast_path: use the native pass for clean values (turn off only to compare).
        native: use the compiled pass (``_native.c``) when it is built: it cleans and
            pickles in one C pass and calls the walk only for foreign objects. False keeps
            the pure-Python fast path (the one used where the module is not built).

    Raises:
        ConfigurationError: an option is out of range.
    """

    def __init__(
        self,
        *,
        max_depth: int = 64,
        max_items: int = 100_000,
        max_str_len: int = 1_000_000,
        max_bytes_len: int = 10_000_000,
        max_nodes: int = 1_000_000,
        max_total_bytes: int = 64 * 1024 * 1024,
        max_report_entries: int = 10_000,
        unknown: UnknownPolicy = "summarise",
        keep_picklable: bool = False,
        secret_keys: Iterable[str] = DEFAULT_SECRET_KEYS,
        redact_urls: bool = True,
        fast_path: bool = True,
        native: bool = True,
    ) -> None:
        if isinstance(secret_keys, str):
            raise ConfigurationError(
                "secret_keys must be an iterable of key fragments, like ['password', 'token']"
            )
        self._cfg = Config(
            max_depth=max_depth,
            max_items=max_items,
            max_str_len=max_str_len,
            max_bytes_len=max_bytes_len,
            max_nodes=max_nodes,
            max_total_bytes=max_total_bytes,
            max_report_entries=max_report_entries,
            unknown=unknown,
            keep_picklable=keep_picklable,
            secret_keys=tuple(secret_keys),
            redact_urls=redact_urls,
            fast_path=fast_path,
        )
        self._kinds: dict[int, Any] = {}
        # dict keys met by the previous exact key check (by identity), passes since the last
        # exact check, and passes left before the byte scan is trusted again after a hit
        self._key_prev: dict[int, str] = {}
        self._since_exact = 0
        self._scan_skip = 0
        self._fast: FastEncoder | None = FastEncoder() if fast_path else None
        self._use_native = fast_path and native and native_available()
        self._native: NativePass | None = (
            NativePass(self._cfg, self._kinds, FAST_INSTANCE_TYPES) if self._use_native else None
        )

    # --- configuration ------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The validated options (read-only by convention)."""
        return self._cfg

    def register(self, tp: type, handler: Handler) -> None:
        """Replace values of ``tp`` (and its subclasses) by ``handler(value, ctx)``.

        The handler's result is itself sanitized, at the same path; a handler that raises or
        returns its input is reported as ERROR and its value becomes a placeholder.

        Args:
            tp: the type to handle.
            handler: ``handler(value, ctx: SanitizeContext) -> replacement``.

        Raises:
            ConfigurationError: ``tp`` is not a class, is one of the built-in clean types the
                native pass encodes directly, or ``handler`` is not callable.
        """
        if not isinstance(tp, type):
            raise ConfigurationError(f"register() needs a class, got {tp!r}")
        if not callable(handler):
            raise ConfigurationError(f"the handler for {tp.__qualname__} is not callable")
        if any(tp is t for t in NATIVE_TYPES):
            raise ConfigurationError(
                f"{tp.__qualname__} is a built-in clean type and cannot be overridden; "
                "register a subclass instead"
            )
        self._cfg.handlers[id(tp)] = (tp, handler)
        self._kinds.clear()
        if self._fast is not None:
            keep = [
                t
                for t in FAST_INSTANCE_TYPES
                if not any(id(c) in self._cfg.handlers for c in _safe.mro(t))
            ]
            self._fast = FastEncoder(keep)
            if self._use_native:
                self._native = NativePass(self._cfg, self._kinds, keep)

    # --- sanitizing -----------------------------------------------------------------------

    def sanitize(self, obj: Any) -> tuple[Any, SanitizeReport]:
        """Return ``(clean, report)``; never raises.

        When ``obj`` is already clean it is returned as is (not copied).
        """
        if self._native is not None:
            done = self._native.run(obj)
            if done is not None:
                return done[0], done[1] or self._empty_report()
        report = self._empty_report()
        if self._fast is not None:
            data = self._fast.encode(obj, self._cfg.fast_limit)
            if data is not None and not self._needs_redaction(obj, data):
                return obj, report
        return self._walk(obj, report)[0], report

    def sanitize_pickled(self, obj: Any) -> tuple[Any, SanitizeReport, bytes]:
        """Return ``(clean, report, pickle_bytes)``; never raises.

        ``pickle_bytes`` is the protocol-5 stdlib pickle of ``clean``, produced by the same
        native pass that validated it when ``obj`` was already clean.
        """
        if self._native is not None:
            done = self._native.run(obj)
            if done is not None:
                return done[0], done[1] or self._empty_report(), done[2]
        return self._sanitize_pickled_py(obj)

    def _sanitize_for_result(self, obj: Any) -> tuple[Any, SanitizeReport | None, bytes]:
        """:meth:`sanitize_pickled` for ``SerializableAgentResult.from_raw``: the report is
        None when nothing changed (no report object is made on the common path). A subclass
        that overrides ``sanitize_pickled`` is always called through it."""
        if type(self).sanitize_pickled is not _SANITIZE_PICKLED:
            return self.sanitize_pickled(obj)
        if self._native is not None:
            done = self._native.run(obj)
            if done is not None:
                return done
        return self._sanitize_pickled_py(obj)

    def _sanitize_pickled_py(self, obj: Any) -> tuple[Any, SanitizeReport, bytes]:
        """:meth:`sanitize_pickled` without the compiled pass (absent, off, or given up)."""
        report = self._empty_report()
        fast = self._fast
        if fast is not None:
            seeds = fast.seeds
            data = fast.encode(obj, self._cfg.fast_limit, seeds)
            if data is not None and not self._needs_redaction(obj, data):
                return obj, report, fast.finish(data, seeds)
        clean, pieces, walk_seeds = self._walk(obj, report)
        clean, data = self._pickle_clean(clean, obj, report, pieces, walk_seeds)
        return clean, report, data

    def _empty_report(self) -> SanitizeReport:
        return SanitizeReport(max_entries=self._cfg.max_report_entries)

    # --- internals --------------------------------------------------------------------------

    def _walk(
        self, obj: Any, report: SanitizeReport
    ) -> tuple[Any, list[tuple[Any, bytes]], Seeds | None]:
        """The walk's clean value, the subtrees it kept with their native encodings, and the
        seeds those were encoded with."""
        fast = self._fast
        if fast is None:
            return Walker(self._cfg, report, self._kinds).run(obj), [], None
        # Subtrees the native pass proves clean are kept as they are; whether any of them
        # needs redaction is decided once for all of them at the end (rarely: walk again).
        seeds = fast.seeds
        encode = fast.session(seeds)
        limit = self._cfg.fast_limit
        accepted: list[tuple[Any, bytes]] = []

        def native(sub: Any) -> int | None:
            body = encode(sub, limit)
            if body is None:
                return None
            accepted.append((sub, body))
            return len(body)

        clean = Walker(self._cfg, report, self._kinds, native, fast.last_rejected).run(obj)
        fast.end_pass()
        if accepted and self._any_needs_redaction(accepted):
            report.entries.clear()
            report.counts.clear()
            report.entries_dropped = 0
            return Walker(self._cfg, report, self._kinds).run(obj), [], seeds
        return clean, accepted, seeds

    def _any_needs_redaction(self, accepted: list[tuple[Any, bytes]]) -> bool:
        data = b"".join(body for _, body in accepted)
        return self._redaction_needed([sub for sub, _ in accepted], data)

    def _pickle_clean(
        self,
        clean: Any,
        obj: Any,
        report: SanitizeReport,
        pieces: list[tuple[Any, bytes]],
        seeds: Seeds | None,
    ) -> tuple[Any, bytes]:
        """The clean value and its pickle; both change together when a fallback is needed."""
        fast = self._fast
        if fast is not None and seeds is not None and pieces:
            whole = fast.encode_with(clean, pieces, seeds)
            if whole is not None:
                return clean, whole
        if fast is not None:
            seeds = fast.seeds
            data = fast.encode(clean, 1 << 62, seeds)
            if data is not None:
                return clean, fast.finish(data, seeds)
        kept = safe_dumps(clean, 1 << 62)  # values kept by keep_picklable
        if kept is not None:
            return clean, kept
        # keep_picklable objects that pickle differently the second time, or a stack too
        # deep for the caller's frame: fall back to a shallow, placeholder-only walk
        shallow = ObjectSanitizer(
            max_depth=min(self._cfg.max_depth, 16),
            unknown="placeholder",
            fast_path=False,
            secret_keys=self._cfg.secret_keys,
        )
        again, rep2 = shallow.sanitize(obj)
        report.entries[:] = rep2.entries
        report.counts = dict(rep2.counts)
        report.entries_dropped = rep2.entries_dropped
        try:
            return again, pickle.dumps(again, protocol=5)
        except Exception as exc:  # never silently: the loss is reported at the root
            report.add(
                "$",
                ReportKind.ERROR,
                _safe.qualname_of_type(type(obj)),
                f"clean output could not be pickled ({_safe.qualname_of_type(type(exc))})",
            )
            return None, pickle.dumps(None, protocol=5)

    def _needs_redaction(self, obj: Any, data: bytes) -> bool:
        return self._redaction_needed([obj], data)

    def _redaction_needed(self, roots: list[Any], data: bytes) -> bool:
        """Would the walk redact anything in these natively validated values?

        URL credentials: a byte pre-scan of their pickle. Secret keys: the set of all their
        dict keys, gathered at C speed, checked against the (cached) key matcher; only on a
        hit are the values under such keys examined.
        """
        cfg = self._cfg
        matcher = cfg.matcher
        if cfg.redact_urls and matcher.might_contain_url_credentials(data):
            return True
        fast = self._fast
        if fast is not None and fast.seeds.strings:
            # The keys this sanitizer keeps meeting are seeded: vetted (not secret-looking,
            # no URL) and absent from ``data``, so a byte scan of ``data`` covers every
            # other key. Every 16th pass, and for a while after the scan hits, the exact
            # check runs instead (and refreshes the seeds).
            self._since_exact += 1
            if self._scan_skip > 0:
                self._scan_skip -= 1
            elif self._since_exact < _EXACT_EVERY:
                if not matcher.might_contain_secret_key(data):
                    return False
                self._scan_skip = _EXACT_EVERY
        self._since_exact = 0
        keys = _dict_keys(roots)
        if keys is not None and fast is not None and len(keys) <= _LEARN_MAX_KEYS:
            self._learn_keys(keys, fast)
        if keys is None:  # very many distinct keys: the byte pre-scan is cheaper
            if not matcher.might_contain_secret_key(data):
                return False
        elif not any(_secret_key(k, matcher) for k in keys):
            return False
        return any(_has_secret_key(root, matcher.is_secret_key) for root in roots)

    def _learn_keys(self, keys: set[Any], fast: FastEncoder) -> None:
        """Seed the str keys met by this exact check and the one before (recurring keys),
        after vetting each: short, no URL, not secret-looking."""
        cfg = self._cfg
        # A seeded string costs 2 bytes of pickle for up to _SEED_MAX_LEN characters, so a
        # native pass proves the total-bytes budget only if that budget is this much larger
        # than the pass's size limit (it is with the defaults: 100 KB vs 64 MB).
        if cfg.fast_limit * _SEED_MAX_LEN > cfg.max_total_bytes * 2:
            return
        max_len = min(_SEED_MAX_LEN, cfg.max_str_len)
        prev = self._key_prev
        matcher = cfg.matcher
        now: dict[int, str] = {}
        recurring: list[str] = []
        for k in keys:
            if type(k) is str and len(k) <= max_len:
                now[id(k)] = k
                if prev.get(id(k)) is k and "://" not in k and not matcher.is_secret_key(k):
                    recurring.append(k)
        self._key_prev = now
        recurring.sort()
        fast.seed_strings(tuple(recurring[:_SEED_MAX_STRINGS]))


_SANITIZE_PICKLED = ObjectSanitizer.sanitize_pickled
_EXACT_EVERY = 16
_LEARN_MAX_KEYS = 256
_SEED_MAX_LEN = 64
_SEED_MAX_STRINGS = 64
_CONTAINER_TYPES = frozenset((dict, list, tuple, set, frozenset))
_is_container = _CONTAINER_TYPES.__contains__
_is_dict = frozenset((dict,)).__contains__
_MAX_KEYS = 4096


def _dict_keys(roots: list[Any]) -> set[Any] | None:
    """Every dict key inside natively validated (exact-type, acyclic) values, or None when
    there are more than ``_MAX_KEYS`` distinct ones. Breadth-first, a level at a time, with
    C-level steps only (``gc.get_referents``, ``map``, ``compress``)."""
    keys: set[Any] = set()
    level = roots
    types = list(map(type, level))
    while level:
        mask = list(map(_is_container, types))
        level = list(compress(level, mask))
        types = list(compress(types, mask))
        if not level:
            break
        keys.update(*compress(level, map(_is_dict, types)))
        if len(keys) > _MAX_KEYS:
            return None
        level = gc.get_referents(*level)
        types = list(map(type, level))
    return keys


def _secret_key(key: Any, matcher: Any) -> bool:
    t = type(key)
    if t is str:
        return bool(matcher.is_secret_key(key))
    if t is bytes:
        return bool(matcher.is_secret_key(key.decode("latin-1")))
    return False


def _has_secret_key(obj: Any, is_secret: Any) -> bool:
    """Exact scan of an already-validated clean value: is a value that could hold a secret
    under a secret-looking key? Only called when the byte pre-scan found such a word."""
    stack = [obj]
    pop = stack.pop
    push = stack.append
    while stack:
        cur = pop()
        t = type(cur)
        if t is dict:
            for k, v in cur.items():
                tv = type(v)
                tk = type(k)
                if (
                    (tk is str or tk is bytes)
                    and tv not in _NUMERIC
                    and is_secret(k if tk is str else k.decode("latin-1"))
                    and not numeric_only(v)
                ):
                    return True
                if tv is dict or tv in _CONTAINERS:
                    push(v)
        elif t in _CONTAINERS:
            for v in cur:
                tv = type(v)
                if tv is dict or tv in _CONTAINERS:
                    push(v)
    return False
