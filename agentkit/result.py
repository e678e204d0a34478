"""SerializableAgentResult: the only form in which an agent's result leaves the agent.

``from_raw`` calls the class's :meth:`SerializableAgentResult.clean_result` hook, then
*always* sanitizes what the hook returned, so a buggy hook cannot leak a live object, and a
hook that raises gives a FAILED result with a structured :class:`ErrorInfo` instead of an
exception. Outputs are plain clean values; :meth:`SerializableAgentResult.output_as` turns
them back into the reader's own types without importing anything named in the payload.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import traceback
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast
from uuid import UUID

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from agentkit._fields_set import SharedFieldsSet
from agentkit.report import ReportSummary, SanitizeReport
from agentkit.status import AgentStatus

if TYPE_CHECKING:
    from agentkit.sanitizer import ObjectSanitizer

__all__ = ["SCHEMA_VERSION", "ErrorInfo", "SerializableAgentResult"]

SCHEMA_VERSION = 1
T = TypeVar("T")

_MAX_CHAIN = 16
_MAX_TRACEBACK_CHARS = 20_000
_MAX_MESSAGE_CHARS = 4_000
_EMPTY_SUMMARY = ReportSummary()
_STATUS_VALUES: dict[AgentStatus, str] = {s: s.value for s in AgentStatus}


def _qualname(tp: type) -> str:
    module = getattr(tp, "__module__", None) or "builtins"
    return f"{module}.{getattr(tp, '__qualname__', tp.__name__)}"


def _redact(text: str) -> str:
    # error text is stored like any output: credentials inside URLs must not survive
    from agentkit.sanitizer.redact import SecretMatcher

    return SecretMatcher.redact_url_credentials(text) or text


def _safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a hostile __str__ must not break error reporting
        text = f"<unprintable {_qualname(type(exc))}>"
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "…"
    return _redact(text)


# read through BaseException's own descriptors: a hostile __getattribute__ is never run
_CAUSE = BaseException.__dict__["__cause__"].__get__
_CONTEXT = BaseException.__dict__["__context__"].__get__
_SUPPRESS = BaseException.__dict__["__suppress_context__"].__get__


def _next_link(exc: BaseException) -> BaseException | None:
    nxt: BaseException | None = _CAUSE(exc)
    if nxt is None and not _SUPPRESS(exc):
        nxt = _CONTEXT(exc)
    return nxt


def _traceback_text(exc: BaseException) -> str:
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))
    except Exception:
        text = f"{_qualname(type(exc))}: {_safe_str(exc)}\n"
    if len(text) > _MAX_TRACEBACK_CHARS:  # keep the innermost frames: they say where it broke
        text = "…\n" + text[-_MAX_TRACEBACK_CHARS:]
    return _redact(text)


class ErrorInfo(BaseModel):
    """A structured, serializable description of an exception (never the exception itself).

    Attributes:
        type: qualified name of the exception class (``builtins.ValueError``).
        message: ``str(exc)``, bounded.
        traceback: the formatted traceback of this exception alone (no chain), bounded.
        cause: the exception this one was raised from (``__cause__``, or the implicit
            ``__context__`` unless suppressed), recursively; ``None`` at the end of the chain.
        note: where agentkit caught it, e.g. ``"clean_result hook raised"``.
    """

    model_config = ConfigDict(frozen=True)

    type: str
    message: str = ""
    traceback: str = ""
    cause: ErrorInfo | None = None
    note: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, note: str | None = None) -> ErrorInfo:
        """Describe ``exc`` and its cause chain (cycle-safe, at most 16 links)."""
        chain: list[BaseException] = []
        seen: set[int] = set()
        cur: BaseException | None = exc
        while cur is not None and id(cur) not in seen and len(chain) < _MAX_CHAIN:
            seen.add(id(cur))
            chain.append(cur)
            cur = _next_link(cur)
        info: ErrorInfo | None = None
        for link in reversed(chain):
            info = cls(
                type=_qualname(type(link)),
                message=_safe_str(link),
                traceback=_traceback_text(link),
                cause=info,
            )
        assert info is not None
        return info.model_copy(update={"note": note}) if note else info

    @property
    def chain(self) -> list[ErrorInfo]:
        """This error followed by its causes, outermost first."""
        out: list[ErrorInfo] = []
        cur: ErrorInfo | None = self
        while cur is not None:
            out.append(cur)
            cur = cur.cause
        return out


_default_lock = threading.Lock()
_default_sanitizer: list[ObjectSanitizer] = []


def _get_default_sanitizer() -> ObjectSanitizer:
    if not _default_sanitizer:
        with _default_lock:
            if not _default_sanitizer:
                from agentkit.sanitizer import ObjectSanitizer

                _default_sanitizer.append(ObjectSanitizer())
    return _default_sanitizer[0]


def _check_str(name: str, value: object) -> str:
    if type(value) is not str or not value:
        raise TypeError(f"{name} must be a non-empty str, got {value!r}")
    return value


def _check_dt(name: str, value: object) -> datetime | None:
    if value is not None and type(value) is not datetime:
        raise TypeError(f"{name} must be a datetime or None, got {type(value).__name__}")
    return value


@lru_cache(maxsize=256)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


class SerializableAgentResult(BaseModel):
    """One agent's result in a run: metadata, the clean output, and what cleaning changed.

    Subclass it and override :meth:`clean_result` to shape your agent's output; set the
    subclass as your agent's ``result_type``. Instances are immutable; treat ``output`` as
    read-only too: the codec's pickle layer writes the output as ``from_raw`` sanitized it.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    agent: str
    agent_version: str = "1"
    user_id: str
    run_id: str
    session_id: str | None = None
    status: AgentStatus = AgentStatus.SUCCEEDED
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    attempt: int = Field(default=1, ge=1)
    output: Any = Field(default=None, description="the clean output (see the clean domain)")
    error: ErrorInfo | None = None
    report: ReportSummary = Field(default_factory=ReportSummary)

    # (output object, its pickle) as made by sanitize_pickled; the codec reuses the bytes
    # while ``output`` is still that very object.
    _output_pickle: tuple[Any, bytes] | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        # the private pickle cache is not part of a result's value
        if not isinstance(other, BaseModel):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == other.__pydantic_extra__
        )

    def __getstate__(self) -> dict[Any, Any]:
        # pickling a result (e.g. across processes) must not carry the output twice
        state = super().__getstate__()
        private = state.get("__pydantic_private__")
        if private and private.get("_output_pickle") is not None:
            state = {**state, "__pydantic_private__": {**private, "_output_pickle": None}}
        return state

    # --- the hook -----------------------------------------------------------------------

    @classmethod
    def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
        """Shape the raw return value of ``run`` into this result's output.

        Override in a subclass to pick, rename or summarise what your agent returned. What
        you return is sanitized afterwards in any case, so returning something that still
        holds a live object (a client, a lock) is safe: it becomes a placeholder and is
        reported. Raising here gives a FAILED result, never an exception.

        Args:
            raw: what the agent's ``run`` returned.
            sanitizer: the sanitizer ``from_raw`` will apply; use it for parts you want to
                clean yourself.

        Returns:
            The value to store as ``output``. The default returns ``raw`` unchanged.
        """
        return raw

    # --- constructors -------------------------------------------------------------------

    @classmethod
    def from_raw(
        cls,
        raw: Any,
        *,
        agent: str,
        agent_version: str = "1",
        user_id: str,
        run_id: str,
        session_id: str | None = None,
        status: AgentStatus = AgentStatus.SUCCEEDED,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        attempt: int = 1,
        sanitizer: ObjectSanitizer | None = None,
    ) -> Self:
        """Build the result of an agent run from what ``run`` returned (or raised).

        Calls :meth:`clean_result`, then sanitizes its return value. An exception as ``raw``,
        or raised by the hook, gives a result with ``status`` FAILED (or the given non-success
        status) and a structured ``error``.

        Raises:
            TypeError: an id or timestamp argument has the wrong type (a caller bug).
        """
        status = AgentStatus(status)
        _check_str("agent", agent)
        _check_str("agent_version", agent_version)
        _check_str("user_id", user_id)
        _check_str("run_id", run_id)
        if session_id is not None:
            _check_str("session_id", session_id)
        _check_dt("started_at", started_at)
        _check_dt("finished_at", finished_at)
        if type(attempt) is not int or attempt < 1:
            raise TypeError(f"attempt must be an int >= 1, got {attempt!r}")
        meta: dict[str, Any] = {
            "agent": agent,
            "agent_version": agent_version,
            "user_id": user_id,
            "run_id": run_id,
            "session_id": session_id,
            "started_at": started_at,
            "finished_at": finished_at,
            "attempt": attempt,
        }
        return cls._clean_raw(raw, meta, status, sanitizer, keep_pickle=True)[0]

    @classmethod
    def _clean_raw(
        cls,
        raw: Any,
        meta: dict[str, Any],
        status: AgentStatus = AgentStatus.SUCCEEDED,
        sanitizer: ObjectSanitizer | None = None,
        *,
        keep_pickle: bool = False,
    ) -> tuple[Self, bytes | None]:
        """:meth:`from_raw` for metadata already checked (``meta`` holds exactly from_raw's
        id, time and attempt arguments and is used as it is, not copied), and the pickle of
        the clean output the sanitizer made (None when there is none to reuse). Executors
        pass it to the codec themselves
        (``keep_pickle=False``), so the result does not hold it for its whole life."""
        if isinstance(raw, BaseException):
            error = ErrorInfo.from_exception(raw)
            failed = AgentStatus.FAILED if status is AgentStatus.SUCCEEDED else status
            return cls._build(meta, failed, None, error, _EMPTY_SUMMARY, None), None
        san = sanitizer if sanitizer is not None else _get_default_sanitizer()
        try:
            shaped = cls.clean_result(raw, san)
        except Exception as exc:
            error = ErrorInfo.from_exception(exc, note=f"{cls.__qualname__}.clean_result raised")
            return cls._build(meta, AgentStatus.FAILED, None, error, _EMPTY_SUMMARY, None), None
        try:
            clean, report, pickled = san._sanitize_for_result(shaped)
        except Exception as exc:  # the sanitizer promises not to raise; never trust it blindly
            error = ErrorInfo.from_exception(exc, note="the sanitizer raised")
            return cls._build(meta, AgentStatus.FAILED, None, error, _EMPTY_SUMMARY, None), None
        # a keep_picklable output may hold any picklable object: the codec decides how to pickle
        reuse = None if _keeps_live_objects(san) else pickled
        kept = reuse if keep_pickle else None
        return cls._build(meta, status, clean, None, _summary(report), kept), reuse

    @classmethod
    def from_error(
        cls,
        error: BaseException | ErrorInfo,
        *,
        status: AgentStatus = AgentStatus.FAILED,
        agent: str,
        agent_version: str = "1",
        user_id: str,
        run_id: str,
        session_id: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        attempt: int = 1,
    ) -> Self:
        """A result without output: failed, timed out, cancelled, skipped or interrupted.

        Args:
            error: the exception (described with its cause chain) or a ready ErrorInfo.
            status: the outcome; must not be SUCCEEDED.

        Raises:
            ValueError: ``status`` is SUCCEEDED.
        """
        status = AgentStatus(status)
        if status is AgentStatus.SUCCEEDED:
            raise ValueError("from_error needs a non-success status; use from_raw for output")
        info = error if isinstance(error, ErrorInfo) else ErrorInfo.from_exception(error)
        return cls.model_validate(
            {
                "agent": agent,
                "agent_version": agent_version,
                "user_id": user_id,
                "run_id": run_id,
                "session_id": session_id,
                "status": status,
                "started_at": started_at,
                "finished_at": finished_at,
                "duration_s": _duration(started_at, finished_at),
                "attempt": attempt,
                "error": info,
            }
        )

    @classmethod
    def _build(
        cls,
        meta: dict[str, Any],
        status: AgentStatus,
        output: Any,
        error: ErrorInfo | None,
        report: ReportSummary,
        pickled: bytes | None,
    ) -> Self:
        # Inputs were checked by the caller. This is model_construct without its per-field
        # default handling (every base field is given), which is measurable on the hot path.
        if _extra_fields(cls):
            result = cls.model_construct(
                schema_version=SCHEMA_VERSION,
                status=status,
                duration_s=_duration(meta["started_at"], meta["finished_at"]),
                output=output,
                error=error,
                report=report,
                **meta,
            )
            if pickled is not None:
                result._output_pickle = (output, pickled)
            return cast(Self, result)
        result = cls.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(
            result,
            "__dict__",
            {
                "schema_version": SCHEMA_VERSION,
                "agent": meta["agent"],
                "agent_version": meta["agent_version"],
                "user_id": meta["user_id"],
                "run_id": meta["run_id"],
                "session_id": meta["session_id"],
                "status": status,
                "started_at": meta["started_at"],
                "finished_at": meta["finished_at"],
                "duration_s": _duration(meta["started_at"], meta["finished_at"]),
                "attempt": meta["attempt"],
                "output": output,
                "error": error,
                "report": report,
            },
        )
        setattr_(result, "__pydantic_fields_set__", _ALL_FIELDS_SET)
        setattr_(result, "__pydantic_extra__", None)
        setattr_(
            result,
            "__pydantic_private__",
            {"_output_pickle": None if pickled is None else (output, pickled)},
        )
        return result

    # --- reading ------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when the stage succeeded."""
        return self.status is AgentStatus.SUCCEEDED

    def output_as(self, tp: type[T]) -> T:
        """Rehydrate the output into ``tp``: a pydantic model, dataclass, TypedDict, or any
        type pydantic's ``TypeAdapter`` accepts (``list[Model]``, ``dict[str, int]`` ...).

        The reader's type decides; nothing named in the payload is imported.

        Raises:
            pydantic.ValidationError: the output does not fit ``tp``.
        """
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp.model_validate(self.output)
        result: T = _adapter(cast(Any, tp)).validate_python(self.output)
        return result

    def output_json(self) -> str:
        """The output as standard JSON text, for store columns (JSONB) and queries.

        Lossy by design: datetimes, dates and times become ISO strings, UUIDs and Decimals
        strings, bytes base64, tuples and sets arrays, non-string keys strings, NaN and
        infinities ``null``, NUL characters and lone surrogates U+FFFD (PostgreSQL rejects
        both). Use the codec for an exact round trip.
        """
        try:
            text = pydantic_core.to_json(
                self.output, inf_nan_mode="null", bytes_mode="base64"
            ).decode("utf-8")
        except Exception:  # lone surrogates or an object outside the clean domain
            return _plain_json(self.output)
        if "\\u0000" in text:
            return _plain_json(self.output)
        return text

    # --- codec support ------------------------------------------------------------------

    def _codec_meta(self) -> dict[str, Any]:
        """Everything but the output, as clean values (the codec stores it next to it)."""
        d = self.__dict__
        status = d["status"]
        error = d["error"]
        report = d["report"]
        meta: dict[str, Any] = {
            "schema_version": d["schema_version"],
            "agent": d["agent"],
            "agent_version": d["agent_version"],
            "user_id": d["user_id"],
            "run_id": d["run_id"],
            "session_id": d["session_id"],
            "status": _STATUS_VALUES.get(status) or status.value,
            "started_at": d["started_at"],
            "finished_at": d["finished_at"],
            "duration_s": d["duration_s"],
            "attempt": d["attempt"],
            "error": None if error is None else error.model_dump(mode="json"),
            "report": None
            if report is _EMPTY_SUMMARY or (report.total == 0 and not report.lossy)
            else (report.model_dump(mode="json")),
        }
        extra = _extra_fields(type(self))
        if extra:
            meta["extra"] = self.model_dump(mode="json", include=set(extra))
        return meta

    def _output_pickle_bytes(self) -> bytes | None:
        """The output's pickle from sanitize_pickled, if ``output`` is still that object."""
        private = self.__pydantic_private__
        cached = None if private is None else private.get("_output_pickle")
        if cached is not None and cached[0] is self.__dict__["output"]:
            return cast(bytes, cached[1])
        return None

    @classmethod
    def _from_codec(cls, meta: dict[str, Any], output: Any) -> Self:
        """Rebuild a result from :meth:`_codec_meta` output and the decoded output.

        Raises:
            pydantic.ValidationError: the metadata is malformed.
        """
        if type(meta) is not dict:
            raise TypeError("result metadata must be a dict")
        data = {k: v for k, v in meta.items() if k != "extra"}
        extra = meta.get("extra")
        if type(extra) is dict:
            data.update(extra)
        if data.get("report") is None:
            data.pop("report", None)
        data["output"] = output
        return cls.model_validate(data)


_extra_cache: dict[type, tuple[str, ...]] = {}
_FIELD_ORDER = tuple(SerializableAgentResult.model_fields)
_BASE_FIELDS = frozenset(_FIELD_ORDER)
_ALL_FIELDS_SET = SharedFieldsSet(_FIELD_ORDER)


def _extra_fields(cls: type[SerializableAgentResult]) -> tuple[str, ...]:
    extra = _extra_cache.get(cls)
    if extra is None:
        extra = tuple(n for n in cls.model_fields if n not in _BASE_FIELDS)
        _extra_cache[cls] = extra
    return extra


def _keeps_live_objects(sanitizer: Any) -> bool:
    config = getattr(sanitizer, "config", None)
    return bool(getattr(config, "keep_picklable", False))


def _summary(report: SanitizeReport | None) -> ReportSummary:
    if report is None or not report.counts:
        return _EMPTY_SUMMARY
    return report.summary()


def _duration(started: datetime | None, finished: datetime | None) -> float | None:
    if started is None or finished is None:
        return None
    try:
        return (finished - started).total_seconds()
    except TypeError:  # naive and aware mixed: no meaningful duration
        return None


# --- lossy plain JSON (output_json fallback) ------------------------------------------------


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(s: str) -> str:
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = _SURROGATE.sub("\ufffd", s)
    return s


def _plain(o: Any, depth: int = 0) -> Any:
    t = type(o)
    if t is str:
        return _text(o)
    if o is None or t is bool or t is int:
        return o
    if t is float:
        return o if math.isfinite(o) else None
    if depth > 200:
        return "<too deep>"
    if t is dict:
        return {_plain_key(k): _plain(v, depth + 1) for k, v in o.items()}
    if t is list or t is tuple or t is set or t is frozenset:
        return [_plain(v, depth + 1) for v in o]
    if t is datetime or t is date or t is time:
        return o.isoformat()
    if t is timedelta:
        return o.total_seconds()
    if t is UUID or t is Decimal:
        return str(o)
    if t is bytes:
        return base64.b64encode(o).decode("ascii")
    return f"<{_qualname(t)}>"


def _plain_key(k: Any) -> str:
    if type(k) is str:
        return _text(k)
    plain = _plain(k)
    return plain if type(plain) is str else json.dumps(plain, ensure_ascii=False)


def _plain_json(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, allow_nan=False)
