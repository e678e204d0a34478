"""optimizations_core: savings estimates from aggregated usage, and its shaping clean hook."""

from __future__ import annotations

import math

import pytest

from agentkit.errors import ConfigurationError
from agentkit.sanitizer import ObjectSanitizer


@pytest.fixture
def opt(plugin):
    return plugin("optimizations_core")


def usage(**over):
    data = {
        "account": "acct",
        "period": {"first": "x", "last": "y", "days": 10},
        "totals": {"calls": 1000, "cost": 100.0, "tokens_in": 0, "tokens_out": 0},
        "low_complexity": [
            {
                "model": "gpt-4o",
                "calls": 100,
                "tokens_in": 1_000_000,
                "tokens_out": 100_000,
                "cost": 3.5,
            },
            {"model": "gpt-4o-mini", "calls": 50, "tokens_in": 10, "tokens_out": 10, "cost": 0.01},
        ],
        "repeated_prompts": {
            "groups": 2,
            "calls": 62,
            "repeat_calls": 60,
            "repeat_cost": 10.0,
            "top": [{"prompt_hash": "p1"}, {"prompt_hash": "p2"}],
        },
        "background": [
            {"model": "gpt-4o", "calls": 300, "cost": 20.0, "peak_calls": 120, "peak_cost": 8.0}
        ],
        "hourly_load": [{"hour": h, "calls": 40 if h == 14 else 10} for h in range(24)],
        "peak_hours": list(range(8, 18)),
    }
    data.update(over)
    return data


# monthly = window figure * 30 / 10 days
EXPECTED = {
    "model_downgrade": (3.5 - (0.15 + 0.06)) * 0.80 * 3,  # priced at gpt-4o-mini, 80% adoption
    "prompt_caching": 10.0 * 0.85 * 3,
    "batching": 20.0 * 0.70 * 0.50 * 3,
    "off_peak": 8.0 * 0.20 * 3,
}


def test_each_finding_is_computed_from_the_data(opt):
    plan = opt.find_savings(usage())
    got = {f.kind: f for f in plan.findings}
    assert set(got) == set(EXPECTED)
    for kind, value in EXPECTED.items():
        assert got[kind].monthly_savings_usd == pytest.approx(value), kind
    assert got["model_downgrade"].evidence["models"][0]["to"] == "gpt-4o-mini"
    assert len(got["model_downgrade"].evidence["models"]) == 1  # no cheaper model than mini
    assert got["prompt_caching"].affected_calls == 60
    assert got["off_peak"].evidence["busiest_hour"] == 14
    assert got["off_peak"].evidence["peak_to_average"] == round(40 / (270 / 24), 2)
    assert plan.monthly_spend_usd == pytest.approx(300.0)


def test_total_combines_overlapping_findings(opt):
    plan = opt.find_savings(usage())
    expected = 300 * (1 - math.prod(1 - v / 300 for v in EXPECTED.values()))
    assert plan.total_monthly_savings_usd == pytest.approx(expected)
    assert max(EXPECTED.values()) < plan.total_monthly_savings_usd < sum(EXPECTED.values())


def test_assumptions_change_estimates_and_are_validated(opt):
    plan = opt.find_savings(usage(), {"cache_hit_rate": 0.5})
    caching = next(f for f in plan.findings if f.kind == "prompt_caching")
    assert caching.monthly_savings_usd == pytest.approx(10.0 * 0.5 * 3)
    for bad in ({"nope": 1}, {"cache_hit_rate": 2}, {"batch_discount": "x"}, [1]):
        with pytest.raises(ConfigurationError):
            opt.find_savings(usage(), bad)


def test_no_usage_no_findings(opt):
    empty = usage(
        totals={"calls": 0, "cost": 0.0},
        period={"days": 0},
        low_complexity=[],
        repeated_prompts={
            "groups": 0,
            "calls": 0,
            "repeat_calls": 0,
            "repeat_cost": 0.0,
            "top": [],
        },
        background=[],
        hourly_load=[{"hour": h, "calls": 0} for h in range(24)],
    )
    plan = opt.find_savings(empty)
    assert plan.findings == [] and plan.total_monthly_savings_usd == 0.0


def test_clean_hook_ranks_rounds_and_drops(opt):
    plan = opt.find_savings(usage(), {"min_monthly_savings": 5.0})
    out = opt.SavingsResult.clean_result(plan, ObjectSanitizer())
    assert [f["kind"] for f in out["findings"]] == ["prompt_caching", "batching", "model_downgrade"]
    assert [f["rank"] for f in out["findings"]] == [1, 2, 3]
    assert out["findings"][0]["monthly_savings_usd"] == 25.5
    assert out["findings"][2]["monthly_savings_usd"] == round(EXPECTED["model_downgrade"], 2)
    assert out["dropped"] == ["off_peak"]
    assert out["monthly_spend_usd"] == 300.0
    kept = [v for k, v in EXPECTED.items() if k != "off_peak"]
    assert out["total_monthly_savings_usd"] == round(
        300 * (1 - math.prod(1 - v / 300 for v in kept)), 2
    )
    assert out["savings_pct"] == round(100 * out["total_monthly_savings_usd"] / 300, 1)
    assert type(out["findings"][0]) is dict and type(out["findings"][0]["evidence"]) is dict


async def test_agent_run(registry, make_ctx):
    ctx, emitted = make_ctx("optimizations_core", upstream={"data": usage()})
    plan = await registry.create("optimizations_core").run(ctx)
    assert len(plan.findings) == 4 and emitted == [("findings", {"count": 4})]
    assert registry.get("optimizations_core").depends_on == ("data",)
