"""What people do with alarms (the CLI and the dashboard's tab): list, acknowledge, silence, read
the history. Every change is an alarm_events or silences row with who and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from etl.alarms import schema
from etl.alarms.rules import RANK

STATUSES = ("active", "cleared", "acknowledged", "unacknowledged")


class AlarmNotFound(ValueError):
    pass


@dataclass(frozen=True)
class AlarmFilter:
    status: tuple[str, ...] = ()  # any of STATUSES, all must hold
    severity: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    store: str = ""  # originator is the store or one of its doors
    robot: str = ""  # originator is one of the robot's axes
    limit: int = 1000

    def __post_init__(self) -> None:
        for s in self.status:
            if s not in STATUSES:
                raise ValueError(f"--status {s!r} is not one of {', '.join(STATUSES)}")
        for s in self.severity:
            if s not in RANK:
                raise ValueError(f"--severity {s!r} is not one of {', '.join(RANK)}")


def list_alarms(engine: sa.Engine, f: AlarmFilter = AlarmFilter()) -> list[dict]:
    """Newest first, with a `status` such as "active, unacknowledged"."""
    a = schema.alarms
    where = []
    conditions = {
        "active": a.c.cleared_at.is_(None),
        "cleared": a.c.cleared_at.is_not(None),
        "acknowledged": a.c.acknowledged_by.is_not(None),
        "unacknowledged": a.c.acknowledged_by.is_(None),
    }
    where += [conditions[s] for s in f.status]
    if f.severity:
        where.append(a.c.severity.in_(f.severity))
    if f.type:
        where.append(a.c.type.in_(f.type))
    for prefix in (f.store, f.robot):
        if prefix:
            where.append(sa.or_(a.c.originator == prefix, a.c.originator.startswith(prefix + "/", autoescape=True)))
    query = sa.select(a).where(*where).order_by(a.c.last_seen.desc(), a.c.id.desc()).limit(f.limit)
    with engine.connect() as conn:
        return [with_status(dict(r)) for r in conn.execute(query).mappings()]


def with_status(row: dict) -> dict:
    state = "active" if row["cleared_at"] is None else "cleared"
    row["status"] = f"{state}, {'acknowledged' if row['acknowledged_by'] else 'unacknowledged'}"
    return row


def acknowledge(engine: sa.Engine, alarm_id: int, by: str, note: str = "") -> dict:
    """Acknowledge an alarm (again: a no-op, recorded); returns it."""
    if not by.strip():
        raise ValueError("--by: say who acknowledges")
    a = schema.alarms
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        row = conn.execute(sa.select(a).where(a.c.id == alarm_id).with_for_update()).mappings().first()
        if row is None:
            raise AlarmNotFound(f"no alarm #{alarm_id}")
        if row["acknowledged_by"] is None:
            conn.execute(sa.update(a).where(a.c.id == alarm_id).values(acknowledged_by=by, acknowledged_at=now,
                                                                       updated_at=now))  # fmt: skip
        conn.execute(
            sa.insert(schema.alarm_events).values(
                alarm_id=alarm_id, at=now, recorded_at=now, who=by, what="acknowledged", severity=row["severity"],
                note=note or ("" if row["acknowledged_by"] is None else f"already by {row['acknowledged_by']}"),
            )
        )  # fmt: skip
        row = conn.execute(sa.select(a).where(a.c.id == alarm_id)).mappings().one()
    return with_status(dict(row))


def silence(
    engine: sa.Engine, originator: str | None, kind: str | None, until: dt.datetime, reason: str, by: str,
    now: dt.datetime | None = None,
) -> int:  # fmt: skip
    """Suppress notifications of the originator's and/or type's alarms until `until`; returns its id.
    The alarms themselves are still opened, updated and cleared."""
    now = now or dt.datetime.now(dt.UTC)
    if not originator and not kind:
        raise ValueError("a silence needs --originator or --type (or both)")
    if not by.strip() or not reason.strip():
        raise ValueError("a silence needs --reason and --by")
    if until.tzinfo is None or until <= now:
        raise ValueError(f"--until {until.isoformat()} must be a time with a zone, in the future")
    with engine.begin() as conn:
        return conn.execute(
            sa.insert(schema.silences).values(originator=originator or None, type=kind or None, starts_at=now,
                                              ends_at=until, reason=reason, created_by=by, created_at=now)
            .returning(schema.silences.c.id)
        ).scalar_one()  # fmt: skip


def list_silences(engine: sa.Engine, now: dt.datetime | None = None) -> list[dict]:
    """Silences not yet ended."""
    s = schema.silences
    now = now or dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(s).where(s.c.ends_at > now).order_by(s.c.ends_at)).mappings()]


def history(engine: sa.Engine, alarm_id: int) -> list[dict]:
    """The alarm's events, oldest first, with whether each notification went out."""
    e, o = schema.alarm_events, schema.outbox
    query = (
        sa.select(e, o.c.status.label("notification"), o.c.sent_at, o.c.note.label("notification_note"))
        .outerjoin(o, o.c.event_id == e.c.id)
        .where(e.c.alarm_id == alarm_id)
        .order_by(e.c.id)
    )
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        if (
            not rows
            and conn.execute(sa.select(schema.alarms.c.id).where(schema.alarms.c.id == alarm_id)).first() is None
        ):
            raise AlarmNotFound(f"no alarm #{alarm_id}")
    return rows
