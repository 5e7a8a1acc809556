"""The alarms for a long-running writer (the stream job): one engine kept open, each batch of
conditions applied and the changes sent in one call.

    sink = AlarmSink(settings)          # ETL_OPS_DB, ETL_ALARM_RULES, the channels
    sink.report([Condition("robot-1/axis3", "stream_anomaly", "MAJOR", ts, True, {...})], now=ts)
    sink.close()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from etl.alarms.db import open_db, ops_url
from etl.alarms.engine import Condition, apply
from etl.alarms.outbox import deliver_outbox
from etl.alarms.rules import load_rules
from etl.settings import EtlSettings


class AlarmSink:
    def __init__(self, settings: EtlSettings, log: Callable[[str], None] = print) -> None:
        self.settings, self.log = settings, log
        self.rules = load_rules(settings.alarm_rules)
        self.engine = open_db(ops_url(settings.ops_db, settings.lake))

    def report(self, conditions: Iterable[Condition], now: dt.datetime) -> dict:
        """Apply the batch (and clear what is due by `now`), then send the pending changes. A failed
        delivery raises; the changes stay pending for the next call."""
        applied = apply(self.engine, conditions, self.rules, now)
        sent = deliver_outbox(self.engine, self.settings, self.log)
        return {**sent, "conditions": applied.conditions, "changes": applied.changes}

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> AlarmSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
