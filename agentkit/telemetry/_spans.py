"""Span handles and scopes: what ``Telemetry.*_span`` returns.

A scope is a small class-based context manager (cheaper than ``contextlib.contextmanager``)
that starts a span, makes it current in the OpenTelemetry context (a ``contextvars`` value, so
it follows anyio tasks and ``anyio.to_thread.run_sync`` threads), and ends it on exit. On
entry it yields a :class:`SpanHandle`; the handle lets the engine set the outcome of work it
caught itself (a failed agent becomes a FAILED result, not an exception that leaves the
``with``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import Any, Final, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

__all__ = [
    "ATTRIBUTE_ALIASES",
    "NOOP_SCOPE",
    "NOOP_SPAN",
    "LeafScope",
    "SpanHandle",
    "SpanScope",
    "error_type_of",
    "to_attribute_value",
]

#: short keyword names accepted by ``step_span(**attrs)`` and ``SpanHandle.set(**attrs)``
ATTRIBUTE_ALIASES: Final[Mapping[str, str]] = {
    "agent": "gen_ai.agent.name",
    "version": "gen_ai.agent.version",
    "session_id": "gen_ai.conversation.id",
    "run_id": "agentkit.run.id",
    "user_hash": "agentkit.user.hash",
    "layer": "agentkit.codec.layer",
    "payload_bytes": "agentkit.payload.bytes",
    "size": "agentkit.payload.bytes",
    "replaced": "agentkit.sanitizer.replaced",
    "lossy": "agentkit.sanitizer.lossy",
    "attempt": "agentkit.retry.attempt",
    "queue_wait": "agentkit.queue.wait",
    "error_type": "error.type",
}

#: longest string recorded as output content (characters); the rest is cut with a marker
MAX_CONTENT_CHARS: Final = 8192

# Statuses (AgentStatus / RunStatus values) and what they mean for a span.
_OK_STATUSES: Final = frozenset({"succeeded"})
_UNSET_STATUSES: Final = frozenset({"skipped", "queued", "running"})
_DEFAULT_ERROR_TYPE: Final[Mapping[str, str]] = {
    "timed_out": "timeout",
    "cancelled": "cancelled",
    "interrupted": "interrupted",
}


_SCALARS: Final = frozenset({str, bool, int, float})
_ALIAS_CACHE: dict[str, str] = dict(ATTRIBUTE_ALIASES)
_STATUS_OK: Final = Status(StatusCode.OK)
_INTERNAL: Final = SpanKind.INTERNAL
_attach = otel_context.attach
_detach = otel_context.detach
_set_span_in_context = trace.set_span_in_context
_time_ns = time.time_ns


def alias(key: str) -> str:
    """The attribute name for a short keyword (unknown keywords go under ``agentkit.``)."""
    full = ATTRIBUTE_ALIASES.get(key)
    if full is not None:
        return full
    return key if "." in key else f"agentkit.{key}"


def to_attribute_value(value: object) -> AttributeValue | None:
    """Coerce ``value`` to an OpenTelemetry attribute value, or None to drop it."""
    if value is None:
        return None
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        first = type(value[0])
        if first in (str, bool, int, float) and all(type(v) is first for v in value):
            return list(value)
    return str(getattr(value, "value", value))


def error_type_of(error: BaseException | str | None, status: str | None = None) -> str:
    """Low-cardinality ``error.type`` for an exception, an error type name or a status.

    Timeouts are ``timeout`` and cancellations ``cancelled`` whatever raised them (also for
    the ``timed_out``/``cancelled`` statuses and for type names ending in ``TimeoutError`` or
    ``CancelledError``); other exceptions give their qualified class name (builtins without
    a module prefix). Never the exception message: messages may carry user data.
    """
    if status in ("timed_out", "cancelled"):
        return _DEFAULT_ERROR_TYPE[status]
    if isinstance(error, str):
        if error.endswith("TimeoutError"):
            return "timeout"
        if error.endswith("CancelledError"):
            return "cancelled"
        return error or "_OTHER"
    if error is not None:
        if _is_cancellation(error):
            return "cancelled"
        if isinstance(error, TimeoutError):
            return "timeout"
        cls = type(error)
        if cls.__module__ == "builtins":
            return cls.__qualname__
        return f"{cls.__module__}.{cls.__qualname__}"
    if status is not None:
        return _DEFAULT_ERROR_TYPE.get(status, "_OTHER")
    return "_OTHER"


def _is_cancellation(error: BaseException) -> bool:
    # anyio's cancel exception on asyncio is asyncio.CancelledError; on trio it is Cancelled.
    return isinstance(error, asyncio.CancelledError) or type(error).__name__ == "Cancelled"


def _status_value(status: object) -> str:
    return str(getattr(status, "value", status))


def content_text(output: object) -> str:
    """Render clean output content as bounded text for a span attribute."""
    if isinstance(output, str):
        text = output
    else:
        try:
            text = json.dumps(output, default=str, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = str(output)
    if len(text) > MAX_CONTENT_CHARS:
        text = text[:MAX_CONTENT_CHARS] + "…[truncated]"
    return text


class SpanHandle:
    """The span a scope yields. This base class does nothing (the no-op handle).

    All methods are safe to call on the no-op handle, so engine code never branches on
    whether telemetry is on.
    """

    __slots__ = ()

    @property
    def is_recording(self) -> bool:
        """True when the span records what is set on it."""
        return False

    @property
    def context(self) -> Context | None:
        """An OpenTelemetry context with this span current, for work started elsewhere.

        Pass it as ``parent=`` to another span, or to :meth:`Telemetry.use_context` in a
        thread that did not inherit the caller's context. None for the no-op handle.
        """
        return None

    def set(self, **attrs: object) -> None:
        """Set attributes by short name (``layer=``, ``payload_bytes=``, ``replaced=``...)."""

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Set attributes by full name; None values are skipped."""

    def add_event(self, name: str, attributes: Mapping[str, object] | None = None) -> None:
        """Add an event to this span."""

    def set_outcome(self, status: object, error: BaseException | str | None = None) -> None:
        """Record how the work ended.

        Args:
            status: an ``AgentStatus`` or ``RunStatus`` (or its string value).
                ``succeeded`` sets status OK; ``skipped`` leaves it unset; every other
                terminal status sets ERROR with ``error.type``.
            error: the exception, or an error type name (e.g. ``ErrorInfo.type``), used
                for ``error.type``; defaults to ``timeout``/``cancelled``/``interrupted``
                for those statuses.
        """

    def set_error(self, error: BaseException | str) -> None:
        """Mark this span failed with ``error.type`` (no message: it may hold user data)."""

    def mark_retry(
        self, error: BaseException | str, *, next_attempt: int, delay_s: float | None = None
    ) -> None:
        """Mark this attempt failed and about to be retried (adds an ``agentkit.retry`` event)."""

    def record_output(self, output: object) -> None:
        """Record clean, redacted output content; ignored unless ``record_content`` is on."""


#: what a string field under a secret-looking key becomes in an event
REDACTED: Final = "***"
_secret_matcher: Any = None


_secret_keys: dict[str, bool] = {}


def _is_secret_key(key: str) -> bool:
    # Defence in depth: the engine passes clean, redacted event data, but a scalar field
    # under a secret-looking key ("token", "api_key") must never reach a span even if not.
    known = _secret_keys.get(key)
    if known is not None:
        return known
    global _secret_matcher
    if _secret_matcher is None:
        from agentkit.sanitizer.redact import SecretMatcher

        _secret_matcher = SecretMatcher()
    secret = bool(_secret_matcher.is_secret_key(key))
    if len(_secret_keys) < 4096:  # event field names are few; a flood just is not cached
        _secret_keys[key] = secret
    return secret


def event_attributes(
    attributes: Mapping[str, object] | None, record_content: bool
) -> dict[str, AttributeValue]:
    """Attributes of an agent emit as a span event.

    Numbers and booleans are kept; strings and other values only with ``record_content``
    (they may carry user content), otherwise only their key names are listed. Values under
    secret-looking keys (``token``, ``api_key``...) are always ``***``.
    """
    out: dict[str, AttributeValue] = {}
    if not attributes:
        return out
    withheld: list[str] = []
    for key, value in attributes.items():
        name = key if "." in key else f"agentkit.event.{key}"
        if _is_secret_key(key):
            out[name] = REDACTED
        elif isinstance(value, bool | int | float):
            out[name] = value
        elif record_content:
            converted = (
                to_attribute_value(value)
                if isinstance(value, str | list | tuple)
                else content_text(value)
            )
            if converted is not None:
                out[name] = converted
        else:
            withheld.append(key)
    if withheld:
        out["agentkit.event.withheld"] = sorted(withheld)
    return out


def _retry_attributes(
    error: BaseException | str, next_attempt: int, delay_s: float | None
) -> dict[str, AttributeValue]:
    """The attributes of an ``agentkit.retry`` span event."""
    attrs: dict[str, AttributeValue] = {
        "error.type": error_type_of(error),
        "agentkit.retry.next_attempt": next_attempt,
    }
    if delay_s is not None:
        attrs["agentkit.retry.delay"] = delay_s
    return attrs


class SpanScope(SpanHandle):
    """One span: a context manager that starts it, makes it current and ends it on exit.

    Steps with nothing inside that starts spans use :class:`LeafScope` instead.
    The scope is also the handle it yields (one object per span, not two). An exception
    leaving the ``with`` marks the span failed (``error.type``, status ERROR) unless
    :meth:`SpanHandle.set_outcome` was already called; the exception still propagates.
    """

    __slots__ = (
        "_attrs",
        "_content",
        "_name",
        "_open",
        "_outcome_set",
        "_parent",
        "_span",
        "_status_key",
        "_token",
        "_tracer",
    )

    _span: Span

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        attributes: dict[str, AttributeValue],
        *,
        parent: Context | None,
        record_content: bool,
        status_key: str | None,
    ) -> None:
        self._tracer = tracer
        self._open = False
        self._name = name
        self._attrs = attributes
        self._parent = parent
        self._content = record_content
        self._status_key = status_key
        self._outcome_set = False
        self._token: Token[Context] | None = None

    def __enter__(self) -> SpanHandle:
        parent = self._parent
        span = self._span = self._tracer.start_span(
            self._name, context=parent, kind=_INTERNAL, attributes=self._attrs or None
        )
        self._open = True
        self._token = _attach(_set_span_in_context(span, parent))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._open:
            return
        self._open = False
        token, self._token = self._token, None
        try:
            if token is not None:
                _detach(token)
        finally:
            if exc is not None and not self._outcome_set:
                self.set_error(exc)
            self._span.end()

    @property
    def span(self) -> Span:
        """The underlying OpenTelemetry span (inside the ``with`` only)."""
        return self._span

    @property
    def is_recording(self) -> bool:
        return self._span.is_recording()

    @property
    def context(self) -> Context | None:
        return _set_span_in_context(self._span, self._parent)

    def set(self, **attrs: object) -> None:
        out: dict[str, AttributeValue] = {}
        build_attributes(out, attrs)
        self._span.set_attributes(out)

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        out: dict[str, AttributeValue] = {}
        for key, value in attributes.items():
            converted = (
                cast("AttributeValue", value)
                if type(value) in _SCALARS
                else to_attribute_value(value)
            )
            if converted is not None:
                out[key] = converted
        self._span.set_attributes(out)

    def add_event(self, name: str, attributes: Mapping[str, object] | None = None) -> None:
        self._span.add_event(name, event_attributes(attributes, self._content))

    def set_outcome(self, status: object, error: BaseException | str | None = None) -> None:
        value = status if type(status) is str else _status_value(status)
        self._outcome_set = True
        key = self._status_key
        if value in _OK_STATUSES:
            if key is not None:
                self._span.set_attribute(key, value)
            self._span.set_status(_STATUS_OK)
            return
        if value in _UNSET_STATUSES:
            if key is not None:
                self._span.set_attribute(key, value)
            return
        etype = error_type_of(error, value)
        attrs: dict[str, AttributeValue] = {"error.type": etype}
        if key is not None:
            attrs[key] = value
        self._span.set_attributes(attrs)
        self._span.set_status(Status(StatusCode.ERROR, etype))

    def set_error(self, error: BaseException | str) -> None:
        self._outcome_set = True
        etype = error_type_of(error)
        self._span.set_attribute("error.type", etype)
        self._span.set_status(Status(StatusCode.ERROR, etype))

    def mark_retry(
        self, error: BaseException | str, *, next_attempt: int, delay_s: float | None = None
    ) -> None:
        self.set_error(error)
        self._span.set_attribute("agentkit.retry.will_retry", True)
        self._span.add_event("agentkit.retry", _retry_attributes(error, next_attempt, delay_s))

    def record_output(self, output: object) -> None:
        if self._content:
            self._span.set_attribute("agentkit.output", content_text(output))


class LeafScope(SpanHandle):
    """A step span recorded when its work is done: one ``start_span`` + ``end`` on exit.

    For steps with nothing inside that starts spans (``agentkit.clean_result``,
    ``agentkit.codec.encode``): the span is never made current, so it need not exist while
    the work runs. On entry the scope only reads the clock; attributes, status and events set
    on the handle are kept, and on exit the span is started with the entry time and all its
    attributes at once, then ended with the exit time. Against a live span this saves the
    SDK's separate attribute updates (a lock and a validation pass each) and the span
    processor sees the same finished span. A span started inside the ``with`` parents to the
    enclosing span, as for any step that is not current.
    """

    __slots__ = (
        "_attrs",
        "_events",
        "_name",
        "_outcome_set",
        "_parent",
        "_start",
        "_status",
        "_tracer",
    )

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        attributes: dict[str, AttributeValue],
        parent: Context,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attrs = attributes
        self._parent = parent
        self._start = 0
        self._outcome_set = False
        self._status: Status | None = None
        self._events: list[tuple[str, dict[str, AttributeValue], int]] | None = None

    def __enter__(self) -> SpanHandle:
        self._start = _time_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end = _time_ns()
        if exc is not None and not self._outcome_set:
            self.set_error(exc)
        span = self._tracer.start_span(
            self._name,
            context=self._parent,
            kind=_INTERNAL,
            attributes=self._attrs or None,
            start_time=self._start,
        )
        if self._status is not None:
            span.set_status(self._status)
        if self._events is not None:
            for name, attrs, timestamp in self._events:
                span.add_event(name, attrs, timestamp)
        span.end(end)

    @property
    def is_recording(self) -> bool:
        return True

    @property
    def context(self) -> Context | None:
        """The enclosing context: this span is never current (see the class docstring)."""
        return self._parent

    def set(self, **attrs: object) -> None:
        build_attributes(self._attrs, attrs)

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        for key, value in attributes.items():
            converted = (
                cast("AttributeValue", value)
                if type(value) in _SCALARS
                else to_attribute_value(value)
            )
            if converted is not None:
                self._attrs[key] = converted

    def add_event(self, name: str, attributes: Mapping[str, object] | None = None) -> None:
        if self._events is None:
            self._events = []
        self._events.append((name, event_attributes(attributes, False), _time_ns()))

    def set_outcome(self, status: object, error: BaseException | str | None = None) -> None:
        value = status if type(status) is str else _status_value(status)
        self._outcome_set = True
        if value in _OK_STATUSES:
            self._set_status(_STATUS_OK)
        elif value not in _UNSET_STATUSES:
            self._fail(error_type_of(error, value))

    def set_error(self, error: BaseException | str) -> None:
        self._outcome_set = True
        self._fail(error_type_of(error))

    def _fail(self, etype: str) -> None:
        self._attrs["error.type"] = etype
        self._set_status(Status(StatusCode.ERROR, etype))

    def _set_status(self, status: Status) -> None:
        if self._status is None or self._status.status_code is not StatusCode.OK:
            self._status = status  # as the SDK: once OK, a status stays OK

    def mark_retry(
        self, error: BaseException | str, *, next_attempt: int, delay_s: float | None = None
    ) -> None:
        self.set_error(error)
        self._attrs["agentkit.retry.will_retry"] = True
        if self._events is None:
            self._events = []
        attrs = _retry_attributes(error, next_attempt, delay_s)
        self._events.append(("agentkit.retry", attrs, _time_ns()))


class _NoopScope:
    """The shared, stateless scope of the no-op telemetry: enter and exit do nothing."""

    __slots__ = ()

    def __enter__(self) -> SpanHandle:
        return NOOP_SPAN

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


NOOP_SPAN: Final = SpanHandle()
NOOP_SCOPE: Final = _NoopScope()


def build_attributes(base: dict[str, AttributeValue], extra: Mapping[str, Any]) -> None:
    """Add ``extra`` (full names or short aliases) to ``base``, skipping None values."""
    for key, value in extra.items():
        converted = value if type(value) in _SCALARS else to_attribute_value(value)
        if converted is not None:
            name = _ALIAS_CACHE.get(key)
            if name is None:
                name = alias(key)
                if len(_ALIAS_CACHE) < 1024:
                    _ALIAS_CACHE[key] = name
            base[name] = converted
