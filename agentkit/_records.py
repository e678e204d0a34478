"""Build store records on the hot path without pydantic re-validating what is already valid.

``RunRecord`` and ``ResultRecord`` are frozen pydantic models. The engine fills every field
from values it has already validated (a ``SerializableAgentResult``, its own run state), so
it skips validation. ``model_construct`` still walks the fields for defaults; with every field
given, setting the instance state directly is what it ends up doing, at a fraction of the
cost. :func:`_check` proves the shortcut equal to a validated construction once at import and
falls back to ``model_construct`` otherwise (e.g. a pydantic release that stores state
differently).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from agentkit._fields_set import SharedFieldsSet
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.records import ResultRecord, RunRecord

__all__ = ["make_result_record", "make_run_record"]

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__


_ALL_FIELDS: dict[type[BaseModel], SharedFieldsSet] = {}


def _direct(cls: type[M], values: dict[str, Any]) -> M:
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    every = _ALL_FIELDS.get(cls)
    if every is None:
        every = _ALL_FIELDS[cls] = SharedFieldsSet(cls.model_fields)
    _set(model, "__pydantic_fields_set__", every if len(values) == len(every) else set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def _check(cls: type[BaseModel], sample: dict[str, Any]) -> bool:
    try:
        fast = _direct(cls, dict(sample))
        slow = cls(**sample)
        return (
            set(cls.model_fields) == set(sample)
            and not cls.__private_attributes__
            and fast == slow
            and fast.model_dump() == slow.model_dump()
            and fast.model_dump_json() == slow.model_dump_json()
        )
    except Exception:
        return False


_NOW = datetime(2026, 1, 1, tzinfo=UTC)
_RESULT_OK = _check(
    ResultRecord,
    {
        "run_id": "r",
        "user_id": "u",
        "agent": "a",
        "agent_version": "1",
        "session_id": None,
        "status": AgentStatus.SUCCEEDED,
        "started_at": _NOW,
        "finished_at": _NOW,
        "duration_s": 0.0,
        "output_json": "{}",
        "blob": b"x",
    },
)
_RUN_OK = _check(
    RunRecord,
    {
        "run_id": "r",
        "user_id": "u",
        "session_id": None,
        "pipeline": ["a"],
        "status": RunStatus.QUEUED,
        "submitted_at": _NOW,
        "started_at": None,
        "finished_at": None,
        "error": None,
        "owner": "o",
    },
)


def make_result_record(values: dict[str, Any]) -> ResultRecord:
    """A ResultRecord from a complete dict of already-valid field values."""
    if _RESULT_OK:
        return _direct(ResultRecord, values)
    return ResultRecord.model_construct(**values)


def make_run_record(values: dict[str, Any]) -> RunRecord:
    """A RunRecord from a complete dict of already-valid field values."""
    if _RUN_OK:
        return _direct(RunRecord, values)
    return RunRecord.model_construct(**values)
