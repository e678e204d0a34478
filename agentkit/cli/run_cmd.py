"""``agentkit run PIPELINE --user U --input JSON``: run agents once and print the outcome."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from agentkit.cli._runtime_opts import (
    add_agents_option,
    add_store_options,
    format_table,
    guarded,
    load_registry,
    signing_key,
    sqlite_path,
    store_url,
    to_json,
)
from agentkit.errors import ConfigurationError
from agentkit.keys import validate_user_id
from agentkit.run import RunResult
from agentkit.telemetry import add_telemetry_options, telemetry_from_args

__all__ = ["register", "stage_rows", "stage_table"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run a pipeline of agents for one user",
        description="Run PIPELINE (comma-separated agent names) for one user, store the "
        "results, print each stage's status and the last stage's output.",
    )
    p.add_argument("pipeline", metavar="PIPELINE", help="agent names, e.g. triage,data")
    p.add_argument("--user", required=True, help="the user id the run belongs to")
    p.add_argument(
        "--input", default="null", metavar="JSON", help="the run input as JSON (default null)"
    )
    p.add_argument("--session", default=None, help="session (conversation) id")
    p.add_argument("--cache", default="memory://", metavar="URL", help="cache URL")
    add_store_options(p)
    add_agents_option(p)
    add_telemetry_options(p)
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument("--events", action="store_true", help="print the run's events on stderr")
    p.set_defaults(func=guarded(run))
    return p


def parse_pipeline(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``.

    Raises:
        ConfigurationError: the list is empty.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigurationError("PIPELINE must name at least one agent, e.g. triage,data")
    return names


def parse_input(text: str) -> Any:
    """The ``--input`` JSON.

    Raises:
        ConfigurationError: not valid JSON (says where).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"--input is not valid JSON ({exc.msg} at character {exc.pos}); "
            'quote it for the shell, e.g. --input \'{"request": "cut costs"}\''
        ) from None


def stage_rows(stages: dict[str, Any]) -> list[tuple[object, ...]]:
    """One row per stage result: agent, version, status, seconds, replaced, error."""
    rows: list[tuple[object, ...]] = []
    for name, res in stages.items():
        err = res.error
        rows.append(
            (
                name,
                res.agent_version,
                str(res.status),
                None if res.duration_s is None else round(res.duration_s, 3),
                res.report.total,
                f"{err.type.rsplit('.', 1)[-1]}: {err.message}"[:100] if err else "-",
            )
        )
    return rows


def stage_table(stages: dict[str, Any]) -> str:
    """The stage table as text."""
    headers = ("agent", "version", "status", "seconds", "sanitized", "error")
    return format_table(headers, stage_rows(stages))


def render_output(output: Any) -> str:
    """Markdown text if the output carries one, else indented JSON."""
    if isinstance(output, dict) and isinstance(output.get("markdown"), str):
        return str(output["markdown"]).rstrip("\n")
    return to_json(output)


def result_json(result: RunResult) -> str:
    """The run result as JSON text."""
    return to_json(
        {
            "run_id": result.run_id,
            "user_id": result.user_id,
            "session_id": result.session_id,
            "pipeline": list(result.pipeline),
            "status": str(result.status),
            "timings": result.timings,
            "error": result.error,
            "stages": {n: r.model_dump(mode="json") for n, r in result.stages.items()},
        }
    )


async def _run(args: argparse.Namespace) -> RunResult:
    from agentkit.supervisor import Supervisor

    pipeline = parse_pipeline(args.pipeline)
    user = validate_user_id(args.user)
    run_input = parse_input(args.input)
    url = store_url(args)
    db = sqlite_path(url)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    key = signing_key(url, args.key_file, create=True)
    registry = load_registry(args)
    with telemetry_from_args(args, service_name="agentkit-cli") as telemetry:
        async with Supervisor(
            agents=registry, cache=args.cache, store=url, signing_key=key, telemetry=telemetry
        ) as sup:
            handle = await sup.submit(user, pipeline, input=run_input, session_id=args.session)
            if args.events:
                async for ev in handle.events():
                    data = json.dumps(dict(ev.data), default=str, ensure_ascii=False)
                    sys.stderr.write(f"{ev.seq:>3}  {ev.kind:<16} {ev.agent or '-':<20} {data}\n")
            return await handle.result()


def run(args: argparse.Namespace) -> int:
    """Run the pipeline; exit 0 if every stage succeeded, 1 if not, 2 on a usage error."""
    result = asyncio.run(_run(args))
    out = sys.stdout
    if args.json:
        out.write(result_json(result) + "\n")
    else:
        out.write(f"run {result.run_id}  user {result.user_id}  status {result.status}\n\n")
        out.write(stage_table(result.stages) + "\n")
        last = result.pipeline[-1] if result.pipeline else None
        stage = result.stages.get(last) if last else None
        if stage is not None and stage.ok:
            out.write(f"\noutput of {last}:\n{render_output(stage.output)}\n")
        elif result.error:
            out.write(f"\nerror: {result.error.get('type')}: {result.error.get('message')}\n")
    return 0 if result.ok else 1
