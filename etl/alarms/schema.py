"""The operational database's tables, as the newest migration leaves them (migrations.py).

A change here needs a new migration; tests/test_alarms.py checks that a migrated database has
exactly these tables and columns.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from contract.schemas import AXES


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend: SQLite keeps no time zone, so it stores naive UTC and
    gets the zone back on reading; Postgres stores timestamptz."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime {value!r} cannot be stored: give it a time zone")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("originator", sa.String(200), nullable=False),  # store/door, store, robot/axis
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("first_seen", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),  # condition reports merged into it
    sa.Column("cleared_at", UtcDateTime),  # NULL: active
    sa.Column("acknowledged_by", sa.String(100)),  # NULL: unacknowledged
    sa.Column("acknowledged_at", UtcDateTime),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # One open alarm per originator and type: the database refuses a second one, whoever writes.
    sa.Index(
        "alarms_one_open",
        "originator",
        "type",
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    ),
    sa.Index("alarms_by_seen", "last_seen"),
)

alarm_events = sa.Table(
    "alarm_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id"), nullable=False, index=True),
    sa.Column("at", UtcDateTime, nullable=False),  # when it happened (data time for the engine's changes)
    sa.Column("recorded_at", UtcDateTime, nullable=False),  # wall clock
    sa.Column("who", sa.String(100), nullable=False),
    sa.Column("what", sa.String(32), nullable=False),  # opened, retriggered, escalated, cleared, acknowledged
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # the state change it announces: one notification per change, whoever retries
    sa.Column("event_id", sa.Integer, sa.ForeignKey("alarm_events.id"), nullable=False, unique=True),
    sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id"), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),  # opened | escalated | cleared
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | silenced | muted
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("channels", sa.String(100), nullable=False, server_default=""),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Index("outbox_pending", "status", "id"),
)

silences = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("originator", sa.String(200)),  # NULL: any
    sa.Column("type", sa.String(64)),  # NULL: any
    sa.Column("starts_at", UtcDateTime, nullable=False),
    sa.Column("ends_at", UtcDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

# The engine's memory of each condition between runs: pending periods span runs and writers.
condition_state = sa.Table(
    "condition_state",
    metadata,
    sa.Column("originator", sa.String(200), primary_key=True),
    sa.Column("type", sa.String(64), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("since", UtcDateTime),  # start of the current active episode
    sa.Column("last_active_at", UtcDateTime),
    sa.Column("inactive_since", UtcDateTime),
    sa.Column("severity", sa.String(16), nullable=False),  # highest of the current episode
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

feed_state = sa.Table(
    "feed_state",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("watermark", UtcDateTime, nullable=False),  # conditions known up to here were fed
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

staging_doors = sa.Table(
    "staging_doors",
    metadata,
    sa.Column("store", sa.String(100), primary_key=True),
    sa.Column("sensor_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", UtcDateTime, primary_key=True),
    sa.Column("count", sa.Integer),  # NULL: a failed reading
    sa.Column("staged_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
)

staging_robots = sa.Table(
    "staging_robots",
    metadata,
    sa.Column("robot_id", sa.String(100), primary_key=True),
    sa.Column("ts", UtcDateTime, primary_key=True),
    *(sa.Column(axis, sa.Float, nullable=False) for axis in AXES),
    sa.Column("staged_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
)
