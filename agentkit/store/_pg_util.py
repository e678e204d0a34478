"""PostgresStore helpers: URL options, safe descriptions, JSONB-safe text, error clones."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from agentkit._urlopts import opt_bool, opt_float, opt_int, opt_str
from agentkit._urlopts import split_options as _split_options
from agentkit.errors import StoreError

__all__ = ["URL_OPTIONS", "clone_error", "describe", "jsonb_text", "split_options", "split_schema"]


def jsonb_text(text: str, *, strict: bool = False) -> str | None:
    """``text`` made acceptable to JSONB (which rejects NaN/Infinity and NUL characters).

    The exact text is kept in ``output_json``; the JSONB column is for querying only, so
    non-finite numbers become strings there and NULs are dropped. Unparseable text → NULL.
    Without ``strict``, text that looks plain is passed as is (the database parses it).
    """
    if not strict and "NaN" not in text and "Infinity" not in text and "\\u0000" not in text:
        return text
    try:
        value = json.loads(text, parse_constant=str)
    except ValueError:
        return None

    def fix(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, str):
            return v.replace("\x00", "")
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, dict):
            return {fix(k): fix(x) for k, x in v.items()}
        return v

    return json.dumps(fix(value), allow_nan=False)


URL_OPTIONS: dict[str, Callable[[str, str], Any]] = {
    "schema": opt_str,
    "owner": opt_str,
    "min_size": opt_int,
    "max_size": opt_int,
    "max_group": opt_int,
    "statement_timeout": opt_float,
    "connect_timeout": opt_float,
    "heartbeat_interval": opt_float,
    "stale_after": opt_float,
    "recover_on_start": opt_bool,
}


def clone_error(exc: BaseException) -> BaseException:
    clone = StoreError(str(exc))
    clone.__cause__ = exc.__cause__
    return clone


def split_schema(dsn: str) -> tuple[str, str | None]:
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def describe(dsn: str) -> str:
    """The URL without credentials, for messages and logs."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def split_options(url: str) -> tuple[str, dict[str, Any]]:
    """Split the store's own options (typed) out of ``url``'s query; the rest stays."""
    return _split_options(url, URL_OPTIONS)
