"""What agent authors write: a :class:`SubAgent` subclass, run with an :class:`AgentContext`.

A minimal agent::

    class Triage(SubAgent):
        name = "triage"
        version = "2"
        timeout = 10.0

        async def run(self, ctx: AgentContext) -> dict[str, str]:
            ctx.emit("progress", step="classify")
            return {"category": "cost"}

The engine makes a fresh instance for every run (no state is shared across runs or users),
calls ``setup``, ``run`` and ``teardown``, and passes the return value through
``result_type.clean_result`` before anything else sees it. A plain ``def run`` runs in a
worker thread.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentkit._fastinit import fast_frozen_init
from agentkit.errors import AgentDefinitionError, RunCancelledError
from agentkit.events import ENGINE_KINDS
from agentkit.result import SerializableAgentResult

__all__ = ["AgentContext", "CancelToken", "SubAgent", "validate_agent_class"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_KIND = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


class CancelToken:
    """A flag the engine sets when a stage attempt is cancelled or times out.

    Async agents are cancelled at their next ``await``; thread agents (plain ``def run``)
    cannot be interrupted and should poll :attr:`AgentContext.cancelled`.
    """

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        """Mark as cancelled."""
        self.cancelled = True


def _no_emit(kind: str, data: dict[str, Any]) -> None:
    return None


@fast_frozen_init
@dataclass(frozen=True, slots=True)
class AgentContext:
    """Read-only view of one stage attempt of one run, for one user.

    Attributes:
        user_id: the run's user.
        run_id: the run.
        session_id: the conversation/thread the run belongs to, if any.
        agent: this stage's agent name.
        input: the run input, as passed to ``Supervisor.submit``.
        upstream: clean outputs of the stages this one depends on (directly or not), by
            agent name — never raw objects.
        attempt: 1 for the first attempt, 2 for the first retry, …
        deadline: when this attempt must finish, on the ``time.monotonic()`` clock, or
            ``None`` (see :meth:`time_left`).
    """

    user_id: str
    run_id: str
    session_id: str | None
    agent: str
    input: Any
    upstream: Mapping[str, Any]
    attempt: int = 1
    deadline: float | None = None
    user_hash: str = ""
    _emit: Callable[[str, dict[str, Any]], None] = field(default=_no_emit, repr=False)
    _token: CancelToken = field(default_factory=CancelToken, repr=False)

    def emit(self, kind: str, **data: Any) -> None:
        """Send a progress event to this run's caller.

        ``data`` is sanitized like a result before it leaves the agent. Safe to call from
        a plain ``def run`` worker thread.

        Raises:
            AgentDefinitionError: ``kind`` is not an identifier or is one the engine uses.
        """
        if kind in ENGINE_KINDS or not _KIND.match(kind):
            raise AgentDefinitionError(
                f"emit kind {kind!r} is invalid: use an identifier such as 'progress' "
                f"(not one of {sorted(ENGINE_KINDS)})"
            )
        self._emit(kind, data)

    @property
    def cancelled(self) -> bool:
        """True once this attempt was cancelled or timed out; long loops should stop."""
        return self._token.cancelled

    def check_cancelled(self) -> None:
        """Raise :class:`~agentkit.RunCancelledError` if this attempt was cancelled."""
        if self._token.cancelled:
            raise RunCancelledError(
                f"run {self.run_id} stage {self.agent!r} was cancelled; stop working"
            )

    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (may be negative), or ``None`` without one."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger bound to this run; records carry the run id and a keyed user hash."""
        return logging.LoggerAdapter(
            logging.getLogger(f"agentkit.agent.{self.agent}"),
            {"run_id": self.run_id, "user_hash": self.user_hash, "agent": self.agent},
        )


class SubAgent:
    """Base class of agent plugins.

    Class attributes:
        name: unique registry name (letters, digits, ``_ . -``); classes without one are
            abstract bases and cannot be registered.
        version: the agent's version, recorded with each result.
        depends_on: names of agents whose outputs this one reads from ``ctx.upstream``.
        timeout: seconds per attempt (``None``: ``Limits.stage_timeout``).
        retries: extra attempts after a failure matching ``retry_on``.
        retry_on: exception types worth retrying (a timeout is an
            :class:`~agentkit.AgentTimeoutError`, itself a ``TimeoutError``).
        result_type: the :class:`~agentkit.SerializableAgentResult` subclass whose
            ``clean_result`` hook cleans this agent's raw return value.
        description: one line for ``agentkit agents``.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    depends_on: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float | None] = 30.0
    retries: ClassVar[int] = 0
    retry_on: ClassVar[tuple[type[BaseException], ...]] = (Exception,)
    result_type: ClassVar[type[SerializableAgentResult]] = SerializableAgentResult
    description: ClassVar[str] = ""

    #: set per class: True when ``run`` is a coroutine function
    run_is_async: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("depends_on"), list):
            cls.depends_on = tuple(cls.__dict__["depends_on"])
        cls.run_is_async = inspect.iscoroutinefunction(cls.run)
        if getattr(cls, "name", None) is not None:
            validate_agent_class(cls)

    async def setup(self, ctx: AgentContext) -> None:
        """Called before :meth:`run` on the fresh instance (optional)."""

    async def teardown(self, ctx: AgentContext) -> None:
        """Called after :meth:`run`, even when it failed (optional)."""

    async def run(self, ctx: AgentContext) -> Any:
        """Do the work and return a result (any object: the clean hook makes it safe)."""
        raise NotImplementedError(f"{type(self).__name__} must implement run(self, ctx)")


def _where(cls: type) -> str:
    try:
        src = inspect.getsourcefile(cls)
    except TypeError:
        src = None
    return f"{cls.__module__}.{cls.__qualname__}" + (f" ({src})" if src else "")


def validate_agent_class(cls: object) -> type[SubAgent]:
    """Check that ``cls`` is a well-formed, concrete :class:`SubAgent` subclass.

    Raises:
        AgentDefinitionError: with the class, its file and what to fix.
    """
    if not (isinstance(cls, type) and issubclass(cls, SubAgent)) or cls is SubAgent:
        raise AgentDefinitionError(f"{cls!r} is not a SubAgent subclass; subclass SubAgent")
    where = _where(cls)
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise AgentDefinitionError(
            f"{where}: name must be 1-128 characters of letters, digits, '_', '.', '-', "
            f"got {name!r}"
        )
    if not isinstance(cls.version, str) or not cls.version:
        raise AgentDefinitionError(f"{where}: version must be a non-empty str")
    deps = cls.depends_on
    if not isinstance(deps, tuple) or not all(isinstance(d, str) for d in deps):
        raise AgentDefinitionError(f"{where}: depends_on must be a tuple of agent names")
    if name in deps:
        raise AgentDefinitionError(f"{where}: agent {name!r} cannot depend on itself")
    t = cls.timeout
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or t <= 0):
        raise AgentDefinitionError(f"{where}: timeout must be positive seconds or None")
    if isinstance(cls.retries, bool) or not isinstance(cls.retries, int) or cls.retries < 0:
        raise AgentDefinitionError(f"{where}: retries must be an int >= 0")
    ro = cls.retry_on
    if not isinstance(ro, tuple) or not all(
        isinstance(e, type) and issubclass(e, BaseException) for e in ro
    ):
        raise AgentDefinitionError(f"{where}: retry_on must be a tuple of exception types")
    rt = cls.result_type
    if not (isinstance(rt, type) and issubclass(rt, SerializableAgentResult)):
        raise AgentDefinitionError(
            f"{where}: result_type must be SerializableAgentResult or a subclass of it"
        )
    if cls.run is SubAgent.run:
        raise AgentDefinitionError(f"{where}: implement run(self, ctx)")
    return cls
