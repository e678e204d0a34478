"""Example supervisor: the AI-spend pipeline for many users at once, on embedded defaults.

Runs ``triage -> data -> optimizations_core -> reporting`` (the reference agents in
``agents/``) for N users of the sample dataset concurrently, shows a progress bar on stderr,
prints a summary table (savings found, stage statuses, what the sanitizer replaced) and keeps
every result in SQLite. ``make demo`` runs it with the defaults.

Usage::

    python examples/supervisor.py                       # 24 users, memory cache, SQLite store
    python examples/supervisor.py --users 100 --concurrency 16
    python examples/supervisor.py --cache redis://127.0.0.1:6379/0 \\
        --store postgresql://postgres@127.0.0.1:5432/test
    python examples/supervisor.py --otlp-endpoint http://127.0.0.1:4318   # traces to Jaeger
    python examples/supervisor.py --users 2 --console-traces             # spans on stderr

The signing key comes from ``AGENTKIT_SIGNING_KEY`` (hex) or, without it, from a key file
created beside the SQLite database, so stored records stay readable across runs (and by
``agentkit runs show``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from agentkit.errors import AgentkitError
from agentkit.limits import Limits
from agentkit.registry import AgentRegistry
from agentkit.run import RunResult
from agentkit.signing import SIGNING_KEY_ENV, load_signing_key
from agentkit.store.sqlite import SQLiteStore
from agentkit.supervisor import Supervisor
from agentkit.telemetry import add_telemetry_options, telemetry_from_args

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = ROOT / "var" / "agentkit-example.db"
PIPELINE = ("triage", "data", "optimizations_core", "reporting")
#: what each user asks; picked by the user's index so every run is reproducible
REQUESTS = (
    "We are over budget on LLM spend this month: find savings, urgent.",
    "Give me a breakdown of what we spent on models over the last 2 weeks.",
    "Why did our API costs jump in the last 10 days?",
    "Find cheaper ways to run our gpt-4o workloads, no rush.",
    "How can the support team reduce model costs?",
    "Monthly overview of spend and savings for the research team.",
)


def sqlite_path(store_url: str) -> Path | None:
    """The database file of a ``sqlite:///…`` URL, or ``None`` for other stores."""
    if urlsplit(store_url).scheme.lower() != "sqlite":
        return None
    store = SQLiteStore.from_url(store_url)  # parses the URL; opens nothing
    return None if store.in_memory else Path(store.path)


class Progress:
    """A plain-text progress bar on a stream; redraws in place on a TTY, logs lines otherwise."""

    def __init__(self, total: int, runs: int, stream: TextIO, *, width: int = 30) -> None:
        self.total = max(total, 1)
        self.runs = runs
        self.done = 0
        self.runs_done = 0
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.started = time.perf_counter()
        self._last_decile = -1

    def advance(self, stages: int = 0, runs: int = 0) -> None:
        """Count finished stages and runs, then redraw."""
        self.done = min(self.done + stages, self.total)
        self.runs_done += runs
        self.draw()

    def line(self) -> str:
        """The bar as text."""
        filled = self.width * self.done // self.total
        pct = 100 * self.done // self.total
        elapsed = time.perf_counter() - self.started
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {pct:3d}% "
            f"{self.done}/{self.total} stages, {self.runs_done}/{self.runs} runs, {elapsed:.1f}s"
        )

    def draw(self) -> None:
        """Redraw (TTY) or print a line at each new tenth (no TTY)."""
        if self.tty:
            self.stream.write("\r" + self.line())
        else:
            # one line per tenth of the stages, and one when the last run is done
            decile = 10 * self.done // self.total + (self.runs_done >= self.runs)
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the bar's line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Row:
    """One line of the summary table."""

    user: str
    run_id: str
    status: str
    stages: str
    spend: str
    savings: str
    top: str
    sanitized: str
    ok: bool = False
    savings_usd: float = 0.0


def _short_type(qualname: str) -> str:
    return qualname.rsplit(".", 1)[-1]


def summarize(result: RunResult) -> Row:
    """The summary-table row of one run."""
    counts: dict[str, int] = {}
    for stage in result.stages.values():
        counts[str(stage.status)] = counts.get(str(stage.status), 0) + 1
    stages = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    spend, savings, top, savings_usd = "-", "-", "-", 0.0
    opt = result.stages.get("optimizations_core")
    if opt is not None and opt.ok and isinstance(opt.output, dict):
        savings_usd = float(opt.output["total_monthly_savings_usd"])
        spend = f"${opt.output['monthly_spend_usd']:,.2f}"
        savings = f"${savings_usd:,.2f} ({opt.output['savings_pct']:.0f}%)"
        findings = opt.output.get("findings") or []
        if findings:
            top = f"{findings[0]['kind']} ${findings[0]['monthly_savings_usd']:,.2f}"
    replaced = []
    for name, stage in result.stages.items():
        if stage.report.total:
            kinds = sorted({_short_type(e.type) for e in stage.report.entries})
            replaced.append(f"{name}: {stage.report.total} ({', '.join(kinds)})")
    return Row(
        user=result.user_id,
        run_id=result.run_id,
        status=str(result.status),
        stages=stages,
        spend=spend,
        savings=savings,
        top=top,
        sanitized="; ".join(replaced) or "-",
        ok=result.ok,
        savings_usd=savings_usd,
    )


def render_table(rows: Sequence[Row], *, max_width: int = 72) -> str:
    """The summary table as aligned plain text."""
    header = (
        "user",
        "status",
        "stages",
        "spend/mo",
        "savings/mo",
        "top finding",
        "sanitizer replaced",
    )
    body = [(r.user, r.status, r.stages, r.spend, r.savings, r.top, r.sanitized) for r in rows]

    def clip(s: str) -> str:
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [tuple(clip(c) for c in line) for line in (header, *body)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    right = {3, 4}
    out = []
    for n, line in enumerate(cells):
        out.append(
            "  ".join(
                c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(line)
            ).rstrip()
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _display(url: str) -> str:
    """``url`` with a SQLite path under the working directory shown relative."""
    db = sqlite_path(url)
    if db is None or not db.is_absolute():
        return url
    try:
        return f"sqlite:///{db.relative_to(Path.cwd())}"
    except ValueError:
        return url


async def run_users(
    sup: Supervisor,
    users: Sequence[str],
    progress: Progress,
) -> list[RunResult]:
    """Submit the pipeline for every user, follow the events, return the results in order."""

    async def one(index: int, user: str) -> RunResult:
        handle = await sup.submit(
            user, list(PIPELINE), input={"request": REQUESTS[index % len(REQUESTS)]}
        )
        counted = 0
        async for event in handle.events():
            if event.kind in ("agent_completed", "agent_failed"):
                counted += 1
                progress.advance(stages=1)
        result = await handle.result()
        progress.advance(stages=len(PIPELINE) - counted, runs=1)  # skipped stages
        return result

    return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(users))))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        description="Run the AI-spend agents for many users on agentkit.",
    )
    p.add_argument(
        "--users",
        type=int,
        default=24,
        help="number of users (default 24; the dataset has 100, users past it have no usage)",
    )
    p.add_argument("--concurrency", type=int, default=8, help="runs executing at once (default 8)")
    p.add_argument("--cache", default="memory://", help="cache URL (default memory://)")
    p.add_argument(
        "--store",
        default=f"sqlite:///{DEFAULT_DB}",
        help="store URL (default sqlite:///var/agentkit-example.db in the project)",
    )
    p.add_argument(
        "--agents-path", default=str(ROOT / "agents"), help="plugin folder with the agents"
    )
    p.add_argument(
        "--key-file",
        type=Path,
        default=None,
        help=f"where to keep the generated signing key without ${SIGNING_KEY_ENV} "
        "(default: beside the SQLite database)",
    )
    p.add_argument("--report", action="store_true", help="print the first user's report")
    add_telemetry_options(p)
    args = p.parse_args(argv)
    if args.users < 1 or args.concurrency < 1:
        p.error("--users and --concurrency must be at least 1")
    return args


async def main_async(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the demo; returns the exit code."""
    db = sqlite_path(args.store)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    key_file = args.key_file or (db.with_suffix(".key") if db else DEFAULT_DB.with_suffix(".key"))
    key = load_signing_key(key_file, create=True)

    registry = AgentRegistry()
    registry.load_path(args.agents_path)
    users = [f"user-{i:03d}" for i in range(1, args.users + 1)]
    limits = Limits(max_active_runs=args.concurrency, max_runs_per_user=2)

    err.write(
        f"running {' -> '.join(PIPELINE)} for {len(users)} users "
        f"(concurrency {args.concurrency}, cache {args.cache}, store {_display(args.store)})\n"
    )
    progress = Progress(len(users) * len(PIPELINE), len(users), err)
    started = time.perf_counter()
    with telemetry_from_args(args, service_name="agentkit-example") as telemetry:
        async with Supervisor(
            agents=registry,
            cache=args.cache,
            store=args.store,
            signing_key=key,
            limits=limits,
            telemetry=telemetry,
        ) as sup:
            results = await run_users(sup, users, progress)
    elapsed = time.perf_counter() - started
    progress.close()

    rows = [summarize(r) for r in results]
    out.write(render_table(rows) + "\n\n")
    ok = sum(r.ok for r in rows)
    total = sum(r.savings_usd for r in rows)
    store = _display(args.store)
    out.write(
        f"{ok}/{len(rows)} runs succeeded in {elapsed:.2f}s ({len(rows) / elapsed:.1f} runs/s); "
        f"savings found: ${total:,.2f}/month in total\n"
        f"results stored in {store}\n"
        f"inspect one: agentkit runs show {rows[0].run_id} --user {rows[0].user} --store {store}\n"
    )
    if args.report:
        rep = results[0].stages.get("reporting")
        if rep is not None and isinstance(rep.output, dict):
            out.write("\n" + str(rep.output["markdown"]))
    return 0 if ok == len(rows) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: typed errors become one line on stderr and exit code 2."""
    args = parse_args(argv)
    try:
        return asyncio.run(main_async(args, sys.stdout, sys.stderr))
    except (AgentkitError, OSError) as exc:
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
