"""The engine's record shortcut builds records equal to validated ones."""

from __future__ import annotations

from datetime import UTC, datetime

from agentkit import _records
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.records import ResultRecord, RunRecord


def test_shortcut_is_active_and_equal_to_validation() -> None:
    assert _records._RESULT_OK and _records._RUN_OK
    now = datetime.now(UTC)
    run = {
        "run_id": "r1",
        "user_id": "alice",
        "session_id": "s",
        "pipeline": ["a", "b"],
        "status": RunStatus.FAILED,
        "submitted_at": now,
        "started_at": now,
        "finished_at": now,
        "error": {"agent": "b", "type": "x", "message": "y"},
        "owner": "o",
    }
    fast_run = _records.make_run_record(dict(run))
    assert isinstance(fast_run, RunRecord) and fast_run == RunRecord(**run)
    result = {
        "run_id": "r1",
        "user_id": "alice",
        "agent": "a",
        "agent_version": "2",
        "session_id": None,
        "status": AgentStatus.SKIPPED,
        "started_at": None,
        "finished_at": None,
        "duration_s": None,
        "output_json": "null",
        "blob": b"AKE",
    }
    fast_result = _records.make_result_record(dict(result))
    assert isinstance(fast_result, ResultRecord) and fast_result == ResultRecord(**result)
    assert fast_result.model_dump_json() == ResultRecord(**result).model_dump_json()
