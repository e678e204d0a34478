"""``optimizations_core``: find savings in the usage the ``data`` agent aggregated.

Four kinds of finding, each with an estimated monthly saving computed from the data:

- ``model_downgrade``: low-complexity calls on a premium model, priced at the cheaper model of
  the same family (list prices per million tokens in :data:`PRICES`).
- ``prompt_caching``: repeated identical prompts answered from a response cache.
- ``batching``: background (non-interactive) calls sent through a provider's batch API.
- ``off_peak``: background calls made in peak hours moved to off-peak windows.

Estimates scale the analysed window to 30 days. Findings can overlap (a repeated background
classification call could be cached, batched *and* downgraded), so the total is combined as
independent fractions of spend — ``spend * (1 - prod(1 - s_i / spend))`` — never a plain sum.

The result type :class:`SavingsResult` overrides the clean hook to shape the raw
:class:`SavingsPlan`: findings become plain dicts, money is rounded to cents, findings below
the minimum are dropped, and the rest are ranked by saving.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from agentkit.agent import AgentContext, SubAgent
from agentkit.errors import ConfigurationError
from agentkit.result import SerializableAgentResult

if TYPE_CHECKING:
    from agentkit.sanitizer import ObjectSanitizer

__all__ = [
    "CHEAPER",
    "DEFAULT_ASSUMPTIONS",
    "PRICES",
    "Finding",
    "OptimizationsAgent",
    "SavingsPlan",
    "SavingsResult",
    "combined_savings",
    "find_savings",
]

#: USD per million tokens (input, output)
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-haiku": (0.25, 1.25),
    "gemini-1.5-pro": (1.25, 5.00),
    "gemini-1.5-flash": (0.075, 0.30),
}
#: premium model -> the cheaper model of the same family that handles simple prompts well
CHEAPER: dict[str, str] = {
    "gpt-4o": "gpt-4o-mini",
    "claude-3-5-sonnet": "claude-3-haiku",
    "gemini-1.5-pro": "gemini-1.5-flash",
}
DEFAULT_ASSUMPTIONS: dict[str, float] = {
    "cache_hit_rate": 0.85,  #: share of exact repeats a response cache would answer
    "downgrade_adoption": 0.80,  #: share of low-complexity calls that can move model
    "batch_discount": 0.50,  #: batch API price cut for work that can wait up to 24 h
    "batchable_share": 0.70,  #: share of background calls that tolerate batch latency
    "off_peak_discount": 0.20,  #: price or capacity saving for work moved off peak
    "min_monthly_savings": 0.01,  #: findings below this (USD) are dropped
}
MONTH_DAYS = 30


@dataclass(frozen=True)
class Finding:
    """One saving opportunity."""

    kind: str
    title: str
    action: str
    monthly_savings_usd: float
    affected_calls: int
    confidence: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class SavingsPlan:
    """The raw result of ``optimizations_core``: findings plus what they were computed from."""

    account: str
    monthly_spend_usd: float
    findings: list[Finding]
    assumptions: dict[str, float]
    window_days: int

    @property
    def total_monthly_savings_usd(self) -> float:
        """Combined saving of all findings (see :func:`combined_savings`)."""
        return combined_savings(
            self.monthly_spend_usd, [f.monthly_savings_usd for f in self.findings]
        )


def combined_savings(spend: float, savings: list[float]) -> float:
    """Savings that may overlap, combined as independent fractions of ``spend``."""
    if spend <= 0:
        return 0.0
    return spend * (1 - math.prod(1 - min(s / spend, 1.0) for s in savings))


def _cost(model: str, tokens_in: float, tokens_out: float) -> float:
    price_in, price_out = PRICES[model]
    return (tokens_in * price_in + tokens_out * price_out) / 1_000_000


def _confidence(calls: int) -> str:
    return "high" if calls >= 200 else "medium" if calls >= 50 else "low"


def _check_assumptions(given: Mapping[str, Any]) -> dict[str, float]:
    if not isinstance(given, Mapping):
        raise ConfigurationError("input 'assumptions' must be a mapping of name to number")
    unknown = sorted(set(given) - set(DEFAULT_ASSUMPTIONS))
    if unknown:
        raise ConfigurationError(
            f"unknown assumptions {unknown}; known: {', '.join(sorted(DEFAULT_ASSUMPTIONS))}"
        )
    out: dict[str, float] = {}
    for k, v in given.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1_000_000:
            raise ConfigurationError(f"assumption {k!r} must be a non-negative number, got {v!r}")
        if k != "min_monthly_savings" and v > 1:
            raise ConfigurationError(f"assumption {k!r} is a fraction in 0..1, got {v!r}")
        out[k] = float(v)
    return out


def find_savings(
    data: Mapping[str, Any], assumptions: Mapping[str, float] | None = None
) -> SavingsPlan:
    """Compute every finding from the ``data`` agent's clean output."""
    a = {**DEFAULT_ASSUMPTIONS, **_check_assumptions(assumptions or {})}
    days = max(int(data["period"]["days"]), 1)
    scale = MONTH_DAYS / days
    spend = float(data["totals"]["cost"]) * scale
    findings: list[Finding] = []

    # 1. cheaper model for low-complexity prompts
    per_model = []
    saved = 0.0
    calls = 0
    for row in data["low_complexity"]:
        alt = CHEAPER.get(row["model"])
        if alt is None:
            continue
        alt_cost = _cost(alt, row["tokens_in"], row["tokens_out"])
        delta = max(row["cost"] - alt_cost, 0.0) * a["downgrade_adoption"]
        saved += delta
        calls += row["calls"]
        per_model.append(
            {
                "from": row["model"],
                "to": alt,
                "calls": row["calls"],
                "window_cost": round(row["cost"], 4),
                "window_saving": round(delta, 4),
            }
        )
    if per_model:
        findings.append(
            Finding(
                kind="model_downgrade",
                title="Route low-complexity prompts to a cheaper model",
                action="Send classification, extraction and short prompts to "
                + ", ".join(f"{m['to']} (instead of {m['from']})" for m in per_model),
                monthly_savings_usd=saved * scale,
                affected_calls=calls,
                confidence=_confidence(calls),
                evidence={"models": per_model, "adoption": a["downgrade_adoption"]},
            )
        )

    # 2. response cache for repeated prompts
    rp = data["repeated_prompts"]
    if rp["repeat_calls"]:
        findings.append(
            Finding(
                kind="prompt_caching",
                title="Cache answers to repeated prompts",
                action=f"Serve the {rp['groups']} recurring prompts from a response cache",
                monthly_savings_usd=float(rp["repeat_cost"]) * a["cache_hit_rate"] * scale,
                affected_calls=int(rp["repeat_calls"]),
                confidence=_confidence(int(rp["repeat_calls"])),
                evidence={
                    "groups": rp["groups"],
                    "repeat_calls": rp["repeat_calls"],
                    "top_prompts": [p["prompt_hash"] for p in rp["top"]],
                    "hit_rate": a["cache_hit_rate"],
                },
            )
        )

    # 3. batch API for background work
    bg_cost = sum(float(b["cost"]) for b in data["background"])
    bg_calls = sum(int(b["calls"]) for b in data["background"])
    if bg_calls:
        findings.append(
            Finding(
                kind="batching",
                title="Batch background jobs",
                action="Submit background calls through the provider batch API",
                monthly_savings_usd=bg_cost * a["batchable_share"] * a["batch_discount"] * scale,
                affected_calls=bg_calls,
                confidence=_confidence(bg_calls),
                evidence={
                    "background_calls": bg_calls,
                    "background_cost": round(bg_cost, 4),
                    "discount": a["batch_discount"],
                    "batchable_share": a["batchable_share"],
                },
            )
        )

    # 4. move peak-hour background work off peak
    peak_cost = sum(float(b["peak_cost"]) for b in data["background"])
    peak_calls = sum(int(b["peak_calls"]) for b in data["background"])
    hourly = data["hourly_load"]
    total_calls = sum(h["calls"] for h in hourly)
    if peak_calls and total_calls:
        busiest = max(hourly, key=lambda h: (h["calls"], -h["hour"]))
        findings.append(
            Finding(
                kind="off_peak",
                title="Schedule background work off peak",
                action="Run background jobs outside "
                f"{data['peak_hours'][0]:02d}:00-{data['peak_hours'][-1] + 1:02d}:00 UTC",
                monthly_savings_usd=peak_cost * a["off_peak_discount"] * scale,
                affected_calls=peak_calls,
                confidence=_confidence(peak_calls),
                evidence={
                    "peak_background_calls": peak_calls,
                    "peak_background_cost": round(peak_cost, 4),
                    "busiest_hour": busiest["hour"],
                    "peak_to_average": round(busiest["calls"] / (total_calls / 24), 2),
                    "discount": a["off_peak_discount"],
                },
            )
        )

    return SavingsPlan(
        account=str(data["account"]),
        monthly_spend_usd=spend,
        findings=findings,
        assumptions=a,
        window_days=days,
    )


class SavingsResult(SerializableAgentResult):
    """Shapes a :class:`SavingsPlan` into ranked, cent-rounded plain data."""

    @classmethod
    def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
        if isinstance(raw, SavingsPlan):
            minimum = raw.assumptions["min_monthly_savings"]
            kept = sorted(
                (f for f in raw.findings if f.monthly_savings_usd >= minimum),
                key=lambda f: (-f.monthly_savings_usd, f.kind),
            )
            spend = raw.monthly_spend_usd
            total = combined_savings(spend, [f.monthly_savings_usd for f in kept])
            raw = {
                "account": raw.account,
                "window_days": raw.window_days,
                "monthly_spend_usd": round(spend, 2),
                "total_monthly_savings_usd": round(total, 2),
                "savings_pct": round(100 * total / spend, 1) if spend else 0.0,
                "findings": [
                    {**asdict(f), "rank": i, "monthly_savings_usd": round(f.monthly_savings_usd, 2)}
                    for i, f in enumerate(kept, 1)
                ],
                "dropped": sorted(f.kind for f in raw.findings if f.monthly_savings_usd < minimum),
                "assumptions": dict(raw.assumptions),
            }
        return super().clean_result(raw, sanitizer)


class OptimizationsAgent(SubAgent):
    """Find savings with an estimated monthly figure for each."""

    name = "optimizations_core"
    version = "1.0"
    depends_on = ("data",)
    timeout = 10.0
    result_type = SavingsResult

    async def run(self, ctx: AgentContext) -> SavingsPlan:
        params = ctx.input if isinstance(ctx.input, Mapping) else {}
        plan = find_savings(ctx.upstream["data"], params.get("assumptions"))
        ctx.emit("findings", count=len(plan.findings))
        return plan
