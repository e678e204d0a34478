"""The telemetry facade the engine calls: spans, events and metrics of agent runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from importlib import metadata
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from agentkit.telemetry._metrics import CIRCUIT_STATES, Instruments
from agentkit.telemetry._spans import (
    NOOP_SCOPE,
    LeafScope,
    SpanHandle,
    SpanScope,
    build_attributes,
    error_type_of,
    event_attributes,
)

__all__ = ["SCOPE_NAME", "Telemetry"]

#: instrumentation scope of agentkit's tracer and meter
SCOPE_NAME: Final = "agentkit"

try:
    _VERSION: str | None = metadata.version("agentkit")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = None


#: step spans that are not made current and are recorded when they end: agentkit's own CPU
#: work with nothing inside that starts spans. The cache and store steps stay current, so
#: spans of an instrumented Redis or PostgreSQL driver nest under them.
_LEAF_STEPS: Final = frozenset({"agentkit.clean_result", "agentkit.codec.encode"})

#: bound on the per-instance caches of metric attribute dicts (agents x statuses x errors)
_MAX_CACHED_ATTRS: Final = 4096
_ERROR_STATUSES: Final = frozenset({"failed", "timed_out", "cancelled", "interrupted"})


_get_current = otel_context.get_current
_get_current_span = trace.get_current_span
#: W3C ``traceparent`` / ``tracestate`` only: never baggage, which may carry user data
_PROPAGATOR: Final = TraceContextTextMapPropagator()


def _recording_parent(parent: Context | None) -> Context | None:
    """The context to start a span in (``parent``, or the current one), or None to skip it.

    None when the parent span exists but was not sampled: its children would not be recorded
    either (``ParentBased`` sampling, the SDK default), so the span is skipped outright and a
    run that sampling left out costs almost nothing. The context found is handed to the
    tracer explicitly, so it is looked up once per span.
    """
    ctx = parent if parent is not None else _get_current()
    span_ctx = _get_current_span(ctx).get_span_context()
    if span_ctx.is_valid and not span_ctx.trace_flags.sampled:
        return None
    return ctx


def _status(status: object) -> str:
    return str(getattr(status, "value", status))


class Telemetry:
    """OpenTelemetry spans and metrics of agent runs, following the GenAI conventions.

    Built on the OpenTelemetry API only: give it providers (from the SDK, or from
    :func:`agentkit.telemetry.configure`), or leave them None to use the global ones the
    application installed. ``Telemetry.noop()`` (the engine's default) records nothing and
    costs a few hundred nanoseconds per stage.

    Span tree of one run::

        invoke_workflow {pipeline}            workflow_span()
        └── invoke_agent {agent}              agent_span(), one per attempt (INTERNAL)
            ├── agentkit.clean_result         step_span(...)
            ├── agentkit.codec.encode
            ├── agentkit.cache.set
            └── agentkit.store.save

    Context: spans are made current through ``contextvars``, so anyio tasks and
    ``anyio.to_thread.run_sync`` threads started inside a span see it as their parent. Work
    started from a task created *before* the span (a long-lived worker task, a thread pool
    that does not copy contextvars) must be handed the context explicitly: capture it with
    :meth:`capture_context` where the caller is (``Supervisor.submit``), and pass it as
    ``parent=`` to :meth:`workflow_span` in the run task; pass ``handle.context`` of the
    workflow span as ``parent=`` to :meth:`agent_span` if stage tasks are started outside it.

    Args:
        tracer_provider: provider for agentkit's tracer; None uses the global provider.
        meter_provider: provider for agentkit's meter; None uses the global provider.
        record_content: record clean, redacted output content on agent spans
            (``agentkit.output``) and string fields of agent events. Off by default.
        step_spans: record the four step spans under each agent span (the default, as
            the span tree above). False keeps workflow and agent spans and every metric
            but skips the step spans: each stage then starts one span instead of five,
            for deployments that trace every run of very short stages (see
            ``docs/observability.md``, "Overhead").
    """

    __slots__ = (
        "_agent_attrs",
        "_instruments",
        "_layer_attrs",
        "_meter",
        "_tracer",
        "record_content",
        "step_spans",
    )

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        record_content: bool = False,
        step_spans: bool = True,
    ) -> None:
        self.record_content = record_content
        self.step_spans = step_spans
        self._tracer = trace.get_tracer(SCOPE_NAME, _VERSION, tracer_provider=tracer_provider)
        self._meter = metrics.get_meter(SCOPE_NAME, _VERSION or "", meter_provider=meter_provider)
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self._instruments = Instruments.for_provider(provider, self._meter)
        self._agent_attrs: dict[tuple[str, str, str | None], dict[str, AttributeValue]] = {}
        self._layer_attrs: dict[str, dict[str, AttributeValue]] = {}

    @staticmethod
    def noop() -> Telemetry:
        """The shared telemetry that records nothing (the engine's default)."""
        return _NOOP

    @property
    def enabled(self) -> bool:
        """False for :meth:`noop`; True otherwise."""
        return True

    # --- context ---------------------------------------------------------------------------

    def capture_context(self) -> Context | None:
        """The caller's current OpenTelemetry context, to parent a run started later.

        Call it in ``Supervisor.submit`` (the caller's task) and pass the value as
        ``parent=`` to :meth:`workflow_span` in the task that runs the run.
        """
        return otel_context.get_current()

    def trace_context(self) -> dict[str, str]:
        """The W3C trace context of the current span, to continue its trace in another process.

        A plain dict (``traceparent``, and ``tracestate`` when the span has one) that
        :meth:`context_from` turns back into a parent on the other side. It carries the trace
        id, the span id and the sampling flag, nothing else: no attributes, no baggage. A
        sampled-out span travels as such, so the other side records nothing either. Empty
        when no span is current, and always for :meth:`noop`.
        """
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=_get_current())
        return carrier

    @staticmethod
    def context_from(carrier: Mapping[str, str]) -> Context | None:
        """A context whose current span is the remote span in ``carrier`` (see
        :meth:`trace_context`), to pass to :meth:`use_context`; None when ``carrier`` holds
        no valid trace context. It starts from an empty context, not the current one."""
        if not carrier:
            return None
        ctx = _PROPAGATOR.extract(carrier, context=Context())
        return ctx if _get_current_span(ctx).get_span_context().is_valid else None

    @contextmanager
    def use_context(self, ctx: Context | None) -> Iterator[None]:
        """Make ``ctx`` current for the block (for threads that did not inherit it)."""
        if ctx is None:
            yield
            return
        token = otel_context.attach(ctx)
        try:
            yield
        finally:
            otel_context.detach(token)

    # --- spans -----------------------------------------------------------------------------

    def workflow_span(
        self,
        pipeline: str,
        *,
        run_id: str,
        user_hash: str,
        session_id: str | None = None,
        queue_wait: float | None = None,
        parent: Context | None = None,
    ) -> AbstractContextManager[SpanHandle]:
        """The root span of a run: ``invoke_workflow {pipeline}``.

        Args:
            pipeline: the pipeline's name (low cardinality; it names the span).
            run_id: the run id (``agentkit.run.id``).
            user_hash: the keyed hash of the user id (``UserHasher``), never the raw id.
            session_id: the session / conversation (``gen_ai.conversation.id``).
            queue_wait: seconds the run waited before starting (``agentkit.queue.wait``).
            parent: context from :meth:`capture_context`; None uses the current context.

        Yields:
            A :class:`SpanHandle`; call ``set_outcome(run_status)`` on it when the run ends.
        """
        ctx = _recording_parent(parent)
        if ctx is None:
            return NOOP_SCOPE
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "invoke_workflow",
            "agentkit.pipeline": pipeline,
            "agentkit.run.id": run_id,
            "agentkit.user.hash": user_hash,
        }
        if session_id is not None:
            attrs["gen_ai.conversation.id"] = session_id
        if queue_wait is not None:
            attrs["agentkit.queue.wait"] = queue_wait
        return SpanScope(
            self._tracer,
            f"invoke_workflow {pipeline}",
            attrs,
            parent=ctx,
            record_content=self.record_content,
            status_key="agentkit.run.status",
        )

    def agent_span(
        self,
        agent: str,
        version: str,
        *,
        run_id: str,
        user_hash: str,
        session_id: str | None = None,
        attempt: int = 1,
        queue_wait: float | None = None,
        parent: Context | None = None,
    ) -> AbstractContextManager[SpanHandle]:
        """One attempt of one stage: ``invoke_agent {agent}`` (kind INTERNAL).

        Open one span per attempt: a retried stage shows as sibling spans with
        ``agentkit.retry.attempt`` 1, 2, ...; call ``mark_retry(exc, next_attempt=...)`` on a
        failed attempt that will be retried, and ``set_outcome(status, error)`` on the last.
        Run the clean-result hook, the codec, the cache and the store steps inside the final
        attempt's span so their step spans are its children.

        Yields:
            A :class:`SpanHandle`; ``record_output(clean_output)`` records content when
            ``record_content`` is on.
        """
        ctx = _recording_parent(parent)
        if ctx is None:
            return NOOP_SCOPE
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "gen_ai.agent.version": version,
            "agentkit.run.id": run_id,
            "agentkit.user.hash": user_hash,
            "agentkit.retry.attempt": attempt,
        }
        if session_id is not None:
            attrs["gen_ai.conversation.id"] = session_id
        if queue_wait is not None:
            attrs["agentkit.queue.wait"] = queue_wait
        return SpanScope(
            self._tracer,
            f"invoke_agent {agent}",
            attrs,
            parent=ctx,
            record_content=self.record_content,
            status_key="agentkit.agent.status",
        )

    def step_span(
        self,
        name: str,
        attributes: Mapping[str, object] | None = None,
        **attrs: object,
    ) -> AbstractContextManager[SpanHandle]:
        """A step of a stage: ``agentkit.clean_result``, ``agentkit.codec.encode``,
        ``agentkit.cache.set``, ``agentkit.store.save``, or ``agentkit.worker.run`` (a stage
        on a Dask worker).

        The cache and store steps (and any other name) become the current span, so spans
        of instrumented drivers nest under them; ``agentkit.clean_result`` and
        ``agentkit.codec.encode`` are leaves, not made current and recorded in one go when
        they end (cheaper, see :class:`~agentkit.telemetry._spans.LeafScope`; a span started
        inside them, e.g. by a ``clean_result`` override, parents to the agent span).

        Args:
            name: the span name.
            attributes: attributes by full name.
            **attrs: attributes by short name: ``layer``, ``payload_bytes``, ``replaced``,
                ``lossy``, ``attempt``... (unknown names go under ``agentkit.``).
        """
        if not self.step_spans:
            return NOOP_SCOPE
        ctx = _recording_parent(None)
        if ctx is None:
            return NOOP_SCOPE
        base: dict[str, AttributeValue] = {}
        if attributes:
            build_attributes(base, attributes)
        if attrs:
            build_attributes(base, attrs)
        if name in _LEAF_STEPS:
            return LeafScope(self._tracer, name, base, ctx)
        return SpanScope(
            self._tracer, name, base, parent=ctx, record_content=False, status_key=None
        )

    def agent_event(self, name: str, attributes: Mapping[str, object] | None = None) -> None:
        """An agent ``emit`` as an event on the current span.

        Numeric and boolean fields are recorded; string and structured fields only with
        ``record_content`` (pass the clean, redacted event data).
        """
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(name, event_attributes(attributes, self.record_content))

    # --- backends --------------------------------------------------------------------------

    def bind_backends(self, cache: object, store: object) -> None:
        """Report a cache's circuit breaker and a store's outbox depth as gauges.

        Duck-typed: a cache with a ``breaker`` that has ``add_listener(fn(name, old, new))``
        (``RedisCache``) reports ``agentkit.cache.circuit.state``; a store with an
        ``on_depth`` hook left unset (``OutboxStore``) reports ``agentkit.store.outbox.depth``.
        Anything else is left alone. Call once, when the Supervisor starts.
        """
        breaker = getattr(cache, "breaker", None)
        add_listener = getattr(breaker, "add_listener", None)
        if callable(add_listener):
            add_listener(lambda name, old, new: self.set_circuit_state(name, new))
            name, state = getattr(breaker, "name", None), getattr(breaker, "state", None)
            if isinstance(name, str) and isinstance(state, str):
                self.set_circuit_state(name, state)
        if hasattr(store, "on_depth") and getattr(store, "on_depth", None) is None:
            store.on_depth = self.set_outbox_depth
            depth = getattr(store, "depth", None)
            if isinstance(depth, int):
                self.set_outbox_depth(depth)

    # --- metrics ---------------------------------------------------------------------------

    def record_agent(
        self, agent: str, status: object, duration_s: float, error_type: str | None = None
    ) -> None:
        """One agent invocation finished (``gen_ai.invoke_agent.duration``).

        ``error_type`` (the outcome's error type name) is normalised like the span's
        ``error.type``: ``timeout`` and ``cancelled`` for those outcomes.
        """
        value = status if type(status) is str else _status(status)
        key = (agent, value, error_type)
        attrs = self._agent_attrs.get(key)
        if attrs is None:
            attrs = {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": agent,
                "agentkit.agent.status": value,
            }
            if error_type is not None or value in _ERROR_STATUSES:
                attrs["error.type"] = error_type_of(error_type, value)
            if len(self._agent_attrs) < _MAX_CACHED_ATTRS:
                self._agent_attrs[key] = attrs
        self._instruments.agent_duration.record(duration_s, attrs)

    def record_encoding(self, layer: str, size: int) -> None:
        """The codec encoded a result with ``layer`` into ``size`` bytes."""
        attrs = self._layer_attrs.get(layer)
        if attrs is None:
            attrs = {"agentkit.codec.layer": layer}
            if len(self._layer_attrs) < _MAX_CACHED_ATTRS:
                self._layer_attrs[layer] = attrs
        self._instruments.codec_encodings.add((("agentkit.codec.layer", layer),))
        self._instruments.payload_size.record(size, attrs)

    def record_sanitizer(self, counts_by_kind: Mapping[str, int]) -> None:
        """The sanitizer's change counts (``SanitizeReport.counts``) for one result."""
        counter = self._instruments.sanitizer_replacements
        for kind, count in counts_by_kind.items():
            if count:
                counter.add((("agentkit.sanitizer.kind", _status(kind)),), count)

    def record_queue_wait(self, seconds: float) -> None:
        """A run waited ``seconds`` in the queue before it started."""
        self._instruments.queue_wait.record(seconds)

    def record_cache_error(self, op: str, backend: str | None = None) -> None:
        """A cache operation (``get``, ``set``...) failed and degraded to a miss."""
        key: tuple[tuple[str, str], ...] = (("agentkit.cache.operation", op),)
        if backend is not None:
            key += (("agentkit.cache.backend", backend),)
        self._instruments.cache_errors.add(key)

    def record_run(self, status: object) -> None:
        """A run reached a terminal status (``agentkit.runs``)."""
        self._instruments.runs.add((("agentkit.run.status", _status(status)),))

    def set_active_engines(self, n: int) -> None:
        """Number of live per-user engines (``agentkit.engines.active``)."""
        self._instruments.active_engines.set(n)

    def set_outbox_depth(self, n: int) -> None:
        """Records waiting in the store outbox (``agentkit.store.outbox.depth``)."""
        self._instruments.outbox_depth.set(n)

    def set_circuit_state(self, name: str, state: str | int) -> None:
        """A circuit breaker's state: ``closed``/``half_open``/``open`` (or 0/1/2)."""
        if isinstance(state, str):
            value = CIRCUIT_STATES.get(state.lower().replace("-", "_"))
            if value is None:
                raise ValueError(
                    f"unknown circuit state {state!r}; use one of {sorted(CIRCUIT_STATES)}"
                )
        else:
            value = int(state)
        self._instruments.circuit_state.set(value, {"agentkit.circuit.name": name})


class _NoopTelemetry(Telemetry):
    """Records nothing; every method returns at once."""

    __slots__ = ()

    def __init__(self) -> None:
        self.record_content = False
        self.step_spans = False

    @property
    def enabled(self) -> bool:
        return False

    def capture_context(self) -> Context | None:
        return None

    def trace_context(self) -> dict[str, str]:
        return {}

    def workflow_span(
        self,
        pipeline: str,
        *,
        run_id: str,
        user_hash: str,
        session_id: str | None = None,
        queue_wait: float | None = None,
        parent: Context | None = None,
    ) -> AbstractContextManager[SpanHandle]:
        return NOOP_SCOPE

    def agent_span(
        self,
        agent: str,
        version: str,
        *,
        run_id: str,
        user_hash: str,
        session_id: str | None = None,
        attempt: int = 1,
        queue_wait: float | None = None,
        parent: Context | None = None,
    ) -> AbstractContextManager[SpanHandle]:
        return NOOP_SCOPE

    def step_span(
        self,
        name: str,
        attributes: Mapping[str, object] | None = None,
        **attrs: object,
    ) -> AbstractContextManager[SpanHandle]:
        return NOOP_SCOPE

    def agent_event(self, name: str, attributes: Mapping[str, object] | None = None) -> None:
        return None

    def bind_backends(self, cache: object, store: object) -> None:
        return None

    def record_agent(
        self, agent: str, status: object, duration_s: float, error_type: str | None = None
    ) -> None:
        return None

    def record_encoding(self, layer: str, size: int) -> None:
        return None

    def record_sanitizer(self, counts_by_kind: Mapping[str, int]) -> None:
        return None

    def record_queue_wait(self, seconds: float) -> None:
        return None

    def record_cache_error(self, op: str, backend: str | None = None) -> None:
        return None

    def record_run(self, status: object) -> None:
        return None

    def set_active_engines(self, n: int) -> None:
        return None

    def set_outbox_depth(self, n: int) -> None:
        return None

    def set_circuit_state(self, name: str, state: str | int) -> None:
        return None


_NOOP: Final[Telemetry] = _NoopTelemetry()
