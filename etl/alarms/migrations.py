"""Versioned schema migrations with a schema_version table, run by the code at every open.

Why not Alembic: its migrations live in a script folder with an env.py and are run by a command;
ours are a handful, must run in-process wherever the database is opened (the DAG, the stream
job, the CLI, the dashboard), and two of those starting together must migrate once. A list of
numbered functions, applied in one transaction under a lock (BEGIN IMMEDIATE on SQLite, an
advisory lock on Postgres), does that in 40 lines. A later ALTER can still use
`alembic.operations.Operations` (alembic comes with Airflow) inside a migration function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from etl.alarms import schema

MIGRATION_LOCK = 150_015  # Postgres advisory lock key: issue 15


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def v1(conn: sa.Connection) -> None:
    tables = [t for name, t in schema.metadata.tables.items() if name != "schema_version"]
    schema.metadata.create_all(conn, tables=tables)


MIGRATIONS = [
    Migration(1, "alarms, alarm_events, outbox, silences, condition_state, feed_state, staging tables", v1),
]


def migrate(engine: sa.Engine) -> list[int]:
    """Apply the migrations the database lacks; returns their versions."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        schema.schema_version.create(conn, checkfirst=True)
        done = set(conn.execute(sa.select(schema.schema_version.c.version)).scalars())
        newer = max(done, default=0) - max(m.version for m in MIGRATIONS)
        if newer > 0:
            raise RuntimeError(f"the operational database is at schema version {max(done)}, newer than this code's")
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            migration.apply(conn)
            conn.execute(
                sa.insert(schema.schema_version).values(
                    version=migration.version, description=migration.description, applied_at=dt.datetime.now(dt.UTC)
                )
            )
            applied.append(migration.version)
    return applied
