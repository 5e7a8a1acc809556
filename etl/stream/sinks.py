"""The job's outputs: alerts and dead letters to the lake, new alerts to stdout and the webhook, counts to a state file.

    LAKE/alerts/stream/date=YYYY-MM-DD/part-<p>.parquet       alerts, one row per key (the latest version)
    LAKE/dead_letter/stream/date=YYYY-MM-DD/part-<p>.parquet  bad records with the reason
    LAKE/stream/scores/date=YYYY-MM-DD/part-<p>.parquet       every score, with --write-scores
    LAKE/_state/stream.json                                   counts for the dashboard (every few seconds)

Exactly once to the user: a restart replays the readings after its last snapshot, so a sink sees
some rows again. Every row has a key (an alert: sensor/start/level; a dead letter: source@position;
a score: sensor and ts) and a write merges by key into the partition's file (atomically, through
etl.lake.Lake), keeping the latest version: a replayed row changes nothing. An alert goes to stdout
and the webhook only when its key is not in the lake yet, so it is announced once. Counts live in
the sink's snapshot, so they too count each record once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import requests
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from contract.schemas import TS
from contract.times import EPOCH, parse_instant, to_us
from etl.lake import US_PER_DAY, Lake, Partition, repeated_keys
from etl.settings import EtlSettings
from etl.stream.source import FirstRead

ALERTS = pa.schema([("key", pa.string()), ("sensor", pa.string()), ("level", pa.string()), ("start", TS),
                    ("end", TS), ("peak_score", pa.float64()), ("readings", pa.int64()), ("updated", TS)])  # fmt: skip
DEAD = pa.schema([*((n, pa.string()) for n in ("key", "source", "pos", "ts", "sensor", "reason", "raw")),
                  ("day", pa.int64())])  # fmt: skip
SCORES = pa.schema([("key", pa.string()), ("sensor", pa.string()), ("ts", TS), ("score", pa.float64()),
                    ("level", pa.string()), ("x", pa.list_(pa.float64()))])  # fmt: skip
STATE_KIND = "stream"
COUNTS = ("records_in", "scored", "alerts", "errors", "dead_letters", "webhook_failures", "alarm_failures")
SEVERITY = {"ERROR": "CRITICAL", "ALERT": "MAJOR"}  # a stream alert's level as an alarm's severity


@dataclass(frozen=True)
class SinkConfig:
    lake: str
    parts: int = 4  # fixed, whatever the number of workers: the same alert always lands in the same file
    webhook: str = ""
    echo: bool = True  # new alerts to stdout
    write_scores: bool = False
    flush_seconds: float = 1.0
    sources: tuple[str, ...] = ()
    alarms: EtlSettings | None = None  # --alarms: alerts also fed to the alarms (etl/alarms, ETL_OPS_DB)
    max_pending_rows: int = 100_000  # flushed sooner when this many rows wait (ETL_MEMORY_BUDGET_MB x 100)


def prepare() -> None:
    """Make the sink's first table now, at start-up: pyarrow imports pandas on its first conversion of
    Python objects (0.35 CPU s here), which otherwise landed in the first flush, inside the run."""
    alert_table([])


def at(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def iso(us: int | None) -> str | None:
    return None if us is None else (EPOCH + dt.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%SZ")


def dead_day(row: dict) -> int:
    """The UTC day a dead letter files under: its ts, else the instant its position names, else day 0."""
    if row.get("ts_us") is not None:
        return row["ts_us"] // US_PER_DAY
    for text in (row.get("ts"), row.get("pos", "").split("#")[0]):
        try:
            return to_us(parse_instant(text)) // US_PER_DAY
        except (TypeError, ValueError, AttributeError):
            continue
    return 0


class LakeSinkPartition(StatefulSinkPartition):
    def __init__(self, part: str, config: SinkConfig, resume: dict | None) -> None:
        self.part, self.config, self.lake = part, config, Lake(config.lake)
        self.counts = dict(resume or {k: 0 for k in COUNTS})
        self.counts.setdefault("last_ts", None)
        self.counts.setdefault("lag_seconds", None)
        self.pending: dict[str, list] = {"alert": [], "dead": [], "score": []}
        self.flushed = time.monotonic()
        self.this_run = 0  # records this process handled: after a restart, those since the checkpoint
        self.run_started: float | None = None  # wall clock at which the source read this run's first record
        self.cpu_started: float | None = None  # the process's CPU clock when its source first read (cpu_seconds)
        self.session = requests.Session()
        self.session.trust_env = False
        self.alarm_sink = None  # opened on the first alert, when config.alarms is set

    def write_batch(self, values: list) -> None:
        """Items of the step: ("scores", [score tuple, ...]) per key and batch (step.SCORE_FIELDS), a
        single ("score", tuple), ("alert", row) or ("dead", row)."""
        c = self.counts
        scores: list[tuple] = []
        for kind, row in values:
            if kind == "scores":
                scores += row
            elif kind == "score":
                scores.append(row)
            else:  # alerts and dead letters: few
                if kind == "alert" and row["end"] is None:  # an alert counts when it opens
                    c["alerts"] += 1
                    c["errors"] += row["level"] == "ERROR"
                dead = kind == "dead"
                c["dead_letters"] += dead
                self.this_run += dead
                self.pending[kind].append(row)
        if scores:
            if self.run_started is None:  # when the source read this run's first record
                self.run_started = min(row[5] for row in scores)
                self.cpu_started = FirstRead.cpu if FirstRead.cpu is not None else time.process_time()
            c["scored"] += len(scores)
            c["last_ts"] = max(c["last_ts"] or 0, max(row[1] for row in scores))
            c["lag_seconds"] = round(time.time() - scores[-1][5], 3)
            self.this_run += len(scores)
            if self.config.write_scores:
                self.pending["score"] += scores
        c["records_in"] = c["scored"] + c["dead_letters"]
        waiting = sum(len(rows) for rows in self.pending.values())
        if waiting >= self.config.max_pending_rows or time.monotonic() - self.flushed >= self.config.flush_seconds:
            self.flush()  # about once a second, sooner when the rows waiting would outgrow the budget

    def snapshot(self) -> dict:
        self.flush()  # what the snapshot counts is in the lake
        return dict(self.counts)

    def close(self) -> None:
        self.flush()
        if self.alarm_sink is not None:
            self.alarm_sink.close()

    # -- writing -------------------------------------------------------------------------

    def flush(self) -> None:
        alerts, dead, scores = (self.pending[k] for k in ("alert", "dead", "score"))
        self.pending = {"alert": [], "dead": [], "score": []}
        if alerts:
            table = alert_table(alerts)
            fresh = self.merge("alerts", table, "start")
            self.announce(fresh)
            if self.config.alarms is not None:
                self.feed_alarms(alerts)
        if dead:
            rows = [{**{k: r.get(k) for k in DEAD.names}, "day": dead_day(r)} for r in dead]
            self.merge("dead_letter", pa.Table.from_pylist(rows, DEAD), "day")
        if scores:
            self.merge("scores", score_table(scores), "ts", folder=("stream", "scores"))
        self.write_state()
        self.flushed = time.monotonic()

    def merge(self, what: str, table: pa.Table, day_column: str, folder: tuple[str, ...] | None = None) -> pa.Table:
        """Merge rows into their date files by key, the latest version winning; returns the rows new to the lake."""
        folder = folder or (what, "stream")
        col = table.column(day_column)
        days = col.cast(pa.int64()).to_numpy() // (US_PER_DAY if pa.types.is_timestamp(col.type) else 1)
        fresh = []
        for day in sorted(set(days.tolist())):
            rows = table.filter(pa.array(days == day))
            path = self.lake.path(*folder, Partition(int(day)).name, f"part-{self.part}.parquet")
            old = self.lake.read_table(path)
            known = pa.array([], pa.string()) if old is None else old.column("key")
            fresh.append(rows.filter(pc.invert(pc.is_in(rows.column("key"), known))))
            merged = rows if old is None else pa.concat_tables([old.cast(rows.schema), rows])
            order = "updated" if "updated" in merged.column_names else "key"
            merged = merged.sort_by([("key", "ascending"), (order, "ascending")])
            merged = merged.filter(pa.array(~repeated_keys(merged, ("key",), keep="last")))
            self.lake.write_table(path, merged)
        return pa.concat_tables(fresh) if fresh else table.slice(0, 0)

    def announce(self, fresh: pa.Table) -> None:
        """New alerts (keys the lake did not hold) to stdout and the webhook: once each."""
        if not (self.config.echo or self.config.webhook):
            return  # nobody to tell: the rows stay in Arrow (to_pylist made a datetime per time, 10 us a row)
        first = {}
        for row in fresh.to_pylist():
            first.setdefault(row["key"], row)  # an alert opened and closed in one flush is announced once
        if not first:
            return
        alerts = [public(r) for r in first.values()]
        if self.config.echo:
            for a in alerts:
                print(f"[{a['level']}] {a['subject']}", flush=True)
        if self.config.webhook:
            self.post({"alerts": alerts})

    def feed_alarms(self, alerts: list[dict]) -> None:
        """Each alert's latest version as a condition of its sensor (open: active; ended: absent), so the
        alarms' rules (pending and clear periods, one open alarm per sensor and type) decide what is
        sent. A replayed alert after a restart re-reports the same state: no second notification. A
        failing database never stops the flow: the alerts are in the lake, the failure is counted."""
        from etl.alarms.engine import Condition
        from etl.alarms.sink import AlarmSink

        latest = {}
        for row in alerts:
            if row["key"] not in latest or row["updated"] >= latest[row["key"]]["updated"]:
                latest[row["key"]] = row
        conditions = [
            Condition(r["sensor"], "stream_anomaly", SEVERITY[r["level"]], at(r["updated"]), r["end"] is None,
                      {"key": r["key"], "level": r["level"], "start": iso(r["start"]), "peak_score": r["peak_score"]})
            for r in latest.values()
        ]  # fmt: skip
        try:
            if self.alarm_sink is None:
                self.alarm_sink = AlarmSink(self.config.alarms, log=lambda line: print(line, flush=True))
            self.alarm_sink.report(conditions, now=max(c.observed_at for c in conditions))
        except Exception as exc:
            self.counts["alarm_failures"] += 1
            print(f"error: alarms ({type(exc).__name__}): {exc}; alerts kept in the lake", file=sys.stderr, flush=True)

    def post(self, body: dict) -> None:
        for attempt in range(3):
            try:
                response = self.session.post(self.config.webhook, data=json.dumps(body), timeout=10,
                                             headers={"Content-Type": "application/json"})  # fmt: skip
                if response.status_code < 300:
                    return
                reason = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                reason = type(exc).__name__
            time.sleep(0.5 * 2**attempt)
        self.counts["webhook_failures"] += 1
        print(f"error: alert webhook {self.config.webhook}: {reason}; alerts kept in the lake", file=sys.stderr)

    def write_state(self) -> None:
        c = self.counts
        mine = {**c, "last_ts": iso(c["last_ts"]), "this_run": self.this_run, "run_started": self.run_started,
                "updated": time.time(), "pid": os.getpid(), "cpu_started": self.cpu_started,
                "cpu_now": time.process_time()}  # fmt: skip
        self.lake.write_bytes(self.lake.path("_state", "stream", f"part-{self.part}.json"), json.dumps(mine).encode())
        parts = []
        for path in self.lake.files("_state", "stream", suffix=".json"):
            raw = self.lake.read_bytes(path)
            if raw:
                parts.append(json.loads(raw))
        total = {k: sum(p.get(k, 0) for p in parts) for k in (*COUNTS, "this_run")}
        stamps = [p["last_ts"] for p in parts if p.get("last_ts")]
        lags = [p["lag_seconds"] for p in parts if p.get("lag_seconds") is not None]
        started = [p["run_started"] for p in parts if p.get("run_started")]
        span = max(p["updated"] for p in parts) - min(started) if started else 0.0
        total["rate_per_second"] = round(total["this_run"] / span, 1) if span > 0 else None
        total["cpu_seconds"] = run_cpu(parts)
        total.update(last_ts=max(stamps) if stamps else None, lag_seconds=max(lags) if lags else None,
                     updated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), parts=len(parts),
                     sources=list(self.config.sources))  # fmt: skip
        self.lake.write_state(STATE_KIND, total)


def run_cpu(parts: list[dict]) -> float:
    """CPU seconds this run's processes spent from their first record to their last flush (start-up left
    out): per process (its parts share one CPU clock), the latest clock less the earliest start."""
    by_pid: dict = {}
    for p in parts:
        if p.get("cpu_started") is not None:
            lo, hi = by_pid.get(p["pid"], (p["cpu_started"], p["cpu_now"]))
            by_pid[p["pid"]] = (min(lo, p["cpu_started"]), max(hi, p["cpu_now"]))
    return round(sum(hi - lo for lo, hi in by_pid.values()), 3)


def score_table(scores: list[tuple]) -> pa.Table:
    """Score tuples (step.SCORE_FIELDS) as the SCORES table, a column at a time."""
    sensor, ts, score, level, x, _ = zip(*scores, strict=True)
    keys = [f"{s}/{t}" for s, t in zip(sensor, ts, strict=True)]
    columns = [keys, sensor, ts, score, level, [list(v) for v in x]]
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, SCORES, strict=True)], schema=SCORES)


def alert_table(rows: list[dict]) -> pa.Table:
    """Alert rows (step.alert_row) as the ALERTS table, a column at a time: the times are microseconds
    already, which Arrow takes as they are (a datetime per time cost 15 us a row)."""
    return pa.Table.from_arrays([pa.array([r[f.name] for r in rows], f.type) for f in ALERTS], schema=ALERTS)


def public(r: dict) -> dict:
    """An alert as stdout and the webhook tell it (the shape etl/notify.py posts)."""
    start = r["start"].strftime("%Y-%m-%dT%H:%M:%SZ")
    subject = f"{r['sensor']}: {r['level']} from {start}, score {r['peak_score']:.3f}"
    detail = {k: (v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, dt.datetime) else v) for k, v in r.items()}
    return {"key": r["key"], "kind": "stream", "level": r["level"], "subject": subject, "detail": detail}


class LakeSink(FixedPartitionedSink):
    def __init__(self, config: SinkConfig) -> None:
        self.config = config

    def list_parts(self) -> list[str]:
        return [str(p) for p in range(self.config.parts)]

    def build_part(self, step_id: str, for_part: str, resume_state: dict | None) -> LakeSinkPartition:
        return LakeSinkPartition(for_part, self.config, resume_state)
