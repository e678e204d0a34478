"""Typed options in backend URL queries (``redis://h/0?op_timeout=0.2``), shared by backends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from agentkit.errors import ConfigurationError

__all__ = [
    "OptionParser",
    "opt_bool",
    "opt_float",
    "opt_int",
    "opt_optional_float",
    "opt_str",
    "split_options",
]

OptionParser = Callable[[str, str], Any]


def opt_float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(f"URL option {name}={value!r} must be a number") from None


def opt_optional_float(name: str, value: str) -> float | None:
    return None if value.lower() in ("none", "") else opt_float(name, value)


def opt_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"URL option {name}={value!r} must be an integer") from None


def opt_bool(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"URL option {name}={value!r} must be true or false")


def opt_str(name: str, value: str) -> str:
    return value


def split_options(url: str, known: Mapping[str, OptionParser]) -> tuple[str, dict[str, Any]]:
    """Split the ``known`` options (parsed to their types) out of ``url``'s query.

    Returns the URL with the remaining query parameters (for the driver) and the options.

    Raises:
        ConfigurationError: a known option has a value of the wrong type.
    """
    parts = urlsplit(url)
    rest: list[tuple[str, str]] = []
    found: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in known:
            found[name] = known[name](name, value)
        else:
            rest.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(rest))), found
