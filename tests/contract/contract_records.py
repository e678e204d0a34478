"""Build store records and cache values the way the engine does, for backend tests.

Every blob is real codec output: a :class:`SerializableAgentResult` encoded with
``Codec.encode_result`` under a signing key, bound to the context the engine uses
(``store:{run_id}:{agent}`` for store records, the cache key for cache values).
:func:`envelope` builds raw envelopes for the negative tests (e.g. a non-result envelope).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from agentkit.codec import Codec
from agentkit.envelope import EnvelopeFlags, LayerTag, encode_header
from agentkit.result import SerializableAgentResult
from agentkit.status import AgentStatus, RunStatus
from agentkit.store.records import ResultRecord, RunRecord

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CODEC = Codec({"contract-1": b"contract-suite-signing-key-32-bytes!"})


def store_context(run_id: str, agent: str) -> bytes:
    """The context the engine binds store blobs to."""
    return f"store:{run_id}:{agent}".encode()


def envelope(payload: bytes, *, flags: EnvelopeFlags = EnvelopeFlags.RESULT) -> bytes:
    """A well-formed unsigned envelope holding ``payload``."""
    header = encode_header(LayerTag.JSON, flags, "", len(payload))
    tag = hashlib.sha256(b"agentkit/unsigned" + header + payload).digest()
    return header + payload + tag


def result_blob(value: object, context: bytes = b"contract-cache") -> bytes:
    """Codec bytes of a result whose output is ``value`` (deterministic for equal values)."""
    result = SerializableAgentResult(
        agent="cache-test", user_id="contract", run_id="run-cache", output=value
    )
    return CODEC.encode_result(result, context=context)


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
    result = SerializableAgentResult(
        agent=agent,
        agent_version="1",
        user_id=user_id,
        run_id=run_id,
        session_id="s-1",
        status=status,
        started_at=finished - timedelta(seconds=1),
        finished_at=finished,
        duration_s=1.0,
        output={"agent": agent, "run": run_id, "n": minute} if output is None else output,
    )
    return ResultRecord.from_result(
        result, CODEC.encode_result(result, store_context(run_id, agent))
    )


def decode_record(rec: ResultRecord) -> SerializableAgentResult:
    """Decode a stored record's blob as the engine would (verifying its signature)."""
    return CODEC.decode_result(rec.blob, context=store_context(rec.run_id, rec.agent))
