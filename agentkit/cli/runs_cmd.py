"""``agentkit runs list|show``: read stored runs of one user, decoded and readable."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agentkit.backends import store_from_url
from agentkit.cli._runtime_opts import (
    add_store_options,
    format_table,
    guarded,
    signing_key,
    store_url,
    to_json,
)
from agentkit.cli.run_cmd import render_output, result_json, stage_table
from agentkit.errors import ConfigurationError
from agentkit.keys import validate_user_id
from agentkit.run import RunResult
from agentkit.status import RunStatus
from agentkit.store.records import RunRecord

__all__ = ["register"]

T = TypeVar("T")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``runs`` subcommand (``list`` and ``show``) to ``subparsers``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "runs",
        help="list and show stored runs of a user",
        description="Read stored runs. Every read is scoped by --user: another user's run "
        "is not found.",
    )
    sub = p.add_subparsers(dest="runs_command", metavar="{list,show}", required=True)

    lst = sub.add_parser("list", help="list a user's runs, newest first")
    lst.add_argument("--user", required=True, help="whose runs")
    lst.add_argument(
        "--status", choices=[s.value for s in RunStatus], default=None, help="only this status"
    )
    lst.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_store_options(lst)
    lst.set_defaults(func=guarded(run_list))

    show = sub.add_parser("show", help="show one run with its decoded stage results")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--user", required=True, help="the run's user")
    show.add_argument("--agent", default=None, help="show only this stage's output")
    show.add_argument("--json", action="store_true", help="print the whole run as JSON")
    add_store_options(show)
    show.set_defaults(func=guarded(run_show))
    return p


async def _with_supervisor(args: argparse.Namespace, use: Callable[[Any], Awaitable[T]]) -> T:
    url = store_url(args)
    key = signing_key(url, args.key_file, create=False)
    from agentkit.supervisor import Supervisor

    # a reader must not run crash recovery: a writer may be running on the same database
    options = {"recover": False} if urlsplit(url).scheme.lower() == "sqlite" else {}
    store = store_from_url(url, **options)
    try:
        async with Supervisor(store=store, signing_key=key) as sup:
            return await use(sup)
    finally:
        await store.aclose()


def run_list(args: argparse.Namespace) -> int:
    """Print the user's runs."""
    user = validate_user_id(args.user)
    if not 1 <= args.limit <= 10_000:
        raise ConfigurationError("--limit must be in 1..10000")
    status = RunStatus(args.status) if args.status else None

    async def use(sup: Any) -> list[RunRecord]:
        runs: list[RunRecord] = await sup.list_runs(user, status=status, limit=args.limit)
        return runs

    runs = asyncio.run(_with_supervisor(args, use))
    if args.json:
        sys.stdout.write(to_json([r.model_dump(mode="json") for r in runs]) + "\n")
        return 0
    if not runs:
        sys.stderr.write(f"no runs for user {user!r} in {store_url(args)}\n")
        return 0
    rows = [
        (
            r.run_id,
            str(r.status),
            r.submitted_at,
            None
            if r.finished_at is None or r.started_at is None
            else (r.finished_at - r.started_at).total_seconds(),
            ",".join(r.pipeline),
        )
        for r in runs
    ]
    headers = ("run_id", "status", "submitted", "seconds", "pipeline")
    sys.stdout.write(format_table(headers, rows) + "\n")
    return 0


def _show_text(result: RunResult, agent: str | None) -> str:
    lines = [
        f"run {result.run_id}  user {result.user_id}  status {result.status}",
        f"pipeline: {' -> '.join(result.pipeline)}"
        + (f"   ({result.timings['run_s']:.3f} s)" if "run_s" in result.timings else ""),
    ]
    if result.session_id:
        lines.append(f"session: {result.session_id}")
    if result.error:
        lines.append(f"error: {result.error.get('type')}: {result.error.get('message')}")
    lines += ["", stage_table(result.stages)]
    for name, stage in result.stages.items():
        if agent is not None and name != agent:
            continue
        lines += ["", f"== {name} ({stage.status})"]
        if stage.report.total:
            lines.append(f"sanitizer: {stage.report.total} change(s)")
            lines += [f"  {e.path}  {e.kind}  {e.type}: {e.reason}" for e in stage.report.entries]
            if stage.report.entries_dropped:
                lines.append(f"  … and {stage.report.entries_dropped} more")
        if stage.error is not None:
            lines.append(f"error: {stage.error.type}: {stage.error.message}")
        if stage.output is not None:
            lines.append(render_output(stage.output))
    return "\n".join(lines)


def run_show(args: argparse.Namespace) -> int:
    """Print one run, decoded."""
    user = validate_user_id(args.user)

    async def use(sup: Any) -> RunResult:
        result: RunResult = await sup.get_run(user, args.run_id)
        return result

    result = asyncio.run(_with_supervisor(args, use))
    if args.agent is not None and args.agent not in result.stages:
        raise ConfigurationError(
            f"run {result.run_id} has no stage {args.agent!r}; stages: " + ", ".join(result.stages)
        )
    sys.stdout.write((result_json(result) if args.json else _show_text(result, args.agent)) + "\n")
    return 0
