"""``agentkit inspect MODULE:ATTR``: what the sanitizer and the picklers make of a value."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Iterable
from typing import Any

from agentkit.cli._runtime_opts import guarded
from agentkit.errors import ConfigurationError
from agentkit.report import SanitizeReport
from agentkit.sanitizer import ObjectSanitizer
from agentkit.validator import PickleReport, PicklerName, PickleValidator

__all__ = ["add_parser", "load_target", "render_tree", "run"]

_SEGMENT = re.compile(r'\.([^.\[]+)|\[("(?:[^"\\]|\\.)*"|[^\]]*)\]')


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="show what the sanitizer and the picklers make of a value",
        description=(
            "Import MODULE, take ATTR from it (dots walk attributes; a callable is not "
            "called), and print the sanitize report and the pickle check as trees."
        ),
    )
    p.add_argument("target", metavar="MODULE:ATTR", help="for example mypkg.results:LAST")
    p.add_argument(
        "--pickler",
        choices=("pickle", "cloudpickle", "both"),
        default="both",
        help="which pickler to check with (default: both)",
    )
    p.add_argument("--call", action="store_true", help="call ATTR and inspect its return value")
    return p


def load_target(target: str, *, call: bool = False) -> Any:
    """Import ``module:attr.path`` and return the attribute (called when ``call``).

    Raises:
        ConfigurationError: the target is malformed or cannot be imported or found.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigurationError(f"expected MODULE:ATTR (like pkg.mod:value), got {target!r}")
    if module_name.startswith("."):
        raise ConfigurationError(f"use an absolute module name, got {module_name!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like ``python -m``: modules in the working directory
    try:
        value: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        try:
            value = getattr(value, part)
        except AttributeError as exc:
            raise ConfigurationError(f"{target!r}: no attribute {part!r}") from exc
    if call:
        try:
            value = value()
        except Exception as exc:
            raise ConfigurationError(
                f"calling {target!r} raised {type(exc).__name__}: {exc}"
            ) from exc
    return value


def _split(path: str) -> list[str]:
    rest = path[1:] if path.startswith("$") else path
    parts = []
    for m in _SEGMENT.finditer(rest):
        parts.append("." + m.group(1) if m.group(1) is not None else f"[{m.group(2)}]")
    return parts


def render_tree(rows: Iterable[tuple[str, str]]) -> list[str]:
    """Draw ``(path, text)`` rows as a tree rooted at ``$`` (box-drawing characters)."""
    root: dict[str, Any] = {}
    notes: dict[int, list[str]] = {}
    for path, text in rows:
        node = root
        for part in _split(path):
            node = node.setdefault(part, {})
        notes.setdefault(id(node), []).append(text)
    lines = ["$" + "".join(f"  {t}" for t in notes.get(id(root), []))]

    def walk(node: dict[str, Any], prefix: str) -> None:
        items = list(node.items())
        for i, (part, child) in enumerate(items):
            last = i == len(items) - 1
            texts = notes.get(id(child), [])
            label = part + ("  " + "; ".join(texts) if texts else "")
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label}")
            walk(child, prefix + ("    " if last else "│   "))

    walk(root, "")
    return lines


def format_sanitize(report: SanitizeReport) -> list[str]:
    """The sanitize report: a headline and a tree of changes."""
    if not report.lossy:
        return ["sanitize: clean (nothing changed)"]
    counts = ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
    head = f"sanitize: {report.total} change(s), lossy ({counts})"
    rows = [(e.path, f"{e.kind.value}  {e.type}  {e.reason}") for e in report.entries]
    tail = [f"  … {report.entries_dropped} more not listed"] if report.entries_dropped else []
    return [head, *render_tree(rows), *tail]


def format_pickle(report: PickleReport) -> list[str]:
    """A pickle check: ok with the size, or a tree of offenders."""
    if report.ok:
        return [f"{report.pickler}: ok ({report.size} bytes)"]
    head = f"{report.pickler}: FAILED, {len(report.offenders)} offender(s)"
    if report.truncated:
        head += " (more not listed)"
    rows = [(o.path, f"{o.type}  {o.error}") for o in report.offenders]
    return [head, *render_tree(rows)]


def run(args: argparse.Namespace) -> int:
    """Print both reports; exit 0 when the value is clean and picklable, 1 otherwise.

    A bad target is one line on stderr and exit 2 (like every agentkit subcommand); a closed
    output pipe ends quietly and Ctrl-C exits 130.
    """
    return guarded(_inspect)(args)


def _inspect(args: argparse.Namespace) -> int:
    value = load_target(args.target, call=args.call)
    _, report = ObjectSanitizer().sanitize(value)
    out = [f"inspect {args.target}  ({type(value).__module__}.{type(value).__qualname__})", ""]
    out += format_sanitize(report)
    picklers: tuple[PicklerName, ...] = (
        ("pickle", "cloudpickle") if args.pickler == "both" else (args.pickler,)
    )
    all_ok = True
    validator = PickleValidator()
    for name in picklers:
        checked = validator.check(value, pickler=name)
        all_ok = all_ok and checked.ok
        out += ["", *format_pickle(checked)]
    sys.stdout.write("\n".join(out) + "\n")
    return 0 if all_ok and not report.lossy else 1
