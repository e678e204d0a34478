"""The ``agentkit`` command (also ``python -m agentkit``).

Subcommands live in modules of this package named in :data:`SUBCOMMANDS`. Each module exposes
either ``register(subparsers)`` (which adds its parser and sets ``func`` as a default) or
``add_parser(subparsers)`` returning its parser plus ``run(args) -> int``. Adding a
subcommand means adding a module and its name to the list.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: subcommand modules, in the order ``--help`` lists them
SUBCOMMANDS: tuple[str, ...] = ("run_cmd", "agents_cmd", "runs_cmd", "inspect_cmd")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="agentkit",
        description="Run AI sub-agents safely for many users at once.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # a subcommand not shipped in this build
            raise
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)
            continue
        sub = module.add_parser(subparsers)
        sub.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = func(args)
    return code
