"""Recurring dict keys seeded into the native pass: redaction and budgets stay exact."""

from __future__ import annotations

from typing import Any

from agentkit.codec import pickle_layer
from agentkit.report import ReportKind
from agentkit.sanitizer import ObjectSanitizer

# literal keys: the same str objects on every call, as in an agent's own code
KEYS = ("id", "title", "provider", "monthly_saving_usd", "prompt_tokens")


def _records(n: int = 20) -> dict[str, Any]:
    recs = [
        {
            "id": i,
            "title": f"Move workload {i}",
            "provider": "openai",
            "monthly_saving_usd": 10.5 * i,
            "prompt_tokens": 100 + i,  # secret-looking key, numeric value: kept
        }
        for i in range(n)
    ]
    return {"recs": recs, "api_key": None}


def _warm(san: ObjectSanitizer, passes: int = 4) -> None:
    for _ in range(passes):
        _, report, _ = san.sanitize_pickled(_records())
        assert report.total == 0
    assert san._fast is not None
    seeded = set(san._fast.seeds.strings)
    assert {"id", "title", "provider", "monthly_saving_usd"} <= seeded
    assert "prompt_tokens" not in seeded and "api_key" not in seeded


def _kinds(report: Any) -> list[tuple[str, ReportKind]]:
    return [(e.path, e.kind) for e in report.entries]


def test_recurring_keys_are_seeded_and_the_pickle_round_trips() -> None:
    san = ObjectSanitizer(native=False)
    _warm(san)
    value = _records()
    clean, report, data = san.sanitize_pickled(value)
    assert clean is value and report.total == 0
    assert pickle_layer.loads(data) == value
    assert b"monthly_saving_usd" not in data.split(b"Move workload", 1)[1]  # a memo reference


def test_secrets_are_still_found_on_every_pass_after_seeding() -> None:
    san = ObjectSanitizer(native=False)
    _warm(san)
    for i in range(40):  # crosses the periodic exact checks and the scan-only passes
        value = _records()
        case = i % 4
        if case == 0:
            value["recs"][3]["password"] = "hunter2"
            want = [("$.recs[3].password", ReportKind.REDACTED)]
        elif case == 1:
            value["recs"][5]["title"] = "redis://user:s3cret@cache:6379/0"
            want = [("$.recs[5].title", ReportKind.REDACTED)]
        elif case == 2:
            value["recs"][7]["prompt_tokens"] = "not a number"
            want = [("$.recs[7].prompt_tokens", ReportKind.REDACTED)]
        else:
            value["api_key"] = "sk-live-123"
            want = [("$.api_key", ReportKind.REDACTED)]
        clean, report, data = san.sanitize_pickled(value)
        assert _kinds(report) == want, (i, _kinds(report))
        assert b"hunter2" not in data and b"s3cret" not in data and b"sk-live" not in data
        assert pickle_layer.loads(data) == clean
        assert san.sanitize(value)[1].total == 1
        assert san._fast is not None and san._fast.seeds.strings  # seeds stayed active


def test_a_tight_byte_budget_disables_key_seeding() -> None:
    san = ObjectSanitizer(native=False, max_total_bytes=200_000)  # not 32x the 100 KB native limit
    for _ in range(4):
        san.sanitize_pickled(_records())
    assert san._fast is not None and san._fast.seeds.strings == ()
