"""The data agent: loading the sample dataset and aggregating one account's usage."""

from __future__ import annotations

import gzip
import logging
import sqlite3
import threading
import types

import pytest

from agentkit.errors import ConfigurationError


@pytest.fixture
def data(plugin):
    return plugin("data")


# ts, team, model, task, channel, prompt_hash, tokens_in, tokens_out, latency_ms, cost_usd
ROWS = [
    (
        "2026-10-01T09:00:00Z",
        "search",
        "gpt-4o",
        "classification",
        "background",
        "p1",
        100,
        10,
        300,
        0.35,
    ),
    (
        "2026-10-01T09:30:00Z",
        "search",
        "gpt-4o",
        "classification",
        "background",
        "p1",
        100,
        10,
        320,
        0.35,
    ),
    (
        "2026-10-01T20:00:00Z",
        "support",
        "gpt-4o",
        "chat",
        "interactive",
        "p2",
        2000,
        500,
        900,
        1.00,
    ),
    (
        "2026-10-02T03:00:00Z",
        "support",
        "gpt-4o-mini",
        "extraction",
        "background",
        "p3",
        300,
        50,
        200,
        0.10,
    ),
    (
        "2026-10-02T10:00:00Z",
        "search",
        "gpt-4o-mini",
        "summarization",
        "background",
        "p1",
        100,
        10,
        250,
        0.20,
    ),
]


def test_aggregate_exact_figures(data):
    conn = data.open_usage_db(ROWS)
    out = data.aggregate(conn.cursor())
    assert out["totals"] == {"calls": 5, "cost": 2.0, "tokens_in": 2600, "tokens_out": 580}
    assert out["period"] == {"first": ROWS[0][0], "last": ROWS[-1][0], "days": 2}
    assert [(m["model"], m["calls"], m["cost"]) for m in out["by_model"]] == [
        ("gpt-4o", 3, 1.7),
        ("gpt-4o-mini", 2, 0.3),
    ]
    assert [(t["team"], t["cost"]) for t in out["by_team"]] == [("support", 1.1), ("search", 0.9)]
    assert [(d["day"], d["calls"]) for d in out["by_day"]] == [("2026-10-01", 3), ("2026-10-02", 2)]
    # p1 occurs 3 times (0.35 + 0.35 + 0.20): the repeats beyond the first cost 0.9 - 0.3
    rp = out["repeated_prompts"]
    assert (rp["groups"], rp["calls"], rp["repeat_calls"], rp["repeat_cost"]) == (1, 3, 2, 0.6)
    assert rp["top"][0]["prompt_hash"] == "p1"
    hourly = out["hourly_load"]
    assert len(hourly) == 24 and [h["hour"] for h in hourly] == list(range(24))
    assert hourly[9] == {
        "hour": 9,
        "calls": 2,
        "cost": 0.7,
        "background_calls": 2,
        "background_cost": 0.7,
    }
    assert hourly[20]["background_calls"] == 0
    # low complexity: classification/extraction, or short prompt and answer (the p1 summary)
    assert [(r["model"], r["calls"]) for r in out["low_complexity"]] == [
        ("gpt-4o", 2),
        ("gpt-4o-mini", 2),
    ]
    bg = {b["model"]: b for b in out["background"]}
    assert (bg["gpt-4o"]["calls"], bg["gpt-4o"]["peak_calls"], bg["gpt-4o"]["peak_cost"]) == (
        2,
        2,
        0.7,
    )
    assert (bg["gpt-4o-mini"]["peak_calls"], bg["gpt-4o-mini"]["peak_cost"]) == (1, 0.2)
    assert out["size_stats"]["in_p50"] == 100 and out["size_stats"]["in_p95"] == 2000
    assert out["latency_ms"] == {"p50": 300, "p95": 900}


def test_window_filters_rows(data):
    conn = data.open_usage_db(ROWS, since="2026-10-02T00:00:00Z")
    assert data.aggregate(conn.cursor())["totals"]["calls"] == 2
    assert data.window_start("2026-10-30T23:59:54Z", 30) == "2026-10-01T00:00:00Z"
    assert data.window_start("2026-10-30T23:59:54Z", 1) == "2026-10-30T00:00:00Z"


def test_empty_account_aggregates_to_zeros(data):
    out = data.aggregate(data.open_usage_db([]).cursor())
    assert out["totals"] == {"calls": 0, "cost": 0.0, "tokens_in": 0, "tokens_out": 0}
    assert out["by_model"] == [] and out["repeated_prompts"]["groups"] == 0
    assert out["latency_ms"] == {"p50": 0.0, "p95": 0.0}


def test_sample_dataset_loads_once(data):
    by_user, last = data.load_dataset()
    assert len(by_user) == 100 and "user-001" in by_user
    assert last.startswith("2026-10-30")
    assert data.load_dataset()[0] is by_user


def test_missing_or_malformed_dataset_is_a_clear_error(data, tmp_path):
    with pytest.raises(ConfigurationError, match=r"generate\.py"):
        data.load_dataset(tmp_path / "nope.csv.gz")
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(b"ts,user_id\n2026-01-01,u\n"))
    with pytest.raises(ConfigurationError, match="expected CSV format"):
        data.load_dataset(bad)


def _triage(account="user-001", window=30):
    return {"triage": {"account": account, "window_days": window}}


def test_run_returns_summary_and_live_handles(registry, make_ctx):
    ctx, emitted = make_ctx("data", upstream=_triage(window=7))
    out = registry.create("data").run(ctx)
    assert out["account"] == "user-001" and out["known_account"] is True
    assert out["period"]["days"] == 7 and out["totals"]["calls"] > 0
    db = out["db"]
    assert isinstance(db["connection"], sqlite3.Connection)
    assert isinstance(db["cursor"], sqlite3.Cursor)
    assert isinstance(db["driver"], types.ModuleType)
    assert isinstance(db["lock"], type(threading.Lock()))
    assert isinstance(out["logger"], logging.Logger | logging.LoggerAdapter)
    assert out["query"]("SELECT count(*) FROM calls") == [(out["totals"]["calls"],)]
    assert emitted == [("aggregated", {"calls": out["totals"]["calls"], "days": 7})]


def test_run_is_deterministic_and_unknown_accounts_are_empty(registry, make_ctx):
    handles = ("db", "logger", "query")
    a = registry.create("data").run(make_ctx("data", upstream=_triage())[0])
    b = registry.create("data").run(make_ctx("data", upstream=_triage())[0])
    assert {k: v for k, v in a.items() if k not in handles} == {
        k: v for k, v in b.items() if k not in handles
    }
    c = registry.create("data").run(make_ctx("data", upstream=_triage("nobody"))[0])
    assert c["known_account"] is False and c["totals"]["calls"] == 0
