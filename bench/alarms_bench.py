"""Alarms against raw flags: what a notifier per flag would send, and what the alarms engine sends.

    .venv/bin/python bench/alarms_bench.py [--days 90] [--step-hours 24]

Starts the API on 127.0.0.1 with a pinned clock (as bench/quality.py), pulls `--days` days of the
default fleet into a temporary lake, transforms, then replays the notify step every `--step-hours`
over those days against a fresh SQLite operational database (the default rules). Prints, per ISO
week, the raw flags (flagged robot readings, anomalous door and store hours, failed door hours,
flagged door-days and maintenance axis-days), alarms opened and notifications sent, and checks
that every robot ERROR incident was notified as a CRITICAL alarm.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from etl.alarms import schema  # noqa: E402
from etl.alarms.db import open_db, ops_url  # noqa: E402
from etl.alarms.feed import MAINTENANCE_HORIZON_DAYS, feed_marts  # noqa: E402
from etl.alarms.outbox import deliver_outbox  # noqa: E402
from etl.alarms.rules import Rules  # noqa: E402
from etl.client import ApiClient, iso  # noqa: E402
from etl.datasets import DOORS, ROBOTS  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.marts import read_mart  # noqa: E402
from etl.pull import pull  # noqa: E402
from etl.settings import EtlSettings  # noqa: E402
from etl.transform import TransformParams, transform  # noqa: E402
from tests.support import ApiServer  # noqa: E402

CLOCK = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def week(values: pd.Series) -> pd.Series:
    """The ISO week's Monday (UTC) of each time or date."""
    days = pd.to_datetime(values, utc=True).dt.tz_localize(None).dt.normalize()
    return (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).dt.date


def raw_flags(lake: Lake, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """(source, week) of every flag a detector raised in [start, end)."""
    frames = []

    def mart(name: str) -> pd.DataFrame:
        table = read_mart(lake, name)
        return table.to_pandas() if table is not None else pd.DataFrame()

    def add(source: str, times: pd.Series) -> None:
        times = pd.to_datetime(times, utc=True)
        times = times[(times >= start) & (times < end)]
        frames.append(pd.DataFrame({"source": source, "week": week(times)}))

    alerts = mart("robot_alerts")
    add("robot flagged readings", alerts.ts)
    anomalies = mart("door_anomalies")
    add("door/store anomalous hours", anomalies[anomalies.resolution == "hour"].ts)
    hourly = mart("door_hourly_sensor")
    add("failed door hours", hourly[hourly.failed_readings > 0].ts)
    health = mart("door_health")
    flagged = health[health.replacement_warning.fillna(False) | health.underused.fillna(False)]
    add("flagged door-days", pd.to_datetime(flagged.local_date).dt.tz_localize("UTC"))
    maintenance = mart("robot_maintenance")
    due = maintenance[maintenance.days_to_error.notna() & (maintenance.days_to_error <= MAINTENANCE_HORIZON_DAYS)]
    add("maintenance-due axis-days", pd.to_datetime(due.date).dt.tz_localize("UTC"))
    return pd.concat(frames, ignore_index=True)


def replay(lake: Lake, engine: sa.Engine, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> float:
    """The notify step every `step` from start to end; returns the seconds it took."""
    settings, rules = EtlSettings(lake=lake.root), Rules()
    began = time.perf_counter()
    now = start + step
    while now <= end:
        feed_marts(engine, lake, rules, now, step)
        deliver_outbox(engine, settings, log=lambda line: None)
        now += step
    return time.perf_counter() - began


def missed_errors(lake: Lake, engine: sa.Engine, start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(ERROR incidents, those not inside a robot_incident alarm notified as CRITICAL)."""
    incidents = read_mart(lake, "robot_incidents").to_pandas()
    errors = incidents[(incidents.level == "ERROR") & (incidents.start >= start) & (incidents["end"] <= end)]
    a, o, e = schema.alarms, schema.outbox, schema.alarm_events
    with engine.connect() as conn:
        notified = pd.DataFrame(
            conn.execute(
                sa.select(a.c.originator, a.c.first_seen, a.c.last_seen)
                .join(o, o.c.alarm_id == a.c.id).join(e, e.c.id == o.c.event_id)
                .where(a.c.type == "robot_incident", o.c.status == "sent", e.c.severity == "CRITICAL",
                       o.c.change.in_(("opened", "escalated")))
            ).all(),
            columns=["originator", "first_seen", "last_seen"],
        )  # fmt: skip
    missed = 0
    for i in errors.itertuples():
        same = notified[notified.originator == f"{i.robot_id}/{i.axis}"]
        missed += not ((same.first_seen <= i.end) & (same.last_seen >= i.start)).any()
    return len(errors), missed


def changes_per_week(engine: sa.Engine) -> tuple[pd.Series, pd.Series]:
    o, e = schema.outbox, schema.alarm_events
    with engine.connect() as conn:
        opened = pd.DataFrame(conn.execute(sa.select(e.c.at).where(e.c.what == "opened")).all(), columns=["at"])
        sent = pd.DataFrame(
            conn.execute(sa.select(e.c.at).join(o, o.c.event_id == e.c.id).where(o.c.status == "sent")).all(),
            columns=["at"],
        )
    return week(opened["at"]).value_counts(), week(sent["at"]).value_counts()


def per_type(engine: sa.Engine) -> pd.DataFrame:
    """Alarms opened and notifications sent and suppressed, by type."""
    a, o = schema.alarms, schema.outbox
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a.c.type, o.c.change, o.c.status).join(o, o.c.alarm_id == a.c.id)).all()
    frame = pd.DataFrame(rows, columns=["type", "change", "status"])
    return pd.DataFrame({
        "alarms opened": frame[frame.change == "opened"].groupby("type").size(),
        "notifications sent": frame[frame.status == "sent"].groupby("type").size(),
        "suppressed (muted)": frame[frame.status != "sent"].groupby("type").size(),
    }).fillna(0).astype(int)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--step-hours", type=float, default=24.0)
    args = parser.parse_args()
    params = TransformParams()
    start = CLOCK - dt.timedelta(days=args.days)
    with ApiServer(SIM_NOW=iso(CLOCK)) as server, tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        settings = EtlSettings(api_url=server.base, lake=tmp)
        client = ApiClient(settings, log=lambda line: None)
        pull(client, Lake(tmp), DOORS, settings, start - dt.timedelta(days=params.lookback_days), CLOCK)
        pull(client, Lake(tmp), ROBOTS, settings, start - dt.timedelta(days=1), CLOCK)
        client.close()
        transform(Lake(tmp), params)
        built = time.perf_counter() - began
        lake = Lake(tmp)
        engine = open_db(ops_url("", tmp))
        seconds = replay(lake, engine, start, CLOCK, dt.timedelta(hours=args.step_hours))
        flags = raw_flags(lake, start, CLOCK)
        opened, sent = changes_per_week(engine)
        errors, missed = missed_errors(lake, engine, start, CLOCK)
        types = per_type(engine)
        engine.dispose()
    table = flags.groupby("week").size().rename("raw flags").to_frame()
    table["alarms opened"] = opened
    table["notifications sent"] = sent
    table = table.fillna(0).astype(int)
    print(f"Default fleet, {args.days} days to {iso(CLOCK)}; lake built in {built:.0f} s; notify replayed every "
          f"{args.step_hours:g} h in {seconds:.1f} s\n")  # fmt: skip
    print("| week (Monday) | raw flags | alarms opened | notifications sent |\n|---|--:|--:|--:|")
    for monday, row in table.iterrows():
        print(f"| {monday} | {row['raw flags']:,} | {row['alarms opened']:,} | {row['notifications sent']:,} |")
    total = table.sum()
    print(f"| **total** | **{total['raw flags']:,}** | **{total['alarms opened']:,}** | "
          f"**{total['notifications sent']:,}** |\n")  # fmt: skip
    print("Raw flags by source: " + ", ".join(f"{s} {n:,}" for s, n in flags.source.value_counts().items()))
    print("\n| alarm type | alarms opened | notifications sent | recorded, not sent |\n|---|--:|--:|--:|")
    for kind, row in types.iterrows():
        print(f"| {kind} | {row.iloc[0]:,} | {row.iloc[1]:,} | {row.iloc[2]:,} |")
    print(f"\nRaw flags / notifications: {total['raw flags'] / max(1, total['notifications sent']):.1f}x")
    print(f"Robot ERROR incidents: {errors}, not notified as a CRITICAL alarm: {missed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
