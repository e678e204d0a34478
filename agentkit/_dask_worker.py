"""The worker side of :class:`~agentkit.dask_executor.DaskExecutor`.

Everything here runs inside a ``dask worker`` process. A stage arrives as a
:class:`~agentkit.executor.StageJob` (plain data) plus a :class:`StageCall` (how to encode and
where to send events); the worker resolves the agent **by registry name** from its own
plugins, runs it, passes the raw return value through the result type's ``clean_result``
hook and encodes it with the codec. Only codec bytes go back: never the raw value.

How a worker gets its agents and its signing key (never through task names or logs):

* ``AGENTKIT_PLUGIN_PATH`` — plugin folders (``os.pathsep``-separated) loaded with
  ``AgentRegistry.load_path``; installed ``agentkit.agents`` entry points are loaded too
  unless ``AGENTKIT_ENTRY_POINTS=0``.
* ``AGENTKIT_SIGNING_KEY_FILE`` — a file holding the supervisors' ``signing_key`` as hex
  (preferred: the key stays out of the process environment), or ``AGENTKIT_SIGNING_KEY``
  holding the hex itself. Workers derive the same codec key as the supervisors from it.
* or instead :class:`AgentkitWorkerPlugin` registered from a client with explicit settings
  (ship keys this way only over a TLS-secured cluster: plugins travel in the comm).

Tracing: the supervisor sends the W3C trace context of the stage's ``invoke_agent`` span
with each stage. A worker process with a global tracer provider (set up by
:class:`~agentkit.dask_executor.TelemetryPlugin`, or by the application) records the stage
as an ``agentkit.worker.run`` span, child of that span, with the ``agentkit.clean_result``
and ``agentkit.codec.encode`` steps under it; without one it records nothing. Metrics are
never recorded on the worker: the supervisor counts them from the reply.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import NoOpMeterProvider

from agentkit._dask_telemetry import global_tracer_provider
from agentkit.errors import AgentNotOnWorkerError, ConfigurationError, RunCancelledError

if TYPE_CHECKING:
    from agentkit.codec import Codec
    from agentkit.executor import ExecutorRuntime, StageJob
    from agentkit.sanitizer import ObjectSanitizer
    from agentkit.status import AgentStatus

__all__ = [
    "ENV_ENTRY_POINTS",
    "ENV_PLUGIN_PATH",
    "ENV_SIGNING_KEY",
    "ENV_SIGNING_KEY_FILE",
    "PLUGIN_NAME",
    "AgentkitWorkerPlugin",
    "StageCall",
    "WorkerReply",
    "WorkerRuntime",
    "WorkerSettings",
    "event_blob_context",
    "fetch_reply",
    "parse_signing_key",
    "run_stage_task",
]

log = logging.getLogger("agentkit.dask.worker")

ENV_PLUGIN_PATH = "AGENTKIT_PLUGIN_PATH"
ENV_ENTRY_POINTS = "AGENTKIT_ENTRY_POINTS"
ENV_SIGNING_KEY = "AGENTKIT_SIGNING_KEY"
ENV_SIGNING_KEY_FILE = "AGENTKIT_SIGNING_KEY_FILE"
#: name of the worker plugin (and of the lazily built runtime) on each worker
PLUGIN_NAME = "agentkit"


def parse_signing_key(text: str) -> bytes:
    """Parse a signing key written as hex (whitespace ignored).

    Raises:
        ConfigurationError: not hex, or shorter than 16 bytes (the message never quotes it).
    """
    try:
        key = binascii.unhexlify("".join(text.split()))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ConfigurationError(
            f"the worker's signing key must be at least 16 bytes written as hex (32+ hex "
            f"digits); fix {ENV_SIGNING_KEY_FILE} or {ENV_SIGNING_KEY} on the worker"
        )
    return key


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs to run agentkit stages.

    Attributes:
        plugin_paths: plugin folders loaded with ``AgentRegistry.load_path``.
        entry_points: also load installed ``agentkit.agents`` entry points.
        signing_key: the supervisors' ``signing_key`` (never shown in ``repr``), or
            ``None`` when the supervisors run without one.
        codec: a ready codec, for supervisors built with ``codec=`` (overrides the key).
        sanitizer: the sanitizer, for supervisors built with ``sanitizer=``.
    """

    plugin_paths: tuple[str, ...] = ()
    entry_points: bool = True
    signing_key: bytes | None = field(default=None, repr=False)
    codec: Codec | None = field(default=None, repr=False)
    sanitizer: ObjectSanitizer | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Read the ``AGENTKIT_*`` variables described in the module docstring."""
        env = os.environ if environ is None else environ
        paths = tuple(p for p in env.get(ENV_PLUGIN_PATH, "").split(os.pathsep) if p)
        entry_points = env.get(ENV_ENTRY_POINTS, "1").strip().lower() not in ("0", "false", "no")
        key_text = env.get(ENV_SIGNING_KEY, "")
        key_file = env.get(ENV_SIGNING_KEY_FILE)
        if key_file:
            try:
                key_text = Path(key_file).read_text()
            except OSError as exc:
                raise ConfigurationError(
                    f"{ENV_SIGNING_KEY_FILE} names a file this worker cannot read "
                    f"({type(exc).__name__}); fix the path or its permissions"
                ) from None
        return cls(paths, entry_points, parse_signing_key(key_text) if key_text.strip() else None)


@dataclass(frozen=True)
class StageCall:
    """Per-stage instructions from the executor to the worker (plain, picklable data).

    Attributes:
        token: unique id of this stage call; names its events.
        topic: Dask event topic of the submitting executor ("" disables live events).
        key_id: id of the key the supervisor's codec signs with (``None``: unsigned).
        layers: the supervisor codec's layers, in order (the worker's must match).
        trace_context: W3C trace context (``traceparent``, ``tracestate``) of the stage's
            ``invoke_agent`` span; empty when the supervisor does not trace.
    """

    token: str
    topic: str
    key_id: str | None
    layers: tuple[str, ...]
    trace_context: Mapping[str, str] = field(default_factory=dict)


# --- the runtime: one per worker process, built from the plugin or from the environment ---

_RUNTIMES: weakref.WeakKeyDictionary[Any, WorkerRuntime] = weakref.WeakKeyDictionary()
_RUNTIMES_LOCK = threading.Lock()
_LOCAL = threading.local()
#: how often a running stage checks whether Dask cancelled its task
_CANCEL_POLL_S = 0.2
#: worker task states meaning "nobody wants this result any more"
_ABANDONED = frozenset({"cancelled", "released", "forgotten"})
#: events of one stage kept for the batched reply (the newest; live delivery sends all)
_MAX_BATCHED_EVENTS = 1024


class WorkerRuntime:
    """A worker's agents, sanitizer and codecs; runs stages with the in-process executor.

    Plugin load failures do not stop the worker: they are kept and quoted in the
    :class:`~agentkit.AgentNotOnWorkerError` of any stage that needs a missing agent.
    """

    def __init__(self, settings: WorkerSettings, *, worker_name: str) -> None:
        from agentkit.executor import ExecutorRuntime
        from agentkit.registry import AgentRegistry
        from agentkit.sanitizer import ObjectSanitizer
        from agentkit.signing import build_codec
        from agentkit.telemetry import Telemetry

        self.worker_name = worker_name
        self.registry = AgentRegistry()
        self.load_errors: list[str] = []
        # The same construction as the supervisors': same derived key, id and layers.
        self.codec = settings.codec or build_codec(settings.signing_key)
        self.sanitizer = settings.sanitizer or ObjectSanitizer()
        self._runtime = ExecutorRuntime(self.registry, self.codec, self.sanitizer, Telemetry.noop())
        #: (global tracer provider, runtime tracing with it), built on the first traced stage
        self._traced: tuple[trace.TracerProvider, ExecutorRuntime] | None = None
        loaders: list[tuple[str, Callable[[], object]]] = []
        if settings.entry_points:
            loaders.append(("entry points", self.registry.load_entry_points))
        for folder in settings.plugin_paths:
            loaders.append((f"plugin folder {folder!r}", partial(self.registry.load_path, folder)))
        for what, load in loaders:
            try:
                load()
            except Exception as exc:
                self.load_errors.append(f"{what}: {type(exc).__name__}: {exc}")
                log.error("agentkit worker %s could not load %s: %s", worker_name, what, exc)

    def check(self, job: StageJob, call: StageCall) -> None:
        """Fail fast, naming the agent and this worker, when the stage cannot run here.

        Raises:
            AgentNotOnWorkerError: the agent is not installed here, or at another version.
            ConfigurationError: the supervisor signs results with a key this worker lacks.
        """
        if job.agent not in self.registry:
            known = ", ".join(sorted(self.registry.names())) or "none"
            problems = "; ".join(self.load_errors)
            raise AgentNotOnWorkerError(
                f"agent {job.agent!r} is not installed on Dask worker {self.worker_name} "
                f"(it has: {known}{'; load errors: ' + problems if problems else ''}); install "
                f"the plugin on every worker (entry point, or a folder in {ENV_PLUGIN_PATH})"
            )
        have = self.registry.get(job.agent).version
        if have != job.agent_version:
            raise AgentNotOnWorkerError(
                f"agent {job.agent!r} on Dask worker {self.worker_name} is version {have!r} "
                f"but the supervisor planned version {job.agent_version!r}; deploy the same "
                "plugin version to supervisors and workers"
            )
        mine = self.codec.signing_key_id
        if call.key_id != mine or call.layers != self.codec.layers:
            raise ConfigurationError(
                f"Dask worker {self.worker_name} signs with key id {mine!r} (layers "
                f"{self.codec.layers}) but the supervisor expects key id {call.key_id!r} "
                f"(layers {call.layers}); set {ENV_SIGNING_KEY_FILE} (or {ENV_SIGNING_KEY}) on "
                "the worker to the supervisors' signing_key, as hex"
            )

    def _tracing(self, call: StageCall) -> tuple[ExecutorRuntime, Context | None]:
        """The runtime for a stage and the supervisor's span to parent it to.

        Traced when the supervisor sent a trace context and this process has a global tracer
        provider; otherwise the no-op telemetry. The traced runtime's meter is a no-op: the
        supervisor counts the stage's metrics from the reply, so they are counted once.
        """
        if not call.trace_context:
            return self._runtime, None
        provider = global_tracer_provider()
        if provider is None:
            return self._runtime, None
        from agentkit.telemetry import Telemetry

        parent = Telemetry.context_from(call.trace_context)
        if parent is None:
            return self._runtime, None
        traced = self._traced
        if traced is None or traced[0] is not provider:
            tel = Telemetry(tracer_provider=provider, meter_provider=NoOpMeterProvider())
            traced = self._traced = (provider, replace(self._runtime, telemetry=tel))
        return traced[1], parent

    async def run(
        self,
        job: StageJob,
        call: StageCall,
        *,
        publish: Callable[[str, Any], None] | None,
        abandoned: Callable[[], bool],
    ) -> WorkerReply:
        """Run one stage attempt here; return only codec bytes (result and events)."""
        self.check(job, call)
        runtime, parent = self._tracing(call)
        tel = runtime.telemetry
        with (
            tel.use_context(parent),
            tel.step_span("agentkit.worker.run", _span_attributes(self.worker_name, job)) as span,
        ):
            reply, status = await self._run(job, call, runtime, publish, abandoned)
            span.set_outcome(status, reply.error_type)
        return reply

    async def _run(
        self,
        job: StageJob,
        call: StageCall,
        runtime: ExecutorRuntime,
        publish: Callable[[str, Any], None] | None,
        abandoned: Callable[[], bool],
    ) -> tuple[WorkerReply, AgentStatus]:
        from agentkit.executor import InProcessExecutor

        # One executor per stage: stages of several worker threads may trace differently.
        executor = InProcessExecutor()
        await executor.start(runtime)
        codec = self.codec
        sanitizer = self.sanitizer
        event_context = event_blob_context(job, call.token)
        execution = uuid.uuid4().hex[:12]
        # The batch keeps the newest events, like the caller's bounded event buffer does.
        events: deque[tuple[int, str, bytes]] = deque(maxlen=_MAX_BATCHED_EVENTS)
        count = 0

        def emit(kind: str, data: dict[str, Any]) -> None:
            nonlocal count
            clean, _report = sanitizer.sanitize(data)
            blob = codec.encode(clean, context=event_context)
            count += 1
            seq = count
            events.append((seq, kind, blob))
            if publish is not None:
                msg = {"t": call.token, "x": execution, "s": seq, "k": kind, "b": blob}
                try:
                    publish(call.topic, msg)
                except Exception as exc:  # live delivery is best effort; the batch is not
                    log.debug("agentkit worker could not publish an event: %s", exc)

        stage = asyncio.ensure_future(executor.run_stage(job, emit))
        budget = None if job.deadline is None else job.deadline - time.time() + _DEADLINE_GRACE_S
        started = time.monotonic()
        while not stage.done():
            await asyncio.wait({stage}, timeout=_CANCEL_POLL_S)
            over = budget is not None and time.monotonic() - started > budget
            if not stage.done() and (over or abandoned()):
                stage.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stage
                why = "passed its deadline" if over else "was cancelled by its supervisor"
                raise RunCancelledError(
                    f"stage {job.agent!r} of run {job.run_id} {why}; stopped on Dask worker "
                    f"{self.worker_name}"
                )
        outcome = stage.result()
        reply = WorkerReply(
            blob=outcome.blob,
            retryable=outcome.retryable,
            error_type=outcome.error_type,
            events=list(events),
            worker=self.worker_name,
            execution=execution,
        )
        return reply, outcome.result.status


class AgentkitWorkerPlugin(WorkerPlugin):
    """Dask worker plugin that sets agentkit up on every worker, present and future.

    Register it from any client (``await client.register_plugin(AgentkitWorkerPlugin(...))``)
    to give workers explicit settings; without it, each worker reads its environment on its
    first stage. A ``signing_key`` given here travels inside the plugin: pass one only on a
    TLS-secured cluster; otherwise leave it ``None`` and set ``AGENTKIT_SIGNING_KEY_FILE`` on
    the workers.

    Args:
        plugin_paths: plugin folders that exist *on the workers*.
        entry_points: load installed ``agentkit.agents`` entry points.
        signing_key: the supervisors' ``signing_key``; ``None`` reads the worker's environment.
        codec: the supervisors' ``codec=``, if they use a custom one (carries keys: TLS only).
        sanitizer: the supervisors' ``sanitizer=``, if they use a custom one.
    """

    name = PLUGIN_NAME
    idempotent = False

    def __init__(
        self,
        plugin_paths: tuple[str, ...] | list[str] = (),
        *,
        entry_points: bool = True,
        signing_key: bytes | None = None,
        codec: Codec | None = None,
        sanitizer: ObjectSanitizer | None = None,
    ) -> None:
        self.plugin_paths = tuple(str(p) for p in plugin_paths)
        self.entry_points = entry_points
        self._key = signing_key
        self._codec = codec
        self._sanitizer = sanitizer

    def __repr__(self) -> str:
        return f"AgentkitWorkerPlugin(plugin_paths={self.plugin_paths!r})"

    def settings(self) -> WorkerSettings:
        """The settings this plugin gives a worker (keys from the environment if unset)."""
        key = self._key
        if key is None and self._codec is None:
            key = WorkerSettings.from_env().signing_key
        return WorkerSettings(
            self.plugin_paths, self.entry_points, key, self._codec, self._sanitizer
        )

    def setup(self, worker: Any) -> None:
        runtime = WorkerRuntime(self.settings(), worker_name=_worker_name(worker))
        with _RUNTIMES_LOCK:
            _RUNTIMES[worker] = runtime

    def teardown(self, worker: Any) -> None:
        with _RUNTIMES_LOCK:
            _RUNTIMES.pop(worker, None)


#: seconds a worker lets a stage run past its deadline before stopping it itself (the
#: supervisor has normally given up and cancelled the future by then)
_DEADLINE_GRACE_S = 2.0


@dataclass(frozen=True)
class WorkerReply:
    """What a stage task returns to the supervisor: codec bytes and plain metadata only.

    Attributes:
        blob: codec envelope of the clean ``SerializableAgentResult``.
        retryable: the attempt failed with an error in the agent's ``retry_on``.
        error_type: qualified error type name, or ``None`` on success.
        events: ``(seq, kind, blob)`` of each ``ctx.emit``; ``blob`` is the codec envelope
            of the sanitized payload.
        worker: name and address of the worker that ran the stage.
        execution: id of this execution (a stage re-run after a lost worker gets a new one).
    """

    blob: bytes
    retryable: bool
    error_type: str | None
    events: list[tuple[int, str, bytes]]
    worker: str
    execution: str


def event_blob_context(job: StageJob, token: str) -> bytes:
    """The codec context binding an event's bytes to one stage call of one run."""
    return f"event:{job.run_id}:{job.agent}:{token}".encode()


def _span_attributes(worker_name: str, job: StageJob) -> dict[str, object]:
    """Attributes of ``agentkit.worker.run``: where, and which agent; no user data."""
    return {"agentkit.worker": worker_name, "gen_ai.agent.name": job.agent}


def _worker_name(worker: Any) -> str:
    name = getattr(worker, "name", None)
    address = str(getattr(worker, "address", "?"))
    return f"{name!s} ({address})" if name is not None and str(name) != address else address


def _runtime_for(worker: Any) -> WorkerRuntime:
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(worker)
        if runtime is None:
            runtime = WorkerRuntime(WorkerSettings.from_env(), worker_name=_worker_name(worker))
            _RUNTIMES[worker] = runtime
        return runtime


def _thread_loop() -> asyncio.AbstractEventLoop:
    """One event loop per worker thread, reused across stages (cheaper than asyncio.run)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_LOCAL, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _LOCAL.loop = loop
    return loop


def run_stage_task(job: StageJob, call: StageCall) -> WorkerReply:
    """The Dask task: run one stage attempt on this worker; return only codec bytes.

    Raises:
        AgentNotOnWorkerError: this worker lacks the agent (or has another version).
        ConfigurationError: this worker lacks the signing key.
        RunCancelledError: the supervisor cancelled the stage, or it overran its deadline.
    """
    from distributed import get_worker

    worker = get_worker()
    runtime = _runtime_for(worker)
    key = worker.get_current_task()
    tasks = worker.state.tasks

    def abandoned() -> bool:
        ts = tasks.get(key)
        return ts is None or ts.state in _ABANDONED

    publish = worker.log_event if call.topic else None
    loop = _thread_loop()
    return loop.run_until_complete(runtime.run(job, call, publish=publish, abandoned=abandoned))


def fetch_reply(key: str, dask_worker: Any) -> WorkerReply | None:
    """The reply a finished stage task left in this worker's memory (``Client.run`` helper)."""
    value = dask_worker.data.get(key) if key in dask_worker.data else None
    return value if isinstance(value, WorkerReply) else None
