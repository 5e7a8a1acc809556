"""The marts as conditions: every detector's output, read after the transform, fed to the engine.

Each etl/alarms/sql/<source>.sql turns its marts into reports (originator, type, severity,
observed_at, active, details) with the time a run can know them; a run feeds those known after
the previous run's watermark and up to its `now`, and records its watermark in the same
transaction as the alarms' changes. A re-run of an hour feeds nothing twice; a first run starts
ETL_ALERT_WINDOW_DAYS back (a new database is not flooded with the lake's history).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import sqlalchemy as sa

from etl.alarms import schema
from etl.alarms.engine import ApplyResult, Condition, apply
from etl.alarms.rules import Rules
from etl.lake import Lake
from etl.marts import read_mart

SQL = Path(__file__).parent / "sql"
FEED = "marts"
# source query -> the marts it reads
SOURCES = {
    "robot_incident": ("robot_incidents",),
    "door_anomaly": ("door_anomalies",),
    "door_failure": ("door_hourly_sensor",),
    "door_health": ("door_health",),
    "maintenance_due": ("robot_maintenance",),
}
INCIDENT_GAP_SECONDS = 300.0  # TransformParams.incident_gap_seconds: an incident may grow until then
MAINTENANCE_HORIZON_DAYS = 14.0  # a forecast this close is an alarm
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def mart_conditions(lake: Lake, since: dt.datetime, now: dt.datetime) -> list[Condition]:
    """Reports known in (since, now], from every source whose marts exist."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    params = {"since": since, "now": now, "gap_seconds": INCIDENT_GAP_SECONDS, "horizon_days": MAINTENANCE_HORIZON_DAYS}
    conditions = []
    tables = {}
    for source, marts in SOURCES.items():
        for name in marts:
            if name not in tables:
                tables[name] = read_mart(lake, name)
        if any(tables[name] is None or tables[name].num_rows == 0 for name in marts):
            continue
        for name in marts:
            con.register(name, tables[name])
        query = (SQL / f"{source}.sql").read_text()
        used = {k: v for k, v in params.items() if f"${k}" in query}
        for originator, kind, severity, observed_us, active, details in con.execute(query, used).fetchall():
            observed_at = EPOCH + dt.timedelta(microseconds=observed_us)  # no pytz: DuckDB's zoned values need it
            conditions.append(Condition(originator, kind, severity, observed_at, active, json.loads(details)))
    con.close()
    return conditions


def watermark(engine: sa.Engine, source: str = FEED) -> dt.datetime | None:
    f = schema.feed_state
    with engine.connect() as conn:
        return conn.execute(sa.select(f.c.watermark).where(f.c.source == source)).scalar()


def feed_marts(
    engine: sa.Engine, lake: Lake, rules: Rules, now: dt.datetime, first_window: dt.timedelta
) -> ApplyResult:
    """Feed what the marts say since the last feed, up to `now` (the run's data time)."""
    since = watermark(engine) or now - first_window
    conditions = mart_conditions(lake, since, now) if now > since else []
    return apply(engine, conditions, rules, now, feed=(FEED, max(since, now)))
