"""What a store keeps: one record per run, one per stage result (holding codec bytes)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit._envelope_check import check_result_envelope
from agentkit.status import AgentStatus, RunStatus

if TYPE_CHECKING:
    from agentkit.result import SerializableAgentResult

__all__ = ["ResultRecord", "RunRecord", "StoredRun"]


class RunRecord(BaseModel):
    """One run: who, what, and how it ended. Upserted as the run progresses."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    user_id: str
    session_id: str | None = None
    pipeline: list[str]
    status: RunStatus
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: dict[str, Any] | None = None
    owner: str = Field(default="", description="id of the supervisor process running it")


class ResultRecord(BaseModel):
    """One stage result: queryable columns plus the codec envelope that is the truth."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    user_id: str
    agent: str
    agent_version: str
    session_id: str | None = None
    status: AgentStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    output_json: str = Field(description="the clean output as JSON text, for querying")
    blob: bytes = Field(description="codec envelope of the SerializableAgentResult")

    @classmethod
    def from_result(cls, result: SerializableAgentResult, blob: bytes) -> ResultRecord:
        """Build the record of ``result`` whose codec bytes are ``blob``.

        Raises:
            InvalidPayloadError: ``blob`` is not an agent-result envelope.
        """
        check_result_envelope(blob)
        return cls(
            run_id=result.run_id,
            user_id=result.user_id,
            agent=result.agent,
            agent_version=result.agent_version,
            session_id=result.session_id,
            status=result.status,
            started_at=result.started_at,
            finished_at=result.finished_at,
            duration_s=result.duration_s,
            output_json=result.output_json(),
            blob=blob,
        )


class StoredRun(BaseModel):
    """A run with its stage results, as read back from a store."""

    model_config = ConfigDict(frozen=True)

    run: RunRecord
    results: list[ResultRecord]
