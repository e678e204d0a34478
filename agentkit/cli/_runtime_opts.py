"""Options and helpers shared by the ``agents``, ``run`` and ``runs`` subcommands."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit
from uuid import UUID

from agentkit.errors import AgentkitError, ConfigurationError
from agentkit.registry import AgentRegistry
from agentkit.signing import SIGNING_KEY_ENV, load_signing_key

__all__ = [
    "DEFAULT_AGENTS_PATH",
    "DEFAULT_STORE",
    "KEY_ENV",
    "STORE_ENV",
    "add_agents_option",
    "add_store_options",
    "format_table",
    "guarded",
    "load_registry",
    "signing_key",
    "sqlite_path",
    "to_json",
]

DEFAULT_AGENTS_PATH = "agents"
DEFAULT_STORE = "sqlite:///var/agentkit.db"
KEY_ENV = SIGNING_KEY_ENV
STORE_ENV = "AGENTKIT_STORE"


def add_agents_option(parser: argparse.ArgumentParser) -> None:
    """``--agents-path`` and ``--no-entry-points``."""
    parser.add_argument(
        "--agents-path",
        default=None,
        metavar="DIR",
        help=f"plugin folder of agents (default: ./{DEFAULT_AGENTS_PATH} if it exists)",
    )
    parser.add_argument(
        "--no-entry-points",
        action="store_true",
        help="do not load agents advertised under the 'agentkit.agents' entry point group",
    )


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store`` and ``--key-file``."""
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help=f"store URL (default: ${STORE_ENV} or {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"signing key file (hex) used without ${KEY_ENV}; "
        "default: the .key file beside a SQLite database",
    )


def store_url(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> str:
    """The store URL from ``--store``, the environment, or the default."""
    url: str = args.store or env.get(STORE_ENV) or DEFAULT_STORE
    return url


def load_registry(args: argparse.Namespace) -> AgentRegistry:
    """The registry of agents from ``--agents-path`` (or ``./agents``) and entry points.

    Raises:
        PluginLoadError: an explicitly given folder is missing or a plugin fails to import.
        DuplicateAgentError: two plugins use one name.
    """
    registry = AgentRegistry()
    path = args.agents_path
    if path is not None or Path(DEFAULT_AGENTS_PATH).is_dir():
        registry.load_path(path or DEFAULT_AGENTS_PATH)
    if not args.no_entry_points:
        registry.load_entry_points()
    return registry


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///…`` URL; ``None`` for other stores or ``:memory:``."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or len(parts.path) < 2:
        return None
    path = unquote(parts.path[1:])
    return None if path == ":memory:" else Path(path)


def signing_key(
    url: str,
    key_file: Path | None,
    *,
    create: bool,
    env: Mapping[str, str] = os.environ,
) -> bytes:
    """The signing key: ``$AGENTKIT_SIGNING_KEY`` (hex), else a key file
    (:func:`agentkit.signing.load_signing_key`).

    The key file is ``key_file`` or, for a SQLite store, the ``.key`` file beside the
    database (what ``examples/supervisor.py`` writes). With ``create`` a missing file is
    created with a random key (mode 0600).

    Raises:
        ConfigurationError: the key is not valid hex of at least 16 bytes, or no key is
            available and ``create`` is false.
    """
    if key_file is None and not env.get(KEY_ENV):
        db = sqlite_path(url)
        if db is None:
            raise ConfigurationError(
                f"no signing key: set {KEY_ENV} to the hex key the runs were written with, "
                "or pass --key-file"
            )
        key_file = db.with_suffix(".key")
    if key_file is not None and not create and not env.get(KEY_ENV) and not key_file.exists():
        raise ConfigurationError(
            f"no signing key: {str(key_file)!r} does not exist; set {KEY_ENV} or pass --key-file"
        )
    return load_signing_key(key_file, create=create, env=env)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows as aligned plain text under a header and a rule."""
    cells = [[str(c) for c in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "-"
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def to_json(value: Any) -> str:
    """Clean values as indented JSON text (datetimes ISO, bytes summarised)."""
    return json.dumps(value, indent=2, default=_json_default, ensure_ascii=False)


def guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a subcommand: typed agentkit errors and OS errors (paths) become one line on
    stderr and exit code 2; Ctrl-C exits 130 without a traceback."""

    def run(args: argparse.Namespace) -> int:
        err: TextIO = sys.stderr
        try:
            return func(args)
        except AgentkitError as exc:
            err.write(f"agentkit: error: {exc} ({type(exc).__name__})\n")
            return 2
        except BrokenPipeError:  # the reader went away (``| head``): stop quietly
            with contextlib.suppress(OSError, ValueError):  # so flushes at exit do not raise
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except OSError as exc:  # a path that cannot be created or read: the caller can fix it
            err.write(f"agentkit: error: {exc} ({type(exc).__name__})\n")
            return 2
        except KeyboardInterrupt:
            err.write("agentkit: interrupted\n")
            return 130

    run.__name__ = getattr(func, "__name__", "run")
    run.__doc__ = func.__doc__
    return run
