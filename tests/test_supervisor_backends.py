"""Supervisor and its backends: the outbox around remote stores, telemetry of the backends,
the codec recipe shared with workers, and stage results decoded as their agents' types."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from agentkit.errors import ConfigurationError
from agentkit.result import SerializableAgentResult
from agentkit.sanitizer import ObjectSanitizer
from agentkit.signing import build_codec
from agentkit.status import RunStatus
from agentkit.store.outbox import OutboxStore
from agentkit.store.postgres import PostgresStore
from agentkit.store.sqlite import SQLiteStore
from agentkit.supervisor import DEFAULT_OUTBOX_DIR, Supervisor
from agentkit.telemetry import Telemetry
from agentkit.telemetry._telemetry import _NoopTelemetry
from agentkit.testing import RecordingStore, make_agent

PG = "postgresql://postgres@127.0.0.1:5432/test"
KEY = b"supervisor-backends-test-key-0123"


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GaugeRecorder(_NoopTelemetry):
    """Records the two backend gauges; binds backends the way Telemetry does."""

    def __init__(self) -> None:
        super().__init__()
        self.depths: list[int] = []
        self.states: list[tuple[str, str]] = []

    bind_backends = Telemetry.bind_backends

    def set_outbox_depth(self, n: int) -> None:
        self.depths.append(n)

    def set_circuit_state(self, name: str, state: str | int) -> None:
        self.states.append((name, str(state)))


class Tagged(SerializableAgentResult):
    @classmethod
    def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
        return {"tagged": raw}


AGENTS = [make_agent("a", returns=3), make_agent("b", returns=4, depends_on=("a",))]


def test_remote_store_urls_get_an_outbox_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sup = Supervisor(AGENTS, store=PG + "?schema=akt_never_started")
    assert isinstance(sup.store, OutboxStore)
    assert isinstance(sup.store.inner, PostgresStore)
    path = sup.store.outbox.path
    assert path.parent == Path(DEFAULT_OUTBOX_DIR) and path.name.startswith("postgresql-")
    assert "postgres@" not in path.name  # a hash, not the URL
    # the same URL gets the same file (a restart replays it); another URL another file
    again = Supervisor(AGENTS, store=PG + "?schema=akt_never_started")
    other = Supervisor(AGENTS, store=PG + "?schema=akt_other")
    assert isinstance(again.store, OutboxStore) and isinstance(other.store, OutboxStore)
    assert again.store.outbox.path == path != other.store.outbox.path
    # a password is not part of the file name's hash: rotating it keeps the outbox
    with_pw = Supervisor(
        AGENTS, store=PG.replace("postgres@", "postgres:pw@") + "?schema=akt_never_started"
    )
    assert isinstance(with_pw.store, OutboxStore) and with_pw.store.outbox.path == path


def test_outbox_option(tmp_path: Path) -> None:
    chosen = tmp_path / "my" / "outbox.db"
    sup = Supervisor(AGENTS, store=PG, outbox=chosen)
    assert isinstance(sup.store, OutboxStore) and sup.store.outbox.path == chosen
    assert isinstance(Supervisor(AGENTS, store=PG, outbox=False).store, PostgresStore)
    # a local SQLite file is durable by itself: no outbox
    local = Supervisor(AGENTS, store=f"sqlite:///{tmp_path / 'runs.db'}")
    assert isinstance(local.store, SQLiteStore)
    with pytest.raises(ConfigurationError, match="OutboxStore"):
        Supervisor(AGENTS, store=RecordingStore(), outbox=tmp_path / "x.db")
    with pytest.raises(ConfigurationError, match="outbox must be"):
        Supervisor(AGENTS, store=PG, outbox=True)
    with pytest.raises(ConfigurationError, match="outbox must be"):
        Supervisor(AGENTS, store=PG, outbox=3)  # type: ignore[arg-type]


async def test_store_down_runs_complete_into_the_outbox_and_replay_later(tmp_path: Path) -> None:
    """Issue 4 §3 through the Supervisor: PostgreSQL unreachable -> runs still succeed and are
    durable in the outbox (depth reported as a metric); a restart against the real server
    replays them into it."""
    schema = f"akt_supout_{uuid.uuid4().hex[:10]}"
    outbox = tmp_path / "outbox.db"
    down = f"postgresql://postgres@127.0.0.1:{_dead_port()}/test?schema={schema}"
    tel = GaugeRecorder()
    runs: list[tuple[str, str]] = []
    async with Supervisor(AGENTS, store=down, outbox=outbox, signing_key=KEY, telemetry=tel) as sup:
        assert isinstance(sup.store, OutboxStore)
        for u in range(3):
            res = await sup.run(f"user-{u}", ["a", "b"])
            assert res.status is RunStatus.SUCCEEDED
            runs.append((res.user_id, res.run_id))
        depth = sup.store.depth
        assert depth >= 3 * 3  # queued/final run records and two results per run
        assert tel.depths[-1] == depth and max(tel.depths) == depth
    try:
        async with Supervisor(
            AGENTS, store=f"{PG}?schema={schema}", outbox=outbox, signing_key=KEY
        ) as sup:
            assert isinstance(sup.store, OutboxStore)
            assert await sup.store.flush(timeout=20)
            assert sup.store.depth == 0
            for user, run_id in runs:
                got = await sup.store.inner.get_run(user, run_id)
                assert got is not None and got.run.status is RunStatus.SUCCEEDED
                assert sorted(r.agent for r in got.results) == ["a", "b"]
    finally:
        conn = await asyncpg.connect(PG)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def test_cache_circuit_state_is_reported(tmp_path: Path) -> None:
    tel = GaugeRecorder()
    cache = f"redis://127.0.0.1:{_dead_port()}/0?failure_threshold=2&op_timeout=0.2"
    async with Supervisor(
        AGENTS, cache=cache, store=RecordingStore(), signing_key=KEY, telemetry=tel
    ) as sup:
        assert [state for _, state in tel.states] == ["closed"]
        for u in range(3):  # cache writes fail; runs do not
            assert (await sup.run(f"user-{u}", ["a", "b"])).status is RunStatus.SUCCEEDED
        assert [state for _, state in tel.states][-1] == "open"


async def test_supervisor_codec_is_build_codec() -> None:
    async with Supervisor(AGENTS, store=RecordingStore(), signing_key=KEY) as sup:
        res = await sup.run("user-1", ["a"])
    ours = build_codec(KEY)
    assert ours.signing_key_id == sup.codec.signing_key_id is not None
    blob = sup.codec.encode_result(res.stages["a"], context=b"ctx")
    assert ours.decode_result(blob, context=b"ctx").output == 3
    assert build_codec(None).signing_key_id is None
    with pytest.raises(ConfigurationError):
        build_codec(b"short")


async def test_results_come_back_as_the_agents_result_type(tmp_path: Path) -> None:
    agents = [make_agent("t", returns=5, result_type=Tagged)]
    async with Supervisor(agents, store=f"sqlite:///{tmp_path / 'r.db'}", signing_key=KEY) as sup:
        res = await sup.run("user-1", ["t"])
        assert type(res.stages["t"]) is Tagged
        stored = await sup.get_run("user-1", res.run_id)
        assert type(stored.stages["t"]) is Tagged and stored.stages["t"].output == {"tagged": 5}
        cached = await sup.cached_result("user-1", res.run_id, "t")
        assert type(cached) is Tagged and cached.output == {"tagged": 5}
