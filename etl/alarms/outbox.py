"""Sending the outbox: each pending state change once, through etl/notify.py's channels.

At least once, no duplicate after a retry: the pending rows are locked (FOR UPDATE SKIP LOCKED on
Postgres, so a second sender skips them instead of sending them too; BEGIN IMMEDIATE on SQLite),
delivered, and marked sent in the same transaction. A failed delivery rolls back: the rows stay
pending and the next run sends them, and only them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa

from etl.alarms import schema
from etl.notify import Alert, deliver
from etl.settings import EtlSettings

BATCH = 500  # changes per delivery: one webhook POST, one mail


def alert_of(row) -> Alert:
    what = {"opened": "opened", "escalated": "escalated to", "cleared": "cleared"}[row["change"]]
    return Alert(
        key=f"alarm-{row['alarm_id']}/{row['change']}/{row['event_id']}",
        kind=row["type"],
        level=row["severity"],
        subject=f"alarm #{row['alarm_id']} {row['originator']} {row['type']} {what} {row['severity']} "
        f"(first seen {row['first_seen']:%Y-%m-%d %H:%M}Z, last seen {row['last_seen']:%Y-%m-%d %H:%M}Z, "
        f"{row['count']} reports)",
        detail={"alarm_id": row["alarm_id"], "change": row["change"], "at": row["at"].isoformat(),
                "originator": row["originator"], "type": row["type"], "details": row["details"]},
    )  # fmt: skip


def deliver_outbox(engine: sa.Engine, settings: EtlSettings, log: Callable[[str], None] = print) -> dict:
    """Send every pending change; returns {"alerts": n, "channels": [...], "subjects": [...]}."""
    o, a, e = schema.outbox, schema.alarms, schema.alarm_events
    sent: list[Alert] = []
    channels: list[str] = []
    while True:
        with engine.begin() as conn:
            locked = conn.execute(
                sa.select(o.c.id).where(o.c.status == "pending").order_by(o.c.id).limit(BATCH)
                .with_for_update(skip_locked=True)
            ).scalars().all()  # fmt: skip
            if not locked:
                break
            rows = conn.execute(
                sa.select(o.c.id, o.c.alarm_id, o.c.event_id, o.c.change, e.c.at, e.c.severity, a.c.originator,
                          a.c.type, a.c.first_seen, a.c.last_seen, a.c.count, a.c.details)
                .join(a, a.c.id == o.c.alarm_id).join(e, e.c.id == o.c.event_id)
                .where(o.c.id.in_(locked)).order_by(o.c.id)
            ).mappings().all()  # fmt: skip
            alerts = [alert_of(r) for r in rows]
            used = deliver(alerts, settings, log)  # raises: nothing is marked sent
            conn.execute(
                sa.update(o).where(o.c.id.in_(locked))
                .values(status="sent", sent_at=dt.datetime.now(dt.UTC), channels=",".join(used) or "log")
            )  # fmt: skip
            sent += alerts
            channels = sorted(set(channels) | set(used), key=["webhook", "smtp"].index)
    return {"alerts": len(sent), "channels": channels, "subjects": [x.subject for x in sent]}
