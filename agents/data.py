"""``data``: aggregate one account's LLM API usage from the sample dataset.

Reads ``examples/data/usage.csv.gz`` (``DataAgent.dataset``; subclass to change it), loads
the account's calls inside the triage window into a per-run in-memory SQLite database and
aggregates them with SQL: spend by model, team, task and day, token and latency statistics,
repeated prompts, hourly load, low-complexity calls on premium models and background work.

Like real data-access code, the raw result also carries the live handles it worked with — the
SQLite connection and cursor, a lock, a logger, a query callable and the driver module. None
of that can be pickled or written as JSON; the result's clean hook turns each into a typed
placeholder before anything else sees the output.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from agentkit.agent import AgentContext, SubAgent
from agentkit.errors import ConfigurationError

__all__ = ["DEFAULT_DATASET", "DataAgent", "aggregate", "load_dataset", "open_usage_db"]

DEFAULT_DATASET = Path(__file__).resolve().parent.parent / "examples" / "data" / "usage.csv.gz"

#: a call is low-complexity when its task is simple or its prompt and answer are short
SIMPLE_TASKS = ("classification", "extraction")
LOW_COMPLEXITY_MAX_IN = 600
LOW_COMPLEXITY_MAX_OUT = 150
#: UTC hours counted as peak load for scheduling purposes
PEAK_HOURS = tuple(range(8, 18))

Row = tuple[str, str, str, str, str, str, int, int, int, float]
_COLUMNS = (
    "ts",
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

_load_lock = threading.Lock()
_loaded: dict[tuple[str, int, int], tuple[dict[str, tuple[Row, ...]], str]] = {}


def load_dataset(path: Path | str = DEFAULT_DATASET) -> tuple[dict[str, tuple[Row, ...]], str]:
    """Rows by account, and the timestamp of the last call in the file.

    Parsed once per file version (path, mtime, size) and shared read-only afterwards.

    Raises:
        ConfigurationError: the file is missing or is not the usage CSV format.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ConfigurationError(
            f"usage dataset {str(p)!r} not found; generate it with "
            "'python examples/data/generate.py' or point DataAgent.dataset at the file"
        ) from exc
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    with _load_lock:
        hit = _loaded.get(key)
        if hit is not None:
            return hit
        by_user: dict[str, list[Row]] = {}
        last = ""
        try:
            raw = p.read_bytes()
            text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            reader = csv.DictReader(io.StringIO(text.decode("utf-8")))
            for rec in reader:
                row: Row = (
                    rec["ts"],
                    rec["team"],
                    rec["model"],
                    rec["task"],
                    rec["channel"],
                    rec["prompt_hash"],
                    int(rec["tokens_in"]),
                    int(rec["tokens_out"]),
                    int(rec["latency_ms"]),
                    float(rec["cost_usd"]),
                )
                by_user.setdefault(rec["user_id"], []).append(row)
                last = max(last, rec["ts"])
        except (KeyError, ValueError, OSError, csv.Error, EOFError) as exc:
            raise ConfigurationError(
                f"usage dataset {str(p)!r} is not in the expected CSV format: {exc}"
            ) from exc
        value = ({u: tuple(rows) for u, rows in by_user.items()}, last)
        _loaded.clear()  # keep one version: a regenerated file replaces the old one
        _loaded[key] = value
        return value


def open_usage_db(rows: Sequence[Row], *, since: str | None = None) -> sqlite3.Connection:
    """A private in-memory SQLite database holding ``rows`` (those at or after ``since``)."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute(
        "CREATE TABLE calls (ts TEXT, team TEXT, model TEXT, task TEXT, channel TEXT, "
        "prompt_hash TEXT, tokens_in INTEGER, tokens_out INTEGER, latency_ms INTEGER, "
        "cost_usd REAL, hour INTEGER, day TEXT)"
    )
    conn.executemany(
        "INSERT INTO calls VALUES (?,?,?,?,?,?,?,?,?,?, CAST(substr(?,12,2) AS INTEGER), "
        "substr(?,1,10))",
        ((*r, r[0], r[0]) for r in rows if since is None or r[0] >= since),
    )
    return conn


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(q * len(sorted_values))))
    return float(sorted_values[rank - 1])


def _money(x: float | None) -> float:
    return round(float(x or 0.0), 4)


def _table(cur: sqlite3.Cursor, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    out = []
    for rec in cur.fetchall():
        item = dict(zip(names, rec, strict=True))
        for k in ("cost", "repeat_cost"):
            if k in item:
                item[k] = _money(item[k])
        out.append(item)
    return out


def aggregate(cur: sqlite3.Cursor, *, top: int = 5) -> dict[str, Any]:
    """Aggregate the ``calls`` table behind ``cur`` into the ``data`` agent's summary."""
    calls, cost, tin, tout, first, last, days = cur.execute(
        "SELECT count(*), sum(cost_usd), sum(tokens_in), sum(tokens_out), min(ts), max(ts), "
        "count(DISTINCT day) FROM calls"
    ).fetchone()
    tokens_in = [r[0] for r in cur.execute("SELECT tokens_in FROM calls ORDER BY tokens_in")]
    tokens_out = [r[0] for r in cur.execute("SELECT tokens_out FROM calls ORDER BY tokens_out")]
    latency = [r[0] for r in cur.execute("SELECT latency_ms FROM calls ORDER BY latency_ms")]

    by_model = _table(
        cur,
        "SELECT model, count(*) AS calls, sum(cost_usd) AS cost, sum(tokens_in) AS tokens_in, "
        "sum(tokens_out) AS tokens_out, CAST(avg(latency_ms) AS INTEGER) AS avg_latency_ms "
        "FROM calls GROUP BY model ORDER BY cost DESC, model",
    )
    by_team = _table(
        cur,
        "SELECT team, count(*) AS calls, sum(cost_usd) AS cost FROM calls "
        "GROUP BY team ORDER BY cost DESC, team",
    )
    by_task = _table(
        cur,
        "SELECT task, channel, count(*) AS calls, sum(cost_usd) AS cost FROM calls "
        "GROUP BY task, channel ORDER BY cost DESC, task, channel",
    )
    by_day = _table(
        cur,
        "SELECT day, count(*) AS calls, sum(cost_usd) AS cost FROM calls GROUP BY day ORDER BY day",
    )
    hourly = {
        r["hour"]: r
        for r in _table(
            cur,
            "SELECT hour, count(*) AS calls, sum(cost_usd) AS cost, "
            "sum(channel = 'background') AS background_calls, "
            "sum(CASE WHEN channel = 'background' THEN cost_usd ELSE 0 END) AS background_cost "
            "FROM calls GROUP BY hour",
        )
    }
    hourly_load = [
        {
            "hour": h,
            "calls": hourly.get(h, {}).get("calls", 0),
            "cost": _money(hourly.get(h, {}).get("cost")),
            "background_calls": hourly.get(h, {}).get("background_calls", 0),
            "background_cost": _money(hourly.get(h, {}).get("background_cost")),
        }
        for h in range(24)
    ]
    groups = _table(
        cur,
        "SELECT prompt_hash, count(*) AS count, sum(cost_usd) AS cost, "
        "sum(cost_usd) - sum(cost_usd) / count(*) AS repeat_cost, min(model) AS model "
        "FROM calls GROUP BY prompt_hash HAVING count(*) > 1 "
        "ORDER BY repeat_cost DESC, prompt_hash",
    )
    simple = ",".join("?" * len(SIMPLE_TASKS))
    low_complexity = _table(
        cur,
        "SELECT model, count(*) AS calls, sum(tokens_in) AS tokens_in, "
        "sum(tokens_out) AS tokens_out, sum(cost_usd) AS cost FROM calls "
        f"WHERE task IN ({simple}) OR (tokens_in <= ? AND tokens_out <= ?) "
        "GROUP BY model ORDER BY cost DESC, model",
        (*SIMPLE_TASKS, LOW_COMPLEXITY_MAX_IN, LOW_COMPLEXITY_MAX_OUT),
    )
    peak = ",".join("?" * len(PEAK_HOURS))
    background = _table(
        cur,
        "SELECT model, count(*) AS calls, sum(cost_usd) AS cost, "
        f"sum(hour IN ({peak})) AS peak_calls, "
        f"sum(CASE WHEN hour IN ({peak}) THEN cost_usd ELSE 0 END) AS peak_cost "
        "FROM calls WHERE channel = 'background' GROUP BY model ORDER BY cost DESC, model",
        (*PEAK_HOURS, *PEAK_HOURS),
    )
    for b in background:
        b["peak_cost"] = _money(b["peak_cost"])

    return {
        "period": {"first": first, "last": last, "days": days or 0},
        "totals": {
            "calls": calls,
            "cost": _money(cost),
            "tokens_in": tin or 0,
            "tokens_out": tout or 0,
        },
        # token counts per call; not "token_stats": a key containing "token" whose value is
        # not a number reads as a secret to the sanitizer and would be redacted
        "size_stats": {
            "in_mean": round(sum(tokens_in) / len(tokens_in), 1) if tokens_in else 0.0,
            "in_p50": _percentile(tokens_in, 0.5),
            "in_p95": _percentile(tokens_in, 0.95),
            "out_mean": round(sum(tokens_out) / len(tokens_out), 1) if tokens_out else 0.0,
            "out_p50": _percentile(tokens_out, 0.5),
            "out_p95": _percentile(tokens_out, 0.95),
        },
        "latency_ms": {"p50": _percentile(latency, 0.5), "p95": _percentile(latency, 0.95)},
        "by_model": by_model,
        "by_team": by_team,
        "by_task": by_task,
        "by_day": by_day,
        "hourly_load": hourly_load,
        "peak_hours": list(PEAK_HOURS),
        "repeated_prompts": {
            "groups": len(groups),
            "calls": sum(g["count"] for g in groups),
            "repeat_calls": sum(g["count"] - 1 for g in groups),
            "repeat_cost": _money(sum(g["repeat_cost"] for g in groups)),
            "top": groups[:top],
        },
        "low_complexity": low_complexity,
        "background": background,
    }


def window_start(last_ts: str, window_days: int) -> str:
    """The first timestamp inside a window of ``window_days`` ending at the dataset's end."""
    end = datetime.strptime(last_ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    day0 = (end - timedelta(days=window_days - 1)).date()
    return f"{day0.isoformat()}T00:00:00Z"


class DataAgent(SubAgent):
    """Aggregate the account's usage; returns the summary plus its live DB handles."""

    name = "data"
    version = "1.0"
    depends_on = ("triage",)
    timeout = 20.0
    #: the usage file; a deployment setting (subclass to change it), never taken from the run
    #: input, so a user cannot make the agent read an arbitrary file
    dataset: ClassVar[Path] = DEFAULT_DATASET

    def run(self, ctx: AgentContext) -> dict[str, Any]:
        triage = ctx.upstream["triage"]
        account = triage["account"]
        window_days = int(triage["window_days"])
        by_user, last_ts = load_dataset(self.dataset)
        ctx.check_cancelled()  # the first load parses the whole file; stop here if asked
        rows = by_user.get(account, ())
        since = window_start(last_ts, window_days) if last_ts else None

        conn = open_usage_db(rows, since=since)
        cursor = conn.cursor()
        lock = threading.Lock()
        with lock:
            summary = aggregate(cursor)
        ctx.emit("aggregated", calls=summary["totals"]["calls"], days=window_days)
        logger = logging.getLogger("agents.data")
        logger.debug("aggregated %d calls", summary["totals"]["calls"])
        return {
            "account": account,
            "known_account": account in by_user,
            "window_days": window_days,
            "dataset_end": last_ts,
            **summary,
            # the live handles real data-access code returns alongside its answer
            "db": {"connection": conn, "cursor": cursor, "driver": sqlite3, "lock": lock},
            "logger": logger,
            "query": lambda sql, *args: cursor.execute(sql, args).fetchall(),
        }
