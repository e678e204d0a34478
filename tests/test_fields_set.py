"""The fields set shared by engine-built models: pydantic's operations work, mutation refuses."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

import pytest

from agentkit._fields_set import SharedFieldsSet
from agentkit._records import make_run_record
from agentkit.result import SerializableAgentResult
from agentkit.status import RunStatus

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _result() -> SerializableAgentResult:
    meta = {
        "agent": "a",
        "agent_version": "1",
        "user_id": "u",
        "run_id": "r",
        "session_id": None,
        "started_at": NOW,
        "finished_at": NOW,
        "attempt": 1,
    }
    return SerializableAgentResult._clean_raw({"x": 1}, meta)[0]


def test_engine_built_results_share_one_fields_set_equal_to_a_validated_ones() -> None:
    a, b = _result(), _result()
    assert a.model_fields_set is b.model_fields_set
    assert isinstance(a.model_fields_set, SharedFieldsSet)
    validated = SerializableAgentResult.model_validate(a.model_dump())
    assert a.model_fields_set == validated.model_fields_set


def test_copies_get_plain_sets_and_updates_work() -> None:
    r = _result()
    for other in (r.model_copy(), copy.copy(r), copy.deepcopy(r), pickle.loads(pickle.dumps(r))):
        assert other == r
        assert type(other.model_fields_set) is set
    updated = r.model_copy(update={"attempt": 2})
    assert updated.attempt == 2 and r.attempt == 1
    assert type(updated.model_fields_set) is set


def test_changing_the_shared_set_is_refused_and_leaves_it_whole() -> None:
    r = _result()
    shared = r.model_fields_set
    before = set(shared)
    for change in (
        lambda: shared.add("x"),
        lambda: shared.discard("agent"),
        lambda: shared.clear(),
        lambda: shared.update({"x"}),
        lambda: shared.__ior__({"x"}),
    ):
        with pytest.raises(TypeError, match="shared by many models"):
            change()
    assert shared == before


def test_run_records_share_one_only_when_every_field_is_given() -> None:
    values = {
        "run_id": "r",
        "user_id": "u",
        "session_id": None,
        "pipeline": ["a"],
        "status": RunStatus.QUEUED,
        "submitted_at": NOW,
        "started_at": None,
        "finished_at": None,
        "error": None,
        "owner": "o",
    }
    a, b = make_run_record(dict(values)), make_run_record(dict(values))
    assert a.model_fields_set is b.model_fields_set == set(values)
