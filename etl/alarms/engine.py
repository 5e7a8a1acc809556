"""The rules engine: conditions reported by the detectors -> alarms, their events and the outbox.

A condition is one report "this originator has (or no longer has) this problem at this time".
Per originator and type, under the type's rule (rules.py):
- it must hold for `pending_seconds` (reports active, none inactive in between) before an alarm
  opens: a condition flapping faster than that opens none;
- a report while the alarm is open re-triggers it: count and last seen; a higher severity
  escalates it (and asks for a new acknowledgement);
- once reported inactive, the alarm clears itself `clear_seconds` later unless it comes back;
- one open alarm per originator and type (also a unique index).
Opened, escalated and cleared are state changes: each gets an outbox row, sent once (outbox.py),
unless a silence covers it or the alarm is below the rule's notify_min_severity.

One `apply` is one transaction that locks the condition and alarm rows it changes (FOR UPDATE;
BEGIN IMMEDIATE on SQLite): two writers (the DAG's notify, the stream job) never lose each
other's updates. Keys are locked in sorted order, so two writers cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from etl.alarms import schema
from etl.alarms.rules import RANK, Rule, Rules

NOTIFIED_CHANGES = ("opened", "escalated", "cleared")
KEYS_PER_QUERY = 400
Key = tuple[str, str]


@dataclass(frozen=True)
class Condition:
    """What a detector reports: the stream job builds these too."""

    originator: str  # "Paris/2" (store/door), "Paris" (store), "robot-1/axis3"
    type: str  # robot_incident, door_anomaly, ... (rules.py)
    severity: str  # WARNING | MINOR | MAJOR | CRITICAL
    observed_at: dt.datetime  # aware
    active: bool
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in RANK:
            raise ValueError(f"condition {self.originator} {self.type}: severity {self.severity!r} is not one of "
                             f"{', '.join(RANK)}")  # fmt: skip
        if self.observed_at.tzinfo is None:
            raise ValueError(
                f"condition {self.originator} {self.type}: observed_at {self.observed_at} has no time zone"
            )
        if not self.originator or not self.type:
            raise ValueError("a condition needs an originator and a type")
        try:
            json.dumps(self.details)
        except (TypeError, ValueError) as exc:  # else the database refuses the whole batch later
            raise ValueError(f"condition {self.originator} {self.type}: details are not JSON: {exc}") from exc


@dataclass
class Change:
    what: str  # opened | retriggered | escalated | cleared
    at: dt.datetime
    severity: str


@dataclass
class Alarm:
    """An alarm as the engine changes it; `id` None until inserted."""

    id: int | None
    severity: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int
    details: dict
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    cleared_at: dt.datetime | None = None
    changes: list[Change] = field(default_factory=list)


@dataclass
class KeyState:
    """A condition_state row and the key's open alarm; `done` collects alarms cleared in this apply."""

    active: bool = False
    since: dt.datetime | None = None
    last_active_at: dt.datetime | None = None
    inactive_since: dt.datetime | None = None
    severity: str = "WARNING"
    details: dict = field(default_factory=dict)
    alarm: Alarm | None = None
    done: list[Alarm] = field(default_factory=list)


def settle(state: KeyState, at: dt.datetime, rule: Rule) -> None:
    """Clear the open alarm if the condition has been absent for the clear period by `at`."""
    alarm = state.alarm
    if alarm is None or state.active or state.inactive_since is None:
        return
    due = state.inactive_since + dt.timedelta(seconds=rule.clear_seconds)
    if at >= due:
        alarm.cleared_at = due
        alarm.changes.append(Change("cleared", due, alarm.severity))
        state.done.append(alarm)
        state.alarm = None


def step(state: KeyState, c: Condition, rule: Rule) -> None:
    """One report, in time order."""
    settle(state, c.observed_at, rule)
    if not c.active:
        if state.active:
            state.active, state.inactive_since = False, c.observed_at
        settle(state, c.observed_at, rule)  # a clear period of 0 clears at once
        return
    new_episode = not state.active
    if new_episode:
        state.active, state.since, state.inactive_since, state.severity = True, c.observed_at, None, c.severity
    state.last_active_at = max(state.last_active_at or c.observed_at, c.observed_at)
    state.severity = max(state.severity, c.severity, key=RANK.__getitem__)
    state.details = c.details
    alarm = state.alarm
    if alarm is not None:
        alarm.count += 1
        alarm.last_seen = max(alarm.last_seen, c.observed_at)
        alarm.details = c.details
        if RANK[c.severity] > RANK[alarm.severity]:
            alarm.severity = c.severity
            alarm.acknowledged_by = alarm.acknowledged_at = None  # an escalation needs a new acknowledgement
            alarm.changes.append(Change("escalated", c.observed_at, c.severity))
        elif new_episode:
            alarm.changes.append(Change("retriggered", c.observed_at, alarm.severity))
    elif c.observed_at - state.since >= dt.timedelta(seconds=rule.pending_seconds):
        state.alarm = Alarm(None, state.severity, state.since, c.observed_at, 1, c.details)
        state.alarm.changes.append(Change("opened", c.observed_at, state.severity))


@dataclass
class ApplyResult:
    conditions: int = 0
    changes: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("opened", "retriggered", "escalated", "cleared"), 0)
    )
    notifications: int = 0  # outbox rows to send
    suppressed: int = 0  # changes a silence or a rule's minimum severity kept from being sent


def apply(
    engine: sa.Engine,
    conditions: Iterable[Condition],
    rules: Rules,
    now: dt.datetime,
    feed: tuple[str, dt.datetime] | None = None,
) -> ApplyResult:
    """Apply the reports (in time order per key), then clear what is due by `now`; with `feed`
    (source, watermark), record in the same transaction how far that source has been fed."""
    by_key: dict[Key, list[Condition]] = defaultdict(list)
    result = ApplyResult()
    for c in conditions:
        by_key[(c.originator, c.type)].append(c)
        result.conditions += 1
    wall = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        keys = sorted(set(by_key) | clearing_keys(conn))
        insert_ignore(conn, schema.condition_state, [new_state_row(k, wall) for k in by_key])
        states = lock_states(conn, keys)
        silences = conn.execute(sa.select(schema.silences)).mappings().all()
        for key in keys:
            state, rule = states[key], rules[key[1]]
            for c in sorted(by_key.get(key, ()), key=lambda c: (c.observed_at, not c.active)):
                step(state, c, rule)
            settle(state, now, rule)
            save(conn, key, state, rule, silences, wall, result)
        if feed:
            source, watermark = feed
            conn.execute(sa.delete(schema.feed_state).where(schema.feed_state.c.source == source))
            conn.execute(sa.insert(schema.feed_state).values(source=source, watermark=watermark, updated_at=wall))
    return result


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on either backend."""
    if rows:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(insert(table).on_conflict_do_nothing(), rows)


def new_state_row(key: Key, wall: dt.datetime) -> dict:
    return {"originator": key[0], "type": key[1], "active": False, "severity": "WARNING", "details": {},
            "updated_at": wall}  # fmt: skip


def clearing_keys(conn: sa.Connection) -> set[Key]:
    """Keys whose alarm is open and whose condition is absent: they may be due to clear."""
    s, a = schema.condition_state, schema.alarms
    query = (
        sa.select(s.c.originator, s.c.type)
        .join(a, sa.and_(a.c.originator == s.c.originator, a.c.type == s.c.type, a.c.cleared_at.is_(None)))
        .where(s.c.active.is_(False))
    )
    return {(o, t) for o, t in conn.execute(query)}


def lock_states(conn: sa.Connection, keys: list[Key]) -> dict[Key, KeyState]:
    """Lock each key's condition row, then its open alarm, in key order; read them."""
    s, a = schema.condition_state, schema.alarms
    states: dict[Key, KeyState] = {}
    for i in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[i : i + KEYS_PER_QUERY]
        rows = conn.execute(
            sa.select(s).where(sa.tuple_(s.c.originator, s.c.type).in_(chunk)).order_by(s.c.originator, s.c.type)
            .with_for_update()
        ).mappings()  # fmt: skip
        for r in rows:
            states[(r["originator"], r["type"])] = KeyState(
                r["active"], r["since"], r["last_active_at"], r["inactive_since"], r["severity"], r["details"]
            )
        open_alarms = conn.execute(
            sa.select(a).where(sa.tuple_(a.c.originator, a.c.type).in_(chunk), a.c.cleared_at.is_(None))
            .order_by(a.c.originator, a.c.type).with_for_update()
        ).mappings()  # fmt: skip
        for r in open_alarms:
            states[(r["originator"], r["type"])].alarm = Alarm(
                r["id"], r["severity"], r["first_seen"], r["last_seen"], r["count"], r["details"],
                r["acknowledged_by"], r["acknowledged_at"],
            )  # fmt: skip
    return states


def silenced_by(silences, key: Key, at: dt.datetime) -> dict | None:
    for s in silences:
        if (s["originator"] in (None, key[0]) and s["type"] in (None, key[1])
                and s["starts_at"] <= at < s["ends_at"]):  # fmt: skip
            return s
    return None


def save(conn: sa.Connection, key: Key, state: KeyState, rule: Rule, silences, wall: dt.datetime,
         result: ApplyResult) -> None:  # fmt: skip
    s, a = schema.condition_state, schema.alarms
    conn.execute(
        sa.update(s).where(s.c.originator == key[0], s.c.type == key[1]).values(
            active=state.active, since=state.since, last_active_at=state.last_active_at,
            inactive_since=state.inactive_since, severity=state.severity, details=state.details, updated_at=wall,
        )
    )  # fmt: skip
    for alarm in [*state.done, *([state.alarm] if state.alarm else [])]:
        values = {
            "severity": alarm.severity, "first_seen": alarm.first_seen, "last_seen": alarm.last_seen,
            "count": alarm.count, "details": alarm.details, "cleared_at": alarm.cleared_at,
            "acknowledged_by": alarm.acknowledged_by, "acknowledged_at": alarm.acknowledged_at, "updated_at": wall,
        }  # fmt: skip
        if alarm.id is None:
            alarm.id = conn.execute(
                sa.insert(a).values(originator=key[0], type=key[1], **values).returning(a.c.id)
            ).scalar_one()
        else:
            conn.execute(sa.update(a).where(a.c.id == alarm.id).values(**values))
        for change in alarm.changes:
            result.changes[change.what] += 1
            record_change(conn, key, alarm, change, rule, silences, wall, result)


def record_change(conn: sa.Connection, key: Key, alarm: Alarm, change: Change, rule: Rule, silences,
                  wall: dt.datetime, result: ApplyResult) -> None:  # fmt: skip
    event_id = conn.execute(
        sa.insert(schema.alarm_events)
        .values(
            alarm_id=alarm.id,
            at=change.at,
            recorded_at=wall,
            who="engine",
            what=change.what,
            severity=change.severity,
            note="",
        )
        .returning(schema.alarm_events.c.id)
    ).scalar_one()
    if change.what not in NOTIFIED_CHANGES:
        return
    status, note = "pending", ""
    silence = silenced_by(silences, key, change.at)
    if silence is not None:
        status, note = "silenced", f"silence #{silence['id']} by {silence['created_by']}: {silence['reason']}"
    elif RANK[alarm.severity] < RANK[rule.notify_min_severity]:
        status, note = "muted", f"below the rule's notify_min_severity {rule.notify_min_severity}"
    result.notifications += status == "pending"
    result.suppressed += status != "pending"
    conn.execute(
        sa.insert(schema.outbox).values(
            event_id=event_id, alarm_id=alarm.id, change=change.what, status=status, created_at=wall, note=note
        )
    )
