"""Build store records and cache values holding real envelopes, for backend tests.

Backends check only the envelope structure; these helpers make well-formed agent-result
envelopes (``EnvelopeFlags.RESULT``) around a JSON payload.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.records import ResultRecord, RunRecord

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def envelope(payload: bytes, *, flags: EnvelopeFlags = EnvelopeFlags.RESULT) -> bytes:
    """A well-formed unsigned envelope holding ``payload``."""
    header = encode_header(LayerTag.JSON, flags, "", len(payload))
    tag = hashlib.sha256(b"agentkit/unsigned" + header + payload).digest()
    return header + payload + tag


def result_blob(value: object) -> bytes:
    """An agent-result envelope whose payload is ``value`` as JSON."""
    return envelope(json.dumps(value, sort_keys=True).encode())


def make_run(
    user_id: str,
    run_id: str,
    *,
    status: RunStatus = RunStatus.RUNNING,
    minute: int = 0,
    pipeline: tuple[str, ...] = ("triage", "data"),
) -> RunRecord:
    submitted = T0 + timedelta(minutes=minute)
    terminal = status.is_terminal
    return RunRecord(
        run_id=run_id,
        user_id=user_id,
        session_id="s-1",
        pipeline=list(pipeline),
        status=status,
        submitted_at=submitted,
        started_at=submitted + timedelta(seconds=1),
        finished_at=submitted + timedelta(seconds=30) if terminal else None,
        error={"type": "Boom", "message": "x"} if status is RunStatus.FAILED else None,
        owner="proc-1",
    )


def make_result(
    user_id: str,
    run_id: str,
    agent: str,
    *,
    status: AgentStatus = AgentStatus.SUCCEEDED,
    minute: int = 0,
    output: object = None,
) -> ResultRecord:
    finished = T0 + timedelta(minutes=minute, seconds=2)
    out = {"agent": agent, "run": run_id, "n": minute} if output is None else output
    return ResultRecord(
        run_id=run_id,
        user_id=user_id,
        agent=agent,
        agent_version="1",
        session_id="s-1",
        status=status,
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
        duration_s=1.0,
        output_json=json.dumps(out),
        blob=result_blob({"user": user_id, "run": run_id, "agent": agent, "out": out}),
    )
