"""Run stages on a Dask distributed cluster: :class:`DaskExecutor` (extra ``agentkit[dask]``).

The Supervisor keeps per-user limits, fair queueing, retries, timeouts, events, the cache and
the store. For each stage attempt this executor submits one Dask task
(:func:`agentkit._dask_worker.run_stage_task`); the worker resolves the agent by registry
name from its own plugins, runs it, applies the result type's ``clean_result`` hook and the
codec, and sends back only codec bytes. This side verifies them (HMAC) before anything reads
them. ::

    async with Supervisor(agents=registry, executor="dask://scheduler:8786", ...) as sup:
        ...
    # or, with a client you manage (it must be asynchronous, in the Supervisor's loop):
    client = await distributed.Client("tcp://scheduler:8786", asynchronous=True)
    async with Supervisor(agents=registry, executor=DaskExecutor(client), ...) as sup:
        ...

Events: an agent's ``ctx.emit`` on a worker is sanitized and encoded there, published live
on this executor's own Dask event topic, *and* returned with the result; this side delivers
each event once (live when possible, otherwise from the batch), so none is lost.

Tracing: each stage carries the W3C trace context of its ``invoke_agent`` span; workers
with a tracer provider (:class:`TelemetryPlugin`) record their part of the stage under it.

Cancellation cancels the Dask future; the worker notices within a fraction of a second and
cancels an ``async`` agent (a plain ``def run`` sees ``ctx.cancelled``). A worker that dies
mid-stage makes Dask run the stage again on another worker (up to the scheduler's
``distributed.scheduler.allowed-failures``); past that (``KilledWorker``), this executor
submits it again up to ``resubmit`` times within its deadline, and then the stage fails
with that error and the engine's retry policy decides. Never a hung run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.context import Context

from agentkit.codec import Codec
from agentkit.errors import (
    AgentkitError,
    AgentNotOnWorkerError,
    BackendError,
    CodecError,
    ConfigurationError,
    MissingDependencyError,
    TamperedError,
)
from agentkit.executor import (
    EmitFn,
    ExecutorRuntime,
    StageJob,
    StageOutcome,
    error_type_name,
    layer_name,
)
from agentkit.result import SerializableAgentResult
from agentkit.status import AgentStatus

try:
    from distributed.diagnostics.plugin import WorkerPlugin

    from agentkit._dask_telemetry import TelemetryPlugin
    from agentkit._dask_worker import (
        AgentkitWorkerPlugin,
        StageCall,
        WorkerReply,
        event_blob_context,
        fetch_reply,
        run_stage_task,
    )
except ImportError as _exc:  # the extra is not installed
    if (_exc.name or "").split(".")[0] in ("dask", "distributed"):
        raise MissingDependencyError("distributed", "dask") from _exc
    raise

__all__ = ["AgentkitWorkerPlugin", "DaskExecutor", "TelemetryPlugin"]

log = logging.getLogger("agentkit.dask")

#: seconds between checks of a stage future that is taking long
_STALL_POLL_S = 1.0
_SUBMIT_OPTIONS = frozenset({"workers", "resources", "allow_other_workers", "priority"})
_SCHEMES = {"dask": "tcp", "tcp": "tcp", "dask+tls": "tls", "tls": "tls"}


@dataclass
class _Route:
    """Where one stage call's events go, and which were delivered already."""

    job: StageJob
    token: str
    emit: EmitFn
    #: the stage's OpenTelemetry context (its ``invoke_agent`` span), for live events
    context: Context | None
    seen: set[tuple[str, int]] = field(default_factory=set)


class DaskExecutor:
    """Executor that runs each stage attempt as a task on a Dask cluster.

    Args:
        client: an asynchronous ``distributed.Client`` created in the Supervisor's event loop;
            the executor does not close it. Give ``client`` or ``address``.
        address: scheduler address (``tcp://host:8786``, ``tls://…``); the executor opens and
            closes its own asynchronous client in the Supervisor's loop.
        live_events: forward agents' events as they happen (via a Dask event topic private to
            this executor); with ``False`` they arrive together with the stage's result.
        retries: Dask-level retries of a stage whose task *raised* on the worker (agent
            errors never raise there: they come back as failed results).
        resubmit: times a stage is submitted again when its Dask task is lost rather than
            failed (``KilledWorker`` after the scheduler's own ``allowed-failures``
            re-runs, a future cancelled by the cluster, a broken connection), while its
            deadline allows. A missing plugin or key is never resubmitted.
        connect_timeout: seconds to wait for the scheduler when connecting.
        plugin: worker plugins to register on the cluster at start, on present and future
            workers: an :class:`AgentkitWorkerPlugin` (for example to name a plugin folder
            present on every worker), a :class:`TelemetryPlugin` (to trace the workers), or
            a sequence of them.
        submit_options: extra ``Client.submit`` options for every stage, e.g.
            ``{"resources": {"GPU": 1}}`` or ``{"workers": [...]}`` to pin stages to some
            workers (``workers``, ``resources``, ``allow_other_workers``, ``priority``).
    """

    def __init__(
        self,
        client: Any = None,
        *,
        address: str | None = None,
        live_events: bool = True,
        retries: int = 0,
        resubmit: int = 2,
        connect_timeout: float = 30.0,
        plugin: WorkerPlugin | Sequence[WorkerPlugin] | None = None,
        submit_options: dict[str, Any] | None = None,
    ) -> None:
        if (client is None) == (address is None):
            raise ConfigurationError(
                "DaskExecutor needs exactly one of client= (an asynchronous distributed.Client) "
                "or address= ('tcp://host:8786')"
            )
        if client is not None and not getattr(client, "asynchronous", False):
            raise ConfigurationError(
                "DaskExecutor needs an asynchronous client: create it inside the Supervisor's "
                "event loop with distributed.Client(address, asynchronous=True)"
            )
        for name, value in (("retries", retries), ("resubmit", resubmit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name} must be an int >= 0, got {value!r}")
        self._client: Any = client
        self._owns_client = client is None
        self._address = address
        self._live = live_events
        self._retries = retries
        self._resubmit = resubmit
        self._connect_timeout = connect_timeout
        plugins = [plugin] if isinstance(plugin, WorkerPlugin) else list(plugin or ())
        for p in plugins:
            if not isinstance(p, WorkerPlugin):
                raise ConfigurationError(
                    f"plugin must be a Dask WorkerPlugin (e.g. AgentkitWorkerPlugin, "
                    f"TelemetryPlugin) or a sequence of them, got {p!r:.100}"
                )
        self._plugins = plugins
        options = dict(submit_options or {})
        unknown = set(options) - _SUBMIT_OPTIONS
        if unknown:
            raise ConfigurationError(
                f"submit_options may set {sorted(_SUBMIT_OPTIONS)}, not {sorted(unknown)}"
            )
        self._submit_options = options
        self._rt: ExecutorRuntime | None = None
        self._topic = f"agentkit-events-{uuid.uuid4().hex}"
        self._routes: dict[str, _Route] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DaskExecutor:
        """Build an executor for ``dask://host:port`` (TCP) or ``dask+tls://host:port``.

        ``tcp://`` and ``tls://`` are accepted too. Options are the constructor's.

        Raises:
            ConfigurationError: not a scheduler URL with host and port.
        """
        parts = urlsplit(url) if isinstance(url, str) else None
        scheme = _SCHEMES.get(parts.scheme.lower()) if parts else None
        if parts is None or scheme is None or not parts.hostname:
            raise ConfigurationError(
                f"Dask executor URL must look like dask://host:8786 or dask+tls://host:8786, "
                f"got {url!r:.100}"
            )
        port = parts.port or 8786
        return cls(address=f"{scheme}://{parts.hostname}:{port}", **options)

    def __repr__(self) -> str:
        where = self._address or getattr(self._client, "scheduler", None)
        return f"DaskExecutor({where!r}, live_events={self._live})"

    @property
    def client(self) -> Any:
        """The asynchronous ``distributed.Client`` (after :meth:`start`)."""
        if self._client is None:
            raise ConfigurationError("DaskExecutor.start() has not run yet")
        return self._client

    # --- Executor protocol ---------------------------------------------------------------

    async def start(self, runtime: ExecutorRuntime) -> None:
        """Connect (if given an address), subscribe to events, register the plugins.

        Raises:
            BackendError: the scheduler cannot be reached within ``connect_timeout``.
        """
        self._rt = runtime
        if self._client is None:
            from distributed import Client

            client_cls: Any = Client
            try:
                self._client = await client_cls(
                    self._address, asynchronous=True, timeout=self._connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                raise BackendError(
                    f"cannot reach the Dask scheduler at {self._address} within "
                    f"{self._connect_timeout} s ({type(exc).__name__}); start it "
                    "(dask scheduler) or fix the executor URL"
                ) from exc
        for plugin in self._plugins:
            await self._client.register_plugin(plugin)
        if self._live:
            self._client.subscribe_topic(self._topic, self._on_event)

    async def aclose(self) -> None:
        """Unsubscribe and, if this executor opened the client, close it; idempotent."""
        if self._closed or self._client is None:
            self._closed = True
            return
        self._closed = True
        for fut in list(self._background):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(fut, timeout=5)
        if self._live:
            with contextlib.suppress(Exception):
                self._client.unsubscribe_topic(self._topic)
        if self._owns_client:
            await self._client.close()

    async def run_stage(self, job: StageJob, emit: EmitFn) -> StageOutcome:
        """Run one attempt on a Dask worker; return the verified clean result and its bytes."""
        rt = self._require_runtime()
        codec = rt.codec
        tel = rt.telemetry
        token = uuid.uuid4().hex
        route = _Route(job, token, emit, tel.capture_context())
        call = StageCall(
            token=token,
            topic=self._topic if self._live else "",
            key_id=codec.signing_key_id,
            layers=codec.layers,
            # the engine's invoke_agent span is current here: the worker's spans join it
            trace_context=tel.trace_context(),
        )
        started_at = datetime.now(UTC)
        self._routes[token] = route
        try:
            for submission in range(self._resubmit + 1):
                # The key names the agent and a random token: never a user id or a secret.
                future = self.client.submit(
                    run_stage_task,
                    job,
                    call,
                    key=f"agentkit-{job.agent}-{token}-{submission}",
                    pure=False,
                    retries=self._retries or None,
                    **self._submit_options,
                )
                try:
                    reply = await self._await_reply(job, future)
                    break
                except asyncio.CancelledError:
                    self._cancel_soon(future)
                    raise
                except Exception as exc:
                    if submission < self._resubmit and _lost(exc) and _time_left(job) > 0:
                        log.warning(
                            "stage %r of run %s lost its Dask task (%s); submitting it again",
                            job.agent,
                            job.run_id,
                            error_type_name(exc),
                        )
                        continue
                    return self._failure(job, exc, started_at)
            self._deliver_batch(route, reply)
        finally:
            self._routes.pop(token, None)
        try:
            result = _decode(codec, reply.blob, job.blob_context, _result_type(rt, job.agent))
        except CodecError as exc:
            failure = TamperedError(
                f"the result of stage {job.agent!r} from Dask worker {reply.worker} did not "
                f"verify ({type(exc).__name__}); give the workers the supervisors' signing key"
            )
            return self._failure(job, failure, started_at)
        # Workers record no metrics (at most spans): their clean and encode steps count here.
        if result.report.total:
            tel.record_sanitizer(result.report.counts)
        tel.record_encoding(layer_name(reply.blob), len(reply.blob))
        return StageOutcome(result, reply.blob, reply.retryable, reply.error_type)

    # --- internals -----------------------------------------------------------------------

    async def _await_reply(self, job: StageJob, future: Any) -> WorkerReply:
        """The task's reply; fetched from its worker if the client's gather stalls.

        When a worker dies while the client is gathering results, the client's shared
        gather can wait for that dead worker for a long time while other results are already
        computed and held by live workers; such a result is fetched from its worker directly.
        """
        waiter = asyncio.ensure_future(_result_of(future))
        finished_polls = 0
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=_STALL_POLL_S)
                if done:
                    if waiter.cancelled():
                        # Cancelled by the Dask client, not by us (our own cancellation
                        # raises out of asyncio.wait): the task is lost, not the run.
                        raise _TaskLostError(
                            f"the Dask client cancelled the wait for stage {job.agent!r}"
                        )
                    return waiter.result()
                finished_polls = finished_polls + 1 if future.status == "finished" else 0
                if finished_polls >= 2:
                    reply = await self._fetch_from_worker(job, future)
                    if reply is not None:
                        return reply
                    finished_polls = 0
        finally:
            if not waiter.done():
                waiter.cancel()

    async def _fetch_from_worker(self, job: StageJob, future: Any) -> WorkerReply | None:
        try:
            holders = (await self.client.who_has([future])).get(future.key, ())
            for address in holders:
                got = await asyncio.wait_for(
                    self.client.run(fetch_reply, future.key, workers=[address]),
                    timeout=_STALL_POLL_S * 5,
                )
                reply = got.get(address)
                if isinstance(reply, WorkerReply):
                    log.warning(
                        "stage %r of run %s: result fetched from its worker directly (the "
                        "client's gather stalled, e.g. on a lost worker)",
                        job.agent,
                        job.run_id,
                    )
                    return reply
        except (OSError, TimeoutError, KeyError) as exc:
            log.debug("direct fetch of a stage result failed: %s", exc)
        return None

    def _require_runtime(self) -> ExecutorRuntime:
        if self._rt is None or self._client is None:
            raise ConfigurationError("DaskExecutor.start() was not called")
        if self._closed:
            raise ConfigurationError("this DaskExecutor is closed")
        return self._rt

    def _failure(self, job: StageJob, exc: BaseException, started_at: datetime) -> StageOutcome:
        """A failed outcome for a stage whose task raised (missing plugin, lost workers…)."""
        rt = self._require_runtime()
        log.warning(
            "stage %r of run %s failed on the Dask cluster: %s",
            job.agent,
            job.run_id,
            error_type_name(exc),
        )
        try:
            retry_on = rt.registry.get(job.agent).retry_on
        except Exception:
            retry_on = ()
        retryable = not isinstance(
            exc, AgentNotOnWorkerError | ConfigurationError | CodecError
        ) and isinstance(exc, retry_on)
        result = SerializableAgentResult.from_error(
            exc,
            status=AgentStatus.FAILED,
            agent=job.agent,
            agent_version=job.agent_version,
            user_id=job.user_id,
            run_id=job.run_id,
            session_id=job.session_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            attempt=job.attempt,
        )
        blob = rt.codec.encode_result(result, context=job.blob_context)
        return StageOutcome(result, blob, retryable=retryable, error_type=error_type_name(exc))

    def _cancel_soon(self, future: Any) -> None:
        """Cancel ``future`` on the cluster without blocking the cancelled caller."""
        try:
            pending = asyncio.ensure_future(self.client.cancel([future]))
        except Exception as exc:
            log.debug("could not cancel a Dask future: %s", exc)
            return
        self._background.add(pending)
        pending.add_done_callback(self._background.discard)

    def _on_event(self, event: tuple[float, Any]) -> None:
        """Live event from a worker (runs on this loop): deliver it if its stage waits."""
        msg = event[1]
        if not isinstance(msg, dict):
            return
        route = self._routes.get(msg.get("t", ""))
        if route is None:  # stage already finished: its batch delivered everything
            return
        # In the stage's context, so the engine records the event on its invoke_agent span
        # (this callback runs in the client's own task).
        with self._require_runtime().telemetry.use_context(route.context):
            self._deliver(route, str(msg.get("x")), msg.get("s"), msg.get("k"), msg.get("b"))

    def _deliver_batch(self, route: _Route, reply: WorkerReply) -> None:
        for seq, kind, blob in reply.events:
            self._deliver(route, reply.execution, seq, kind, blob)

    def _deliver(self, route: _Route, execution: str, seq: Any, kind: Any, blob: Any) -> None:
        ident = (execution, seq)
        if not isinstance(seq, int) or not isinstance(kind, str) or ident in route.seen:
            return
        route.seen.add(ident)
        rt = self._require_runtime()
        try:
            data = rt.codec.decode(blob, context=event_blob_context(route.job, route.token))
        except Exception as exc:
            log.warning("dropped an event of stage %r: %s", route.job.agent, error_type_name(exc))
            return
        if isinstance(data, dict):
            route.emit(kind, data)


class _TaskLostError(Exception):
    """Internal: the cluster dropped a stage's task (it is submitted again)."""


def _lost(exc: BaseException) -> bool:
    """True when a stage's task was lost by the cluster rather than failed by agentkit."""
    return not isinstance(exc, AgentkitError)


def _time_left(job: StageJob) -> float:
    return math.inf if job.deadline is None else job.deadline - time.time()


async def _result_of(future: Any) -> WorkerReply:
    reply: WorkerReply = await future
    return reply


def _decode(
    codec: Codec, blob: bytes, context: bytes, rtype: type[SerializableAgentResult]
) -> SerializableAgentResult:
    """Decode a stage result as the agent's result type. A failure a worker recorded has the
    base type's fields only (its clean hook never ran): that decodes as the base type."""
    try:
        return codec.decode_result(blob, context=context, result_type=rtype)
    except CodecError:
        if rtype is SerializableAgentResult:
            raise
        try:
            return codec.decode_result(blob, context=context)
        except CodecError:
            pass
        raise


def _result_type(rt: ExecutorRuntime, agent: str) -> type[SerializableAgentResult]:
    """The agent's own result type, so a custom one comes back as itself."""
    if agent in rt.registry:
        return rt.registry.get(agent).result_type
    return SerializableAgentResult
