"""``agentkit agents``: list the registered agents (name, version, depends_on, source)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agentkit.cli._runtime_opts import (
    add_agents_option,
    format_table,
    guarded,
    load_registry,
    to_json,
)

__all__ = ["register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``agents`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "agents",
        help="list registered agents",
        description="List the agents found in the plugin folder and entry points.",
    )
    add_agents_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=guarded(run))
    return p


def _relative(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def run(args: argparse.Namespace) -> int:
    """List the agents; exit 0 (also when none are found, with a hint on stderr)."""
    registry = load_registry(args)
    described = registry.describe()
    if args.json:
        sys.stdout.write(to_json(described) + "\n")
        return 0
    if not described:
        sys.stderr.write(
            "no agents found: pass --agents-path DIR or install a package with "
            "'agentkit.agents' entry points\n"
        )
        return 0
    rows = [
        (d["name"], d["version"], d["depends_on"] or "-", _relative(str(d["source"])))
        for d in described
    ]
    sys.stdout.write(format_table(("name", "version", "depends_on", "source"), rows) + "\n")
    return 0
