"""Generate the sample dataset of LLM API usage used by the reference agents.

The output, ``usage.csv.gz``, is deterministic: the same seed gives byte-identical bytes
(the gzip header carries no timestamp or file name). One row per API call::

    ts,user_id,team,model,task,channel,prompt_hash,tokens_in,tokens_out,latency_ms,cost_usd

``channel`` is ``interactive`` (a person waits for the answer) or ``background`` (a job, a
pipeline). ``prompt_hash`` identifies the prompt text: equal hashes are repeated prompts.

Usage::

    python examples/data/generate.py            # writes examples/data/usage.csv.gz
    python examples/data/generate.py --check    # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20261101
USERS = 100
DAYS = 30
START = datetime(2026, 10, 1, tzinfo=UTC)
OUTPUT = Path(__file__).with_name("usage.csv.gz")

#: USD per million tokens (input, output): the list prices this sample is billed at
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-haiku": (0.25, 1.25),
    "gemini-1.5-pro": (1.25, 5.00),
    "gemini-1.5-flash": (0.075, 0.30),
}
TEAMS = ("search", "support", "growth", "platform", "research", "finance")

#: task -> (share of calls, channel weights (interactive, background), tokens_in range,
#:          tokens_out range); low-complexity tasks have short prompts and answers
TASKS: dict[str, tuple[float, tuple[float, float], tuple[int, int], tuple[int, int]]] = {
    "chat": (0.30, (0.95, 0.05), (300, 2500), (100, 900)),
    "classification": (0.18, (0.30, 0.70), (80, 450), (5, 40)),
    "extraction": (0.14, (0.25, 0.75), (200, 900), (40, 180)),
    "summarization": (0.16, (0.20, 0.80), (1500, 9000), (150, 600)),
    "code": (0.12, (0.85, 0.15), (600, 5000), (200, 1500)),
    "rag_answer": (0.10, (0.90, 0.10), (2000, 7000), (150, 700)),
}

#: a user's habit: which models it prefers, how much it calls, how often it repeats prompts
PROFILES = (
    # name, model weights, calls per day range, repeat share
    ("premium", {"gpt-4o": 6, "claude-3-5-sonnet": 4, "gpt-4o-mini": 1}, (15, 45), 0.30),
    (
        "balanced",
        {"gpt-4o": 3, "gpt-4o-mini": 4, "claude-3-haiku": 2, "gemini-1.5-pro": 1},
        (6, 24),
        0.18,
    ),
    ("frugal", {"gpt-4o-mini": 5, "gemini-1.5-flash": 4, "claude-3-haiku": 2}, (3, 15), 0.10),
    ("analyst", {"claude-3-5-sonnet": 5, "gemini-1.5-pro": 3, "gpt-4o": 2}, (5, 20), 0.40),
)

#: interactive traffic follows the working day (UTC 08-18); background jobs are flatter
HOUR_WEIGHTS_INTERACTIVE = [
    1,
    1,
    1,
    1,
    1,
    1,
    2,
    4,
    9,
    12,
    13,
    12,
    10,
    12,
    13,
    12,
    10,
    7,
    4,
    3,
    2,
    2,
    1,
    1,
]
HOUR_WEIGHTS_BACKGROUND = [3, 3, 3, 3, 3, 3, 4, 6, 8, 9, 9, 9, 8, 9, 9, 9, 8, 6, 5, 4, 4, 3, 3, 3]

HEADER = (
    "ts",
    "user_id",
    "team",
    "model",
    "task",
    "channel",
    "prompt_hash",
    "tokens_in",
    "tokens_out",
    "latency_ms",
    "cost_usd",
)


def _pick(rng: random.Random, weights: dict[str, int] | dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _hash(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:10]


def _rows(seed: int) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    rows: list[tuple[object, ...]] = []
    task_weights = {t: spec[0] for t, spec in TASKS.items()}
    for u in range(1, USERS + 1):
        user_id = f"user-{u:03d}"
        _, models, (lo, hi), repeat_share = PROFILES[rng.randrange(len(PROFILES))]
        teams = rng.sample(TEAMS, k=rng.choice((1, 1, 2)))
        # a small pool of recurring prompts (FAQ answers, fixed classification prompts)
        pool = [_hash(user_id, "tpl", i) for i in range(rng.randint(3, 12))]
        pool_weights = [1.0 / (i + 1) for i in range(len(pool))]
        unique = 0
        for day in range(DAYS):
            weekday = (START + timedelta(days=day)).weekday()
            n = rng.randint(lo, hi) // (3 if weekday >= 5 else 1)
            for _ in range(n):
                task = _pick(rng, task_weights)
                _, (w_int, w_bg), (tin_lo, tin_hi), (tout_lo, tout_hi) = TASKS[task]
                channel = rng.choices(("interactive", "background"), weights=(w_int, w_bg))[0]
                hours = (
                    HOUR_WEIGHTS_INTERACTIVE
                    if channel == "interactive"
                    else HOUR_WEIGHTS_BACKGROUND
                )
                hour = rng.choices(range(24), weights=hours)[0]
                ts = START + timedelta(
                    days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60)
                )
                model = _pick(rng, models)
                repeated = task in ("classification", "extraction", "chat", "rag_answer") and (
                    rng.random() < repeat_share
                )
                if repeated:
                    prompt_hash = rng.choices(pool, weights=pool_weights)[0]
                    tokens_in = 120 + int(pool.index(prompt_hash)) * 37
                else:
                    unique += 1
                    prompt_hash = _hash(user_id, "p", unique)
                    tokens_in = int(rng.triangular(tin_lo, tin_hi, tin_lo + (tin_hi - tin_lo) / 4))
                tokens_out = int(
                    rng.triangular(tout_lo, tout_hi, tout_lo + (tout_hi - tout_lo) / 4)
                )
                price_in, price_out = PRICES[model]
                cost = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
                speed = 45 if model.endswith(("mini", "haiku", "flash")) else 20  # tokens/ms*1000
                latency_ms = int(250 + tokens_out * 1000 / (speed * 5) + rng.expovariate(1 / 120))
                rows.append(
                    (
                        ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        user_id,
                        rng.choice(teams),
                        model,
                        task,
                        channel,
                        prompt_hash,
                        tokens_in,
                        tokens_out,
                        latency_ms,
                        f"{cost:.6f}",
                    )
                )
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def render(seed: int = SEED) -> bytes:
    """The gzip'd CSV bytes of the dataset for ``seed`` (deterministic)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(_rows(seed))
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the file")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from a fresh render"
    )
    args = parser.parse_args(argv)
    data = render(args.seed)
    if args.check:
        current = args.output.read_bytes() if args.output.exists() else b""
        if current != data:
            print(f"{args.output} is stale; run: python examples/data/generate.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
