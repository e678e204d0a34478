"""The store plug point: durable run records, every read scoped by user.

Stores are durable: when :meth:`Store.save_results` returns, the records survive a crash
("acknowledged means persisted"). Every read takes the ``user_id`` and never returns another
user's rows (design invariant 2). Result writes accept only records whose blob is an
agent-result envelope (design invariant 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from agentkit._envelope_check import check_result_envelope
from agentkit.errors import ConfigurationError, InvalidPayloadError
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.records import ResultRecord, RunRecord, StoredRun

__all__ = ["BaseStore", "Store"]


@runtime_checkable
class Store(Protocol):
    """What the engine needs from a store. Implement this to plug in your own."""

    async def start(self) -> None:
        """Connect, apply migrations, recover runs a crashed process left running."""
        ...

    async def save_run(self, run: RunRecord) -> None:
        """Insert or update a run record (idempotent by ``run_id``)."""
        ...

    async def save_results(self, records: Sequence[ResultRecord]) -> None:
        """Durably save stage results (idempotent by ``(run_id, agent)``)."""
        ...

    async def get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        """The run and its results, or ``None`` if it does not exist *for this user*."""
        ...

    async def list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """This user's runs, newest first."""
        ...

    async def list_results(
        self,
        user_id: str,
        *,
        run_id: str | None = None,
        agent: str | None = None,
        status: AgentStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[ResultRecord]:
        """This user's stage results matching the filters, newest first."""
        ...

    async def aclose(self) -> None:
        """Flush pending writes and release resources; idempotent."""
        ...


class BaseStore:
    """Base class for in-tree stores: validates arguments, then calls the ``_``-methods."""

    url_schemes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._started = False
        self._closed = False

    async def start(self) -> None:
        if not self._started:
            await self._start()
            self._started = True

    async def save_run(self, run: RunRecord) -> None:
        check_run_record(run)
        await self._save_run(run)

    async def save_results(self, records: Sequence[ResultRecord]) -> None:
        check_result_records(records)
        if records:
            await self._save_results(list(records))

    async def get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        return await self._get_run(_need_str("user_id", user_id), _need_str("run_id", run_id))

    async def list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        _check_limit(limit)
        return await self._list_runs(
            _need_str("user_id", user_id), status=status, since=since, until=until, limit=limit
        )

    async def list_results(
        self,
        user_id: str,
        *,
        run_id: str | None = None,
        agent: str | None = None,
        status: AgentStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[ResultRecord]:
        _check_limit(limit)
        return await self._list_results(
            _need_str("user_id", user_id),
            run_id=run_id,
            agent=agent,
            status=status,
            since=since,
            until=until,
            limit=limit,
        )

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._aclose()

    async def __aenter__(self) -> BaseStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- for subclasses ------------------------------------------------------------------

    async def _start(self) -> None:
        return None

    async def _save_run(self, run: RunRecord) -> None:
        raise NotImplementedError

    async def _save_results(self, records: list[ResultRecord]) -> None:
        raise NotImplementedError

    async def _get_run(self, user_id: str, run_id: str) -> StoredRun | None:
        raise NotImplementedError

    async def _list_runs(
        self,
        user_id: str,
        *,
        status: RunStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[RunRecord]:
        raise NotImplementedError

    async def _list_results(
        self,
        user_id: str,
        *,
        run_id: str | None,
        agent: str | None,
        status: AgentStatus | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> list[ResultRecord]:
        raise NotImplementedError

    async def _aclose(self) -> None:
        return None


def check_run_record(run: object) -> None:
    """Raise :class:`InvalidPayloadError` unless ``run`` is a :class:`RunRecord`."""
    if not isinstance(run, RunRecord):
        raise InvalidPayloadError(f"save_run takes a RunRecord, got {type(run).__name__}")


def check_result_records(records: Sequence[object]) -> None:
    """Raise :class:`InvalidPayloadError` unless every record is a :class:`ResultRecord`
    holding a result envelope (invariant 1 at the store boundary)."""
    for rec in records:
        if not isinstance(rec, ResultRecord):
            raise InvalidPayloadError(
                "save_results takes ResultRecord objects built with "
                f"ResultRecord.from_result(), got {type(rec).__name__}"
            )
        check_result_envelope(rec.blob)


def _need_str(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty str, got {value!r:.80}")
    return value


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise ConfigurationError(f"limit must be an int in 1..10000, got {limit!r}")
