"""The triage agent: intent, scope, urgency and window from the request text."""

from __future__ import annotations

import pytest

from agentkit.errors import ConfigurationError


@pytest.fixture
def triage(plugin):
    return plugin("triage")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Please cut our LLM costs, we need savings", "cost_reduction"),
        ("Give me a breakdown and summary of what we spent", "spend_report"),
        ("Why did the bill spike? It doubled unexpectedly", "anomaly"),
        ("Latency is slow and we hit the rate limit", "performance"),
    ],
)
def test_intent_from_keywords(triage, text, intent):
    out = triage.classify(text, account="a")
    assert out["intent"] == intent
    assert out["intent_scores"][intent] >= 2
    assert 0 < out["confidence"] <= 1


def test_no_keywords_defaults_to_cost_reduction_with_zero_confidence(triage):
    out = triage.classify("hello there", account="a")
    assert out["intent"] == "cost_reduction"
    assert out["confidence"] == 0.0


def test_keywords_match_word_starts_only(triage):
    # "execute" contains "cut", "forget" contains "org": neither counts
    out = triage.classify("execute the plan, forget it", account="a")
    assert out["intent_scores"]["cost_reduction"] == 0
    assert out["scope"] == "user"


@pytest.mark.parametrize(
    ("text", "urgency"),
    [
        ("we are over budget, fix it asap", "high"),
        ("look at savings when you can, no rush", "low"),
        ("look at savings", "normal"),
    ],
)
def test_urgency(triage, text, urgency):
    assert triage.classify(text, account="a")["urgency"] == urgency


def test_scope_and_mentions(triage):
    out = triage.classify(
        "Reduce GPT-4o and claude-3-haiku spend for the Support team", account="a"
    )
    assert out["scope"] == "team"
    assert out["teams"] == ["support"]
    assert out["models"] == ["claude-3-haiku", "gpt-4o"]
    assert triage.classify("cheaper gpt-4o please", account="a")["scope"] == "model"
    assert triage.classify("savings for the whole company", account="a")["scope"] == "organisation"


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("spend in the last 10 days", 10),
        ("spend over the past 2 weeks", 14),
        ("spend in the last 3 months", 90),
        ("spend in the last 400 days", 90),
        ("what happened yesterday", 1),
        ("report for last week", 7),
        ("anything", 30),
    ],
)
def test_window(triage, text, days):
    assert triage.classify(text, account="a")["window_days"] == days


def test_overrides_win_and_are_validated(triage):
    out = triage.classify(
        "urgent breakdown",
        account="a",
        overrides={"intent": "anomaly", "urgency": "low", "window_days": 5},
    )
    assert (out["intent"], out["urgency"], out["window_days"], out["confidence"]) == (
        "anomaly",
        "low",
        5,
        1.0,
    )
    for bad in ({"intent": "nope"}, {"urgency": "soon"}, {"window_days": 0}, {"window_days": True}):
        with pytest.raises(ConfigurationError):
            triage.classify("x", account="a", overrides=bad)


def test_parse_input_forms(triage):
    assert triage.parse_input(None, "u") == ("", {})
    assert triage.parse_input("cut costs", "u") == ("cut costs", {})
    assert triage.parse_input({"request": "r", "account": "u", "urgency": "high", "x": 1}, "u") == (
        "r",
        {"urgency": "high"},
    )
    for bad in (42, {"request": 3}):
        with pytest.raises(ConfigurationError):
            triage.parse_input(bad, "u")


def test_a_run_cannot_ask_for_another_users_account(triage):
    with pytest.raises(ConfigurationError, match="its own user"):
        triage.parse_input({"request": "r", "account": "user-002"}, "user-001")


def test_deterministic(triage):
    text = "Urgent: cut gpt-4o costs for search over the last 2 weeks"
    assert triage.classify(text, account="a") == triage.classify(text, account="a")


async def test_agent_run_emits_and_returns_plain_data(registry, make_ctx):
    ctx, emitted = make_ctx("triage", user_id="user-007", input={"request": "cut costs asap"})
    out = await registry.create("triage").run(ctx)
    assert out["account"] == "user-007"
    assert out["urgency"] == "high"
    assert emitted == [("classified", {"intent": "cost_reduction", "urgency": "high"})]
    assert registry.get("triage").depends_on == ()
