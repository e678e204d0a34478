"""The fast path: one native pickling pass that both proves a value clean and encodes it.

CPython's C pickler never calls ``reducer_override`` for exact None, bool, int, float, str,
bytes, dict, list, tuple, set and frozenset; for every other object it calls it first. Our
override lets the few other clean types through (datetime, date, time, timedelta, timezone,
UUID, Decimal) and raises for anything else, so a clean structure is validated and pickled
in a single C-level pass and any other value falls back to the walk.

* ``fast`` mode (no memo) makes cycles raise instead of being encoded; a prologue seeds the
  memo with the few classes clean values reduce to, so they cost a memo reference each.
* Without a memo, a tzinfo is reduced again for every datetime that carries it. A tzinfo
  object seen in two consecutive passes (a module constant, a cached ZoneInfo) is added to
  the seeds, so later passes write it as a memo reference too. Each pass uses one snapshot
  of the seeds (:class:`Seeds`), and its bytes are finished with that snapshot's prologue.
* Protocol 4 has no bytearray opcode, so a bytearray reaches the override and is rejected;
  the header is then stamped as protocol 5 (the opcode streams are identical otherwise).
* Output goes to a sink that raises once a byte limit is crossed, so an oversized value
  costs at most that limit (the C pickler flushes every 64 KiB frame to the sink).
"""

from __future__ import annotations

import io
import pickle
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["FAST_INSTANCE_TYPES", "NATIVE_TYPES", "FastEncoder", "Seeds"]

#: non-container clean types whose own reduction is trusted
FAST_INSTANCE_TYPES: tuple[type, ...] = (
    ZoneInfo,
    datetime,
    date,
    time,
    timedelta,
    timezone,
    uuid.UUID,
    Decimal,
)

#: exact types the C pickler encodes without consulting reducer_override
NATIVE_TYPES: tuple[type, ...] = (
    type(None),
    bool,
    int,
    float,
    str,
    bytes,
    dict,
    list,
    tuple,
    set,
    frozenset,
    bytearray,
)

_UUID = uuid.UUID
_UUID_INT = uuid.UUID.__dict__["int"].__get__
_ZONE_KEY = ZoneInfo.__dict__["key"].__get__
_TZ_ARGS = timezone.__getinitargs__  # type: ignore[attr-defined]


class _Reject(Exception):
    """Internal: the value is not in the fast-path allow-list."""


class _TooBig(Exception):
    """Internal: the pickle crossed the size limit."""


class _Sink:
    __slots__ = ("chunks", "limit", "size")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit

    def write(self, data: Any) -> int:
        n = len(data)
        self.size += n
        if self.size > self.limit:
            raise _TooBig
        self.chunks.append(data if type(data) is bytes else bytes(data))
        return n


#: tzinfo objects kept as seeds at most (each costs its pickle in every prologue)
_MAX_TZ_SEEDS = 8


class Seeds:
    """One immutable snapshot of the memo seeds: the prologue bytes and the matching memo."""

    __slots__ = ("memo", "prologue", "strings", "tzinfos")

    def __init__(
        self,
        prologue: bytes,
        memo: dict[int, tuple[int, Any]],
        tzinfos: tuple[Any, ...],
        strings: tuple[str, ...] = (),
    ) -> None:
        self.prologue = prologue
        self.memo = memo
        self.tzinfos = tzinfos
        #: strings the caller vetted; a pass writes them as memo references, so they are
        #: absent from its body (see :meth:`FastEncoder.seed_strings`)
        self.strings = strings


def _prologue(
    seeds: tuple[Any, ...], pickler: type[pickle.Pickler] = pickle.Pickler
) -> tuple[bytes, dict[int, tuple[int, Any]]]:
    """Pickle ops that put ``seeds`` into the unpickler's memo, and the matching memo.

    Fast mode never adds to the memo but still reads it, so seeding the classes the allowed
    types reduce to (and ``timezone.utc``) makes each of them a two-byte memo reference
    instead of a full global lookup per occurrence.
    """
    buf = io.BytesIO()
    p = pickler(buf, 4)
    p.dump(seeds)
    memo = p.memo.copy()
    data = buf.getvalue()
    # drop PROTO, and turn the final STOP into POP (same length, so the frame stays valid)
    return data[2:-1] + pickle.POP, memo


class FastEncoder:
    """A native validator-encoder for one allow-list of instance types.

    Args:
        instance_types: the non-container types let through (a subset of
            :data:`FAST_INSTANCE_TYPES`).
    """

    __slots__ = ("_base", "_pickler", "_rejected", "_seeds", "_tz_now", "_tz_prev")

    def __init__(self, instance_types: Iterable[type] = FAST_INSTANCE_TYPES) -> None:
        allowed = tuple(instance_types)
        instance_ids = frozenset(
            id(t) for t in allowed if t is not _UUID and t is not ZoneInfo and t is not timezone
        )
        class_ids = frozenset(id(t) for t in allowed)
        uuid_ok = any(t is _UUID for t in allowed)
        zone_ok = any(t is ZoneInfo for t in allowed)
        tz_ok = any(t is timezone for t in allowed)
        # timezone's own reduction goes through tzinfo.__reduce__ (slow); timezones are few
        tz_reductions: dict[int, tuple[timezone, tuple[Any, ...]]] = {}
        # tzinfo objects accepted in the current pass, by identity (candidates for seeding)
        tz_now: dict[int, Any] = {}
        self._tz_now = tz_now
        self._tz_prev: dict[int, Any] = {}
        type_id = id(type)
        reject = _Reject
        # id of the last object the override refused (a hint for the walk; 0 after success)
        rejected = [0]
        self._rejected = rejected

        class _Pickler(pickle.Pickler):
            def reducer_override(self, obj: Any) -> Any:
                tid = id(type(obj))
                if tid in instance_ids:
                    return NotImplemented
                if tid == type_id and id(obj) in class_ids:
                    return NotImplemented
                if uuid_ok and type(obj) is _UUID:
                    return _UUID, (None, None, None, None, _UUID_INT(obj))
                if tz_ok and type(obj) is timezone:
                    # keyed by identity: equal timezones may differ in name
                    if len(tz_now) < 64:
                        tz_now[id(obj)] = obj
                    hit = tz_reductions.get(id(obj))
                    if hit is not None and hit[0] is obj:
                        return hit[1]
                    if len(tz_reductions) > 256:
                        tz_reductions.clear()
                    red = (timezone, _TZ_ARGS(obj))
                    tz_reductions[id(obj)] = (obj, red)
                    return red
                if zone_ok and type(obj) is ZoneInfo:
                    key = _ZONE_KEY(obj)
                    if type(key) is str:
                        if len(tz_now) < 64:
                            tz_now[id(obj)] = obj
                        return ZoneInfo, (key,)
                rejected[0] = id(obj)
                raise reject

        base: tuple[Any, ...] = allowed
        if tz_ok:
            base = (*allowed, UTC)
        self._base = base
        self._pickler = _Pickler
        self._seeds = self._make_seeds((), ())

    def _make_seeds(self, tzinfos: tuple[Any, ...], strings: tuple[str, ...]) -> Seeds:
        prologue, memo = _prologue((*self._base, *tzinfos, *strings), self._pickler)
        self._tz_now.clear()  # the prologue's own pass is no evidence of reuse
        return Seeds(prologue, memo, tzinfos, strings)

    def seed_strings(self, strings: tuple[str, ...]) -> None:
        """Replace the seeded strings (exact ``str`` objects, matched by identity).

        A seeded string never appears in a pass's body, so the caller must have checked
        whatever it would otherwise look for in the body (secret words, URL credentials).
        """
        seeds = self._seeds
        if len(strings) == len(seeds.strings) and all(
            a is b for a, b in zip(strings, seeds.strings, strict=True)
        ):
            return
        self._seeds = self._make_seeds(seeds.tzinfos, strings)

    def last_rejected(self) -> int:
        """Id of the object that made the latest failed pass fail, if it was refused (a hint:
        passes in other threads may overwrite it)."""
        return self._rejected[0]

    @property
    def seeds(self) -> Seeds:
        """The current snapshot of the memo seeds."""
        return self._seeds

    def end_pass(self) -> None:
        """Seed tzinfo objects met in this pass and the one before (reused objects)."""
        now = self._tz_now
        if not now:
            self._tz_prev = {}
            return
        prev = self._tz_prev
        seeds = self._seeds
        have = {id(t) for t in seeds.tzinfos}
        fresh = [obj for key, obj in list(now.items()) if key not in have and prev.get(key) is obj]
        self._tz_prev = dict(now)
        now.clear()
        if fresh:
            kept = (*seeds.tzinfos, *fresh)[-_MAX_TZ_SEEDS:]
            self._seeds = self._make_seeds(kept, seeds.strings)

    def encode(self, obj: Any, limit: int, seeds: Seeds | None = None) -> bytes | None:
        """The body of a pickle of ``obj`` if it is entirely clean, acyclic and fits ``limit``.

        Returns None otherwise. Pass the body, with the same ``seeds`` (default: the current
        ones, read once by the caller), to :meth:`finish` for loadable bytes.
        """
        if seeds is None:
            seeds = self._seeds
        sink = _Sink(limit)
        p = self._pickler(sink, 4)
        p.memo = seeds.memo
        p.fast = True
        self._rejected[0] = 0
        try:
            p.dump(obj)
        except Exception:  # rejected, too big, cyclic, too deep: the walk decides
            self.end_pass()
            return None
        self.end_pass()
        chunks = sink.chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def session(self, seeds: Seeds) -> Callable[[Any, int], bytes | None]:
        """A reusable :meth:`encode` for many values in one walk (one pickler; not shared)."""
        sink = _Sink(0)
        cls = self._pickler
        memo = seeds.memo
        state: list[Any] = [None]
        rejected = self._rejected

        def encode(obj: Any, limit: int) -> bytes | None:
            p = state[0]
            if p is None:
                p = state[0] = cls(sink, 4)
                p.memo = memo
                p.fast = True
            sink.chunks = []
            sink.size = 0
            sink.limit = limit
            rejected[0] = 0
            try:
                p.dump(obj)
            except Exception:
                state[0] = None  # a failed dump may leave the pickler mid-state
                return None
            chunks = sink.chunks
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)

        return encode

    def encode_with(self, obj: Any, pieces: list[tuple[Any, bytes]], seeds: Seeds) -> bytes | None:
        """Loadable bytes of ``obj`` whose subtrees in ``pieces`` are already encoded.

        Each piece's body is replayed into the unpickler's memo (its STOP becomes MEMOIZE,
        then POP), and the pickler is told about it, so the main pass writes a memo reference
        for it instead of encoding it again. ``seeds`` must be the ones the pieces were
        encoded with. Returns None if the main pass fails.
        """
        memo = dict(seeds.memo)
        base = len(memo)
        parts: list[Any] = [b"\x80\x05", seeds.prologue]
        for i, (sub, body) in enumerate(pieces):
            memo[id(sub)] = (base + i, sub)
            parts.append(memoryview(body)[2:-1])
            parts.append(b"\x940")  # MEMOIZE (in STOP's place within the frame), POP
        sink = _Sink(1 << 62)
        p = self._pickler(sink, 4)
        p.memo = memo
        p.fast = True
        try:
            p.dump(obj)
        except Exception:
            return None
        main = b"".join(sink.chunks)
        parts.append(memoryview(main)[2:])
        return b"".join(parts)

    @staticmethod
    def finish(body: bytes, seeds: Seeds) -> bytes:
        """Protocol-5 pickle bytes: header, the seeds' memo prologue, then the body's opcodes."""
        return b"".join((b"\x80\x05", seeds.prologue, memoryview(body)[2:]))
