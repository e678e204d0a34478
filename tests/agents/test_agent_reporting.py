"""The reporting agent: structured report plus markdown, shaped by its clean hook."""

from __future__ import annotations

import pytest

from agentkit.sanitizer import ObjectSanitizer


@pytest.fixture
def reporting(plugin):
    return plugin("reporting")


TRIAGE = {"intent": "cost_reduction", "urgency": "normal"}
DATA = {
    "account": "acct",
    "window_days": 30,
    "period": {"first": "2026-10-01T00:00:00Z", "last": "2026-10-30T12:00:00Z", "days": 30},
    "totals": {"calls": 1234, "cost": 80.0},
    "by_model": [
        {"model": "gpt-4o", "calls": 1000, "cost": 70.0},
        {"model": "gpt-4o-mini", "calls": 200, "cost": 8.0},
        {"model": "claude-3-haiku", "calls": 30, "cost": 1.5},
        {"model": "gemini-1.5-flash", "calls": 4, "cost": 0.5},
    ],
    "by_team": [{"team": "search"}, {"team": "support"}],
}
SAVINGS = {
    "monthly_spend_usd": 80.0,
    "total_monthly_savings_usd": 30.0,
    "savings_pct": 37.5,
    "findings": [
        {
            "rank": 1,
            "kind": "model_downgrade",
            "title": "Cheaper model",
            "monthly_savings_usd": 20.0,
            "affected_calls": 500,
            "confidence": "high",
            "evidence": {"x": 1},
        },
        {
            "rank": 2,
            "kind": "batching",
            "title": "Batch",
            "monthly_savings_usd": 12.5,
            "affected_calls": 90,
            "confidence": "medium",
            "evidence": {},
        },
    ],
}


def test_build_report_structure(reporting):
    rep = reporting.build_report(TRIAGE, DATA, SAVINGS)
    d = rep.to_dict()
    assert d["headline"] == "acct could save $30.00/month (37.5% of $80.00) with 2 changes."
    assert [m["model"] for m in d["spend"]["top_models"]] == [
        "gpt-4o",
        "gpt-4o-mini",
        "claude-3-haiku",
    ]
    assert d["spend"]["top_teams"] == ["search", "support"]
    assert [f["kind"] for f in d["savings"]["findings"]] == ["model_downgrade", "batching"]
    assert "evidence" not in d["savings"]["findings"][0]
    assert d["next_steps"][0].startswith("A/B-test the cheaper model")


def test_urgent_requests_put_no_risk_changes_first(reporting):
    rep = reporting.build_report({**TRIAGE, "urgency": "high"}, DATA, SAVINGS)
    assert rep.next_steps[0].startswith("Move background jobs to the batch API")


def test_markdown(reporting):
    md = reporting.build_report(TRIAGE, DATA, SAVINGS).render_markdown()
    assert md.startswith("# AI spend report: acct\n")
    assert "| gpt-4o | 1,000 | 70.00 |" in md
    assert "| 1 | Cheaper model | 20.00 | 500 | high |" in md
    assert "## Next steps" in md


def test_no_usage_headline(reporting):
    empty = {**DATA, "totals": {"calls": 0, "cost": 0.0}, "by_model": [], "by_team": []}
    rep = reporting.build_report(TRIAGE, empty, {**SAVINGS, "findings": []})
    assert rep.headline == "No usage found for acct in the last 30 days."
    assert "Nothing to optimise" in rep.render_markdown()


def test_clean_hook_shapes_report_and_markdown(reporting):
    rep = reporting.build_report(TRIAGE, DATA, SAVINGS)
    out = reporting.ReportResult.clean_result(rep, ObjectSanitizer())
    assert set(out) == {"report", "markdown"}
    assert out["report"] == rep.to_dict() and out["markdown"] == rep.render_markdown()


async def test_agent_run(registry, make_ctx):
    ctx, emitted = make_ctx(
        "reporting", upstream={"triage": TRIAGE, "data": DATA, "optimizations_core": SAVINGS}
    )
    rep = await registry.create("reporting").run(ctx)
    assert rep.account == "acct" and emitted == [("report_ready", {"findings": 2})]
    assert registry.get("reporting").depends_on == ("triage", "data", "optimizations_core")
