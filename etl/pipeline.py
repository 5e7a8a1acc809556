"""The hourly pipeline's steps as plain functions: what the Airflow DAG calls with its run's interval.

The DAG (dags/sensor_pipeline.py) only orchestrates; each step here takes the settings and the
run's interval and returns a small JSON-able summary (the task's XCom). Every step is
idempotent: pulls replace their interval, the transform recomputes what changed, the snapshot
is rebuilt whole, and notifications remember what they sent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, replace
from pathlib import Path

from etl.audit import AuditFailed, audit_span
from etl.client import ApiClient, iso, parse_iso
from etl.datasets import dataset
from etl.lake import Lake
from etl.pull import pull, watermark_of
from etl.settings import EtlSettings

Span = tuple[dt.datetime | None, dt.datetime | None]


def plain_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A plain UTC datetime from any aware one (Airflow hands out pendulum's, which Arrow refuses)."""
    return None if value is None else dt.datetime.fromtimestamp(value.timestamp(), dt.UTC)


def pull_span(watermark: dt.datetime | None, interval: Span, requested: Span = (None, None)) -> Span:
    """[start, end) a run pulls; None means "the pull's default" (the watermark; the API's clock).

    - A run triggered with start and end in its conf pulls exactly that (a deliberate re-pull).
    - A run without a data interval (triggered by hand or by an asset in Airflow 3), or with an
      empty one (a cron trigger timetable), catches up from the watermark to its end, or to now.
    - A scheduled or backfill run pulls its interval, and from the watermark on when the
      watermark is behind the interval: hours missed while the scheduler was down (or with
      catchup off) are pulled by the next run, never lost.
    """
    interval, requested = tuple(map(plain_utc, interval)), tuple(map(plain_utc, requested))
    if any(requested):
        start, end = requested
        if start is None or end is None or start >= end:
            raise ValueError(f"a run's conf needs both start and end, start before end; got {requested}")
        return start, end
    start, end = interval
    if start is None or end is None or start >= end:
        return None, end
    if watermark is not None and watermark < start:
        start = watermark
    return start, end


def resolve_paths(settings: EtlSettings, base: Path) -> EtlSettings:
    """Relative lake, snapshot and alarm rules paths are relative to the repository, not to a worker's cwd."""

    def resolved(location: str) -> str:
        if not location or "://" in location or Path(location).is_absolute():
            return location
        return str(base / location)

    return replace(settings, lake=resolved(settings.lake), snapshot_dir=resolved(settings.snapshot_dir),
                   alarm_rules=resolved(settings.alarm_rules))  # fmt: skip


def pull_step(settings: EtlSettings, kind: str, interval: Span, requested: Span = (None, None)) -> dict:
    lake = Lake(settings.lake)
    start, end = pull_span(watermark_of(lake.read_state(kind)), interval, requested)
    client = ApiClient(settings)
    try:
        summary = pull(client, lake, dataset(kind), settings, start, end)
    finally:
        client.close()
    print(summary.line())
    return asdict(summary)


def audit_step(settings: EtlSettings, pulls: list[dict]) -> list[dict]:
    """Audit the span each pull wrote; fail the run if a reading is missing or doubled."""
    lake = Lake(settings.lake)
    audits = []
    for summary in pulls:
        if not summary.get("start") or summary["start"] >= summary["end"]:
            print(f"audit {summary['kind']}: nothing pulled, nothing to audit")
            continue
        audit = audit_span(lake, dataset(summary["kind"]), parse_iso(summary["start"]), parse_iso(summary["end"]))
        print(audit.line())
        audits.append(audit)
    failed = [a.line() for a in audits if not a.ok]
    if failed:
        raise AuditFailed("; ".join(failed))
    return [a.as_dict() for a in audits]


def transform_step(settings: EtlSettings) -> dict:
    from etl.transform import TransformParams, transform  # duckdb: only this step needs it

    lake = Lake(settings.lake)
    summary = transform(lake, TransformParams(), lock_timeout=settings.lock_timeout, settings=settings)
    print(summary.line())
    return asdict(summary)


def transform_plan_step(settings: EtlSettings) -> list[dict]:
    """Plan the transform's units and claim the lake for them (etl/transform.py start_run): one
    reference {run_id, unit} per unit, for mapped tasks. Each unit is sized for a task of its own
    with the whole ETL_MEMORY_BUDGET_MB of its worker. Nothing to compute: committed here, and
    one reference with unit None, so that the mapped task is never an empty (skipped) one."""
    from etl.transform import TransformParams, commit_run, start_run

    lake = Lake(settings.lake)
    with lake.lock(settings.lock_timeout):
        plan = start_run(lake, TransformParams(), False, settings.time_window(), settings.memory_budget_mb, at_once=1)
        if not plan["units"]:
            print(commit_run(lake, plan, []).line())
            return [{"run_id": plan["run_id"], "unit": None}]
    print(f"transform plan {plan['run_id']}: {len(plan['units'])} units over {len(plan['dates'])} dates")
    return [{"run_id": plan["run_id"], "unit": i} for i in range(len(plan["units"]))]


def transform_unit_step(settings: EtlSettings, ref: dict) -> dict:
    """Compute one unit of the claimed plan (no lock: units write different files); safe to retry."""
    from etl.transform import check_claim, run_unit

    if ref["unit"] is None:
        return {**ref, "tables": {}}
    lake = Lake(settings.lake)
    result = run_unit(lake, check_claim(lake, ref["run_id"]), ref["unit"])
    rows = ", ".join(f"{name} {n:,}" for name, n in result["tables"].items())
    print(f"transform unit {ref['unit']} ({result['source']}): {rows}")
    return result


def transform_commit_step(settings: EtlSettings, results: list[dict]) -> dict:
    """Commit the plan once every unit succeeded: the state moves, the claim goes."""
    from etl.transform import check_claim, commit_run

    results = list(results)
    if all(r["unit"] is None for r in results):
        print("transform: nothing to compute, committed by its plan")
        return {}
    lake = Lake(settings.lake)
    with lake.lock(settings.lock_timeout):
        summary = commit_run(lake, check_claim(lake, results[0]["run_id"]), results)
    print(summary.line())
    return asdict(summary)


def snapshot_step(settings: EtlSettings) -> dict:
    from etl.snapshot import write_snapshot

    summary = write_snapshot(Lake(settings.lake), Path(settings.snapshot_dir))
    print(summary.line())
    return asdict(summary)


def notify_step(settings: EtlSettings, now: dt.datetime | None = None) -> dict:
    """`now` is the run's data time (its interval's end): the alert window follows the data, so a
    backfill or a simulator on another clock alerts as a live run would have."""
    from etl.notify import notify

    lake = Lake(settings.lake)
    now = plain_utc(now)
    if now is None:
        now = watermark_of(lake.read_state("robots")) or dt.datetime.now(dt.UTC)
    result = notify(lake, settings, now)
    changes = ", ".join(f"{n} {what}" for what, n in result["changes"].items())
    print(f"notify at {iso(now)}: {result['conditions']} condition reports, alarms {changes}; "
          f"{result['alerts']} notifications sent to {', '.join(result['channels']) or 'the log'}")  # fmt: skip
    return result
