"""``triage``: classify an AI-spend request — intent, scope, urgency, time window.

Input (the run input): a request text, or a mapping with ``request`` (text) and optional
``window_days``, ``urgency``, ``intent`` (explicit overrides win over what the text says).
The account analysed is always the run's own user: a run cannot ask for another user's usage.

Output: ``{"intent", "intent_scores", "confidence", "scope", "teams", "models", "urgency",
"window_days", "account", "request"}``. Pure keyword rules: the same input always gives the
same classification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agentkit.agent import AgentContext, SubAgent
from agentkit.errors import ConfigurationError

__all__ = ["TriageAgent", "classify"]

INTENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "cost_reduction": (
        "save",
        "saving",
        "reduce",
        "cut",
        "cheaper",
        "optimi",
        "lower",
        "too expensive",
        "budget",
        "waste",
    ),
    "spend_report": ("report", "breakdown", "summary", "overview", "how much", "spent", "invoice"),
    "anomaly": ("spike", "anomal", "sudden", "jump", "unexpected", "why did", "doubled"),
    "performance": ("latency", "slow", "throughput", "rate limit", "timeout", "p95"),
}
#: order of intents when scores tie; the product's main purpose comes first
INTENT_ORDER = tuple(INTENT_KEYWORDS)
URGENT_WORDS = (
    "urgent",
    "asap",
    "immediately",
    "critical",
    "over budget",
    "exceeded",
    "today",
    "right now",
)
RELAXED_WORDS = ("no rush", "when you can", "eventually", "sometime", "low priority")
KNOWN_TEAMS = ("search", "support", "growth", "platform", "research", "finance")
URGENCIES = ("low", "normal", "high")
MAX_WINDOW_DAYS = 90
DEFAULT_WINDOW_DAYS = 30

_MODEL = re.compile(r"\b(gpt-[\w.\-]+|claude-[\w.\-]+|gemini-[\w.\-]+)", re.IGNORECASE)
_LAST_N = re.compile(r"\b(?:last|past)\s+(\d{1,3})\s+(day|week|month)s?\b")
_WINDOW_WORDS = (
    ("yesterday", 1),
    ("today", 1),
    ("last week", 7),
    ("this week", 7),
    ("fortnight", 14),
    ("quarter", 90),
    ("last month", 30),
    ("this month", 30),
)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30}
_ORG = re.compile(r"\b(?:org|orgs|organi[sz]ation|company|everyone|all teams)\b")


def _count(text: str, word: str) -> int:
    """Occurrences of ``word`` at the start of a word (so "cut" does not match "execute")."""
    return len(re.findall(r"\b" + re.escape(word), text))


def _window_days(text: str) -> int:
    m = _LAST_N.search(text)
    if m:
        days = int(m.group(1)) * _UNIT_DAYS[m.group(2)]
        return max(1, min(days, MAX_WINDOW_DAYS))
    for phrase, days in _WINDOW_WORDS:
        if _count(text, phrase):
            return days
    return DEFAULT_WINDOW_DAYS


def classify(
    request: str, *, account: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Classify ``request`` for ``account``.

    Args:
        request: free text, e.g. "Cut our GPT-4o spend, urgent".
        account: whose usage the downstream agents analyse.
        overrides: explicit ``intent``, ``urgency`` or ``window_days`` that win over the text.

    Returns:
        The triage output (a plain dict of clean values).

    Raises:
        ConfigurationError: an override has an unknown value.
    """
    text = " ".join(request.lower().split())
    scores = {
        intent: sum(_count(text, word) for word in words)
        for intent, words in INTENT_KEYWORDS.items()
    }
    best = max(INTENT_ORDER, key=lambda i: (scores[i], -INTENT_ORDER.index(i)))
    total = sum(scores.values())
    confidence = round(scores[best] / total, 2) if total else 0.0
    if total == 0:
        best = "cost_reduction"

    teams = [t for t in KNOWN_TEAMS if re.search(rf"\b{t}\b", text)]
    models = sorted({m.lower().rstrip(".,;:") for m in _MODEL.findall(text)})
    if _ORG.search(text):
        scope = "organisation"
    elif teams:
        scope = "team"
    elif models:
        scope = "model"
    else:
        scope = "user"

    if any(_count(text, w) for w in URGENT_WORDS):
        urgency = "high"
    elif any(_count(text, w) for w in RELAXED_WORDS):
        urgency = "low"
    else:
        urgency = "normal"
    window = _window_days(text)

    over = dict(overrides or {})
    if "intent" in over:
        if over["intent"] not in INTENT_KEYWORDS:
            raise ConfigurationError(
                f"intent must be one of {', '.join(INTENT_KEYWORDS)}; got {over['intent']!r}"
            )
        best, confidence = over["intent"], 1.0
    if "urgency" in over:
        if over["urgency"] not in URGENCIES:
            raise ConfigurationError(
                f"urgency must be one of {', '.join(URGENCIES)}; got {over['urgency']!r}"
            )
        urgency = over["urgency"]
    if "window_days" in over:
        wd = over["window_days"]
        if not isinstance(wd, int) or isinstance(wd, bool) or not 1 <= wd <= MAX_WINDOW_DAYS:
            raise ConfigurationError(
                f"window_days must be an int in 1..{MAX_WINDOW_DAYS}; got {wd!r}"
            )
        window = wd

    return {
        "intent": best,
        "intent_scores": scores,
        "confidence": confidence,
        "scope": scope,
        "teams": teams,
        "models": models,
        "urgency": urgency,
        "window_days": window,
        "account": account,
        "request": request[:500],
    }


def parse_input(raw: Any, user_id: str) -> tuple[str, dict[str, Any]]:
    """Split a run input into (request text, overrides).

    Raises:
        ConfigurationError: the input is neither text, ``None`` nor a mapping, or it names
            an ``account`` other than the run's user.
    """
    if raw is None:
        return "", {}
    if isinstance(raw, str):
        return raw, {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f"triage input must be text or a mapping with 'request'; got {type(raw).__name__}"
        )
    request = raw.get("request", "")
    if not isinstance(request, str):
        raise ConfigurationError("triage input 'request' must be text")
    if raw.get("account", user_id) != user_id:
        raise ConfigurationError(
            "a run analyses its own user's usage; drop 'account' from the input or run the "
            "pipeline as that user"
        )
    overrides = {k: raw[k] for k in ("intent", "urgency", "window_days") if k in raw}
    return request, overrides


class TriageAgent(SubAgent):
    """Classify the request so the downstream agents know what to look at."""

    name = "triage"
    version = "1.0"
    timeout = 5.0

    async def run(self, ctx: AgentContext) -> dict[str, Any]:
        request, overrides = parse_input(ctx.input, ctx.user_id)
        result = classify(request, account=ctx.user_id, overrides=overrides)
        ctx.emit("classified", intent=result["intent"], urgency=result["urgency"])
        return result
