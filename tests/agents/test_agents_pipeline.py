"""The four reference agents end to end through a Supervisor: clean outputs, placeholders
for the data agent's live handles, only codec bytes in the backends, deterministic outputs."""

from __future__ import annotations

import pytest

from agentkit.codec import Codec
from agentkit.errors import RunNotFoundError
from agentkit.registry import AgentRegistry
from agentkit.supervisor import Supervisor
from agentkit.testing import RecordingCache, RecordingStore, assert_clean

PIPELINE = ["triage", "data", "optimizations_core", "reporting"]
HANDLES = {"$.db.connection", "$.db.cursor", "$.db.driver", "$.db.lock", "$.logger", "$.query"}


@pytest.fixture
def codec() -> Codec:
    return Codec(signing_keys=[("k1", b"reference-agents-test-key-32byte")])


async def test_pipeline_cleans_live_handles_and_backends_see_only_codec_bytes(registry, codec):
    cache, store = RecordingCache(codec), RecordingStore(codec)
    async with Supervisor(agents=registry, cache=cache, store=store, codec=codec) as sup:
        results = [
            await sup.run(user, PIPELINE, input={"request": "cut our gpt-4o costs, urgent"})
            for user in ("user-001", "user-002", "user-003")
        ]
        with pytest.raises(RunNotFoundError):
            await sup.get_run("user-001", results[1].run_id)
    for result in results:
        assert result.ok, result.error
        assert list(result.stages) == PIPELINE
        for stage in result.stages.values():
            assert_clean(stage.output)
        for name in ("triage", "optimizations_core", "reporting"):
            assert result.stages[name].report.total == 0, (name, result.stages[name].report)
        data = result.stages["data"]
        assert {e.path for e in data.report.entries} == HANDLES  # nothing else lost
        assert data.report.lossy
        placeholder = data.output["db"]["connection"]
        assert type(placeholder) is dict and "__agentkit_placeholder__" in placeholder
        assert data.output["account"] == result.user_id and data.output["totals"]["calls"] > 0
        savings = result.output("optimizations_core")
        assert [f["rank"] for f in savings["findings"]] == list(
            range(1, len(savings["findings"]) + 1)
        )
        assert savings["total_monthly_savings_usd"] > 0
        report = result.output("reporting")
        assert report["markdown"].startswith(f"# AI spend report: {result.user_id}\n")
        assert report["report"]["urgency"] == "high"
    cache.assert_invariant()
    store.assert_invariant()
    assert len(store.decoded) >= 3 * len(PIPELINE)


async def test_pipeline_is_deterministic(registry, codec):
    async with Supervisor(agents=registry, store=RecordingStore(codec), codec=codec) as sup:
        a = await sup.run("user-010", PIPELINE, input="monthly overview for search")
        b = await sup.run("user-010", PIPELINE, input="monthly overview for search")
    for name in ("triage", "optimizations_core", "reporting"):
        assert a.output(name) == b.output(name), name
    live = ("db", "logger", "query")
    strip = lambda out: {k: v for k, v in out.items() if k not in live}  # noqa: E731
    assert strip(a.output("data")) == strip(b.output("data"))


async def test_a_failing_stage_is_recorded_and_downstream_is_skipped(
    registry, plugin, codec, tmp_path
):
    class MissingData(plugin("data").DataAgent):
        dataset = tmp_path / "none.csv"

    agents = AgentRegistry([registry.get("triage"), MissingData, *map(registry.get, PIPELINE[2:])])
    async with Supervisor(agents=agents, store=RecordingStore(codec), codec=codec) as sup:
        result = await sup.run("user-001", PIPELINE, input={"request": "x"})
    assert not result.ok
    assert result.stages["triage"].ok
    data = result.stages["data"]
    assert str(data.status) == "failed"
    assert data.error is not None and data.error.type.endswith("ConfigurationError")
    assert "generate.py" in data.error.message
    assert [str(result.stages[n].status) for n in ("optimizations_core", "reporting")] == [
        "skipped",
        "skipped",
    ]
