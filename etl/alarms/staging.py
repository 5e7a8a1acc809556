"""`import-csv --stage`: the validated rows of a recorded CSV also in the operational database's
staging_doors / staging_robots, upserted on (sensor, time): an import run twice stages each row once,
and a corrected file replaces the values it had staged."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from etl.alarms import schema

ROWS_PER_STATEMENT = 5000


def staging_table(kind: str) -> sa.Table:
    return {"doors": schema.staging_doors, "robots": schema.staging_robots}[kind]


def stage(engine: sa.Engine, kind: str, rows: pa.Table, source: str) -> int:
    """Upsert the rows (a data set's validated readings) into its staging table; returns how many."""
    table = staging_table(kind)
    keys = [c.name for c in table.primary_key.columns]
    values = [c.name for c in table.columns if c.name not in keys]
    staged_at = dt.datetime.now(dt.UTC)
    names = [c.name for c in table.columns if c.name in rows.column_names]
    with engine.begin() as conn:
        insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)
        upsert = insert.on_conflict_do_update(index_elements=keys, set_={c: insert.excluded[c] for c in values})
        for batch in rows.select(names).to_batches(ROWS_PER_STATEMENT):
            records = batch.to_pylist()
            for record in records:
                record["staged_at"], record["source"] = staged_at, source
            conn.execute(upsert, records)
    return rows.num_rows


def staged_rows(engine: sa.Engine, kind: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(staging_table(kind))).scalar_one()
