"""Opening the operational database: SQLite in the lake folder by default, any SQLAlchemy URL
(postgresql+psycopg://...) by ETL_OPS_DB. Opening migrates it.

Writers serialise per transaction: SQLite transactions begin IMMEDIATE (the write lock is taken
at BEGIN, so two writers never both read and then both write), Postgres ones lock the rows they
change with SELECT ... FOR UPDATE (engine.py, outbox.py).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from etl.alarms.migrations import migrate

SQLITE_BUSY_SECONDS = 60  # how long a writer waits for another's transaction


def ops_url(ops_db: str, lake: str) -> str:
    """ETL_OPS_DB, or the embedded default LAKE/_ops/ops.sqlite for a lake on local disk."""
    if ops_db:
        return ops_db
    if "://" in lake and not lake.startswith("file://"):
        raise ValueError(f"ETL_OPS_DB is not set and the lake {lake} is not a local folder: set it to a database URL")
    folder = Path(lake.removeprefix("file://")) / "_ops"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder.resolve() / 'ops.sqlite'}"


def open_db(url: str) -> sa.Engine:
    """An engine on the migrated database; a bad URL is a ValueError naming ETL_OPS_DB."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ValueError(f"ETL_OPS_DB={url!r} is not a database URL such as postgresql+psycopg://user@host/db") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        event.listen(engine, "connect", sqlite_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    elif parsed.get_backend_name() == "postgresql":
        engine = sa.create_engine(parsed, pool_pre_ping=True)
    else:
        raise ValueError(f"ETL_OPS_DB={url!r}: only sqlite and postgresql databases are supported")
    try:
        migrate(engine)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise ConnectionError(f"operational database {parsed.render_as_string()}: {exc.orig}") from exc
    return engine


def sqlite_connect(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling begins lazily (DEFERRED, at the first write); hand BEGIN
    # to SQLAlchemy's "begin" event instead. WAL lets the dashboard read while a writer writes.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
