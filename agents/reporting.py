"""``reporting``: turn triage, usage and findings into a structured report plus markdown.

The raw result is a :class:`Report` object; its result type :class:`ReportResult` overrides
the clean hook to shape it into ``{"report": {...structured...}, "markdown": "..."}`` so
readers of the store get both the data and a human-readable rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentkit.agent import AgentContext, SubAgent
from agentkit.result import SerializableAgentResult

if TYPE_CHECKING:
    from agentkit.sanitizer import ObjectSanitizer

__all__ = ["Report", "ReportResult", "ReportingAgent", "build_report"]

_NEXT_STEP = {
    "prompt_caching": "Put a response cache in front of the recurring prompts",
    "model_downgrade": "A/B-test the cheaper model on simple prompts, then switch the route",
    "batching": "Move background jobs to the batch API",
    "off_peak": "Reschedule background jobs outside peak hours",
}
#: order in which to do things when the request is urgent: no-quality-risk changes first
_QUICK_WINS = ("prompt_caching", "batching", "off_peak", "model_downgrade")


@dataclass
class Report:
    """A spend report for one account."""

    account: str
    intent: str
    urgency: str
    period: dict[str, Any]
    spend: dict[str, Any]
    savings: dict[str, Any]
    next_steps: list[str] = field(default_factory=list)

    @property
    def headline(self) -> str:
        """One sentence a person reads first."""
        s = self.savings
        if not self.spend["calls"]:
            return (
                f"No usage found for {self.account} in the last {self.period['window_days']} days."
            )
        if not s["findings"]:
            return f"No savings found for {self.account} over {self.period['days']} days."
        return (
            f"{self.account} could save ${s['total_monthly_usd']:,.2f}/month "
            f"({s['pct']:.1f}% of ${self.spend['monthly_run_rate_usd']:,.2f}) "
            f"with {len(s['findings'])} changes."
        )

    def to_dict(self) -> dict[str, Any]:
        """The structured report."""
        return {
            "account": self.account,
            "headline": self.headline,
            "intent": self.intent,
            "urgency": self.urgency,
            "period": dict(self.period),
            "spend": dict(self.spend),
            "savings": dict(self.savings),
            "next_steps": list(self.next_steps),
        }

    def render_markdown(self) -> str:
        """The report as markdown."""
        lines = [
            f"# AI spend report: {self.account}",
            "",
            f"**{self.headline}**",
            "",
            f"Period: {self.period['first'] or '-'} to {self.period['last'] or '-'} "
            f"({self.period['days']} days with usage); request: {self.intent}, "
            f"urgency {self.urgency}.",
            "",
            "## Spend",
            "",
            f"Window spend ${self.spend['window_usd']:,.2f}; monthly run rate "
            f"${self.spend['monthly_run_rate_usd']:,.2f}; {self.spend['calls']:,} calls.",
            "",
            "| model | calls | cost (USD) |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {m['model']} | {m['calls']:,} | {m['cost']:,.2f} |"
            for m in self.spend["top_models"]
        ]
        lines += ["", "## Savings", ""]
        if self.savings["findings"]:
            lines += [
                "| # | opportunity | USD/month | calls | confidence |",
                "|---|---|---:|---:|---|",
            ]
            lines += [
                f"| {f['rank']} | {f['title']} | {f['monthly_savings_usd']:,.2f} | "
                f"{f['affected_calls']:,} | {f['confidence']} |"
                for f in self.savings["findings"]
            ]
        else:
            lines.append("Nothing to optimise in this window.")
        if self.next_steps:
            lines += ["", "## Next steps", ""]
            lines += [f"{i}. {step}" for i, step in enumerate(self.next_steps, 1)]
        return "\n".join(lines) + "\n"


def build_report(
    triage: Mapping[str, Any], data: Mapping[str, Any], savings: Mapping[str, Any]
) -> Report:
    """Assemble the report from the three upstream agents' clean outputs."""
    findings = list(savings["findings"])
    if triage["urgency"] == "high":
        order = sorted(findings, key=lambda f: _QUICK_WINS.index(f["kind"]))
    else:
        order = findings  # already ranked by saving
    steps = [
        f"{_NEXT_STEP[f['kind']]} (~${f['monthly_savings_usd']:,.2f}/month)"
        for f in order
        if f["kind"] in _NEXT_STEP
    ]
    return Report(
        account=str(data["account"]),
        intent=str(triage["intent"]),
        urgency=str(triage["urgency"]),
        period={**data["period"], "window_days": data["window_days"]},
        spend={
            "window_usd": data["totals"]["cost"],
            "monthly_run_rate_usd": savings["monthly_spend_usd"],
            "calls": data["totals"]["calls"],
            "top_models": [
                {"model": m["model"], "calls": m["calls"], "cost": m["cost"]}
                for m in data["by_model"][:3]
            ],
            "top_teams": [t["team"] for t in data["by_team"][:3]],
        },
        savings={
            "total_monthly_usd": savings["total_monthly_savings_usd"],
            "pct": savings["savings_pct"],
            "findings": [
                {
                    k: f[k]
                    for k in (
                        "rank",
                        "kind",
                        "title",
                        "monthly_savings_usd",
                        "affected_calls",
                        "confidence",
                    )
                }
                for f in findings
            ],
        },
        next_steps=steps,
    )


class ReportResult(SerializableAgentResult):
    """Shapes a :class:`Report` into its structured form plus the rendered markdown."""

    @classmethod
    def clean_result(cls, raw: Any, sanitizer: ObjectSanitizer) -> Any:
        if isinstance(raw, Report):
            raw = {"report": raw.to_dict(), "markdown": raw.render_markdown()}
        return super().clean_result(raw, sanitizer)


class ReportingAgent(SubAgent):
    """Write the report."""

    name = "reporting"
    version = "1.0"
    depends_on = ("triage", "data", "optimizations_core")
    timeout = 5.0
    result_type = ReportResult

    async def run(self, ctx: AgentContext) -> Report:
        up = ctx.upstream
        report = build_report(up["triage"], up["data"], up["optimizations_core"])
        ctx.emit("report_ready", findings=len(report.savings["findings"]))
        return report
