"""PostgresStore's schema: versioned migrations, applied once under an advisory lock.

Every migration is a list of statements with ``{s}`` standing for the quoted schema name.
Applied versions are recorded in ``{s}.schema_migrations``; new versions are appended here,
never edited, so every database converges to the same schema.
"""

from __future__ import annotations

import re
from typing import Any

from agentkit.errors import ConfigurationError

__all__ = ["MIGRATIONS", "apply_migrations", "quote_schema"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: (version, description, statements)
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "runs, results, owners",
        [
            """CREATE TABLE {s}.runs (
                run_id       text PRIMARY KEY,
                user_id      text NOT NULL,
                session_id   text,
                pipeline     text[] NOT NULL,
                status       text NOT NULL,
                submitted_at timestamptz NOT NULL,
                started_at   timestamptz,
                finished_at  timestamptz,
                error        jsonb,
                owner        text NOT NULL DEFAULT '',
                store_owner  text NOT NULL,
                updated_at   timestamptz NOT NULL DEFAULT now()
            )""",
            "CREATE INDEX runs_user_submitted ON {s}.runs (user_id, submitted_at DESC)",
            "CREATE INDEX runs_user_status_submitted"
            " ON {s}.runs (user_id, status, submitted_at DESC)",
            "CREATE INDEX runs_live_owner ON {s}.runs (store_owner)"
            " WHERE status IN ('queued', 'running')",
            """CREATE TABLE {s}.results (
                run_id        text NOT NULL,
                agent         text NOT NULL,
                user_id       text NOT NULL,
                agent_version text NOT NULL,
                session_id    text,
                status        text NOT NULL,
                started_at    timestamptz,
                finished_at   timestamptz,
                duration_s    double precision,
                ts            timestamptz NOT NULL,
                output        jsonb,
                output_json   text NOT NULL,
                blob          bytea NOT NULL,
                saved_at      timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (run_id, agent)
            )""",
            "CREATE INDEX results_user_ts ON {s}.results (user_id, ts DESC)",
            "CREATE INDEX results_user_agent_ts ON {s}.results (user_id, agent, ts DESC)",
            "CREATE INDEX results_user_status_ts ON {s}.results (user_id, status, ts DESC)",
            """CREATE TABLE {s}.owners (
                owner        text PRIMARY KEY,
                started_at   timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL
            )""",
        ],
    ),
]


def quote_schema(name: str) -> str:
    """The schema name quoted for SQL, after checking it is a plain lower-case identifier.

    Raises:
        ConfigurationError: not ``[a-z_][a-z0-9_]{0,62}``.
    """
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise ConfigurationError(
            f"schema must be a lower-case identifier like 'agentkit' ([a-z_][a-z0-9_]*, "
            f"at most 63 characters), got {name!r:.80}"
        )
    return f'"{name}"'


async def apply_migrations(conn: Any, schema: str) -> list[int]:
    """Create ``schema`` if needed and apply the migrations it lacks; return those applied.

    Runs in one transaction under a transaction-level advisory lock keyed by the schema, so
    processes starting together apply each migration exactly once.
    """
    s = quote_schema(schema)
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"agentkit:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
                version     integer PRIMARY KEY,
                description text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )"""
        )
        done = {r[0] for r in await conn.fetch(f"SELECT version FROM {s}.schema_migrations")}
        newest = max(v for v, _, _ in MIGRATIONS)
        if done and max(done) > newest:
            raise ConfigurationError(
                f"schema {schema!r} is at version {max(done)} but this agentkit knows only "
                f"up to {newest}; upgrade agentkit or use another schema"
            )
        for version, description, statements in MIGRATIONS:
            if version in done:
                continue
            for statement in statements:
                await conn.execute(statement.replace("{s}", s))
            await conn.execute(
                f"INSERT INTO {s}.schema_migrations (version, description) VALUES ($1, $2)",
                version,
                description,
            )
            applied.append(version)
    return applied
