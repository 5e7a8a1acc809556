"""The data engineer's pipeline tab: whether the hourly DAG runs, and each data set's watermark,
freshness, rows, quarantined rows and last run, and what the last transform wrote."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import streamlit as st

from dashboard import dag_runs, labels
from dashboard.config import DashboardSettings
from dashboard.source import SNAPSHOT_FILE, Listing, read_json
from etl.lake import Lake
from etl.status import lake_status

AIRFLOW_CACHE_SECONDS = 30  # the DAG runs hourly: a page asks Airflow at most every 30 s
TABLE_NAMES = {
    "door_hourly_sensor": "hourly door rows",
    "door_daily_sensor": "daily door rows",
    "door_hourly_store": "hourly store rows",
    "door_daily_store": "daily store rows",
    "door_health": "door health rows",
    "door_anomalies": "anomalies",
    "robot_fits": "robot fit buckets",
    "robot_alerts": "robot alerts",
    "robot_maintenance": "maintenance forecasts",
    "robot_incidents": "robot incidents",
}
RUN_STATES = {"success": "succeeded", "failed": "failed", "running": "running", "queued": "queued"}


@st.cache_data(max_entries=20, show_spinner=False)
def status(root: str, version: str) -> dict:
    """The lake's status (Parquet footers), once per version."""
    return lake_status(Lake(root))


@st.cache_data(ttl=AIRFLOW_CACHE_SECONDS, max_entries=4, show_spinner=False)
def airflow_runs(url: str, user: str, password: str) -> dag_runs.DagRuns:
    return dag_runs.last_runs(url, user, password)


def pipeline_tab(src: Listing, now: dt.datetime, settings: DashboardSettings) -> None:
    st.header("Pipeline")
    airflow_section(settings)
    st.subheader("Data sets")
    if src.snapshot:
        info = read_json(src.root, SNAPSHOT_FILE)
        if not info:
            st.info(f"No {SNAPSHOT_FILE} in {src.root}: make one with `python -m etl snapshot --lake LAKE`.")
            return
        st.caption(f"A snapshot made at {info['created_at']} from `{info['source']}`; the figures are that lake's.")
        lake, last_transform = info.get("status", {}), info.get("transform_last_run")
    else:
        lake = status(src.root, src.version)
        last_transform = read_json(src.root, "_state", "transform.json").get("last_run")
    labels.table(status_rows(lake, now), {"rows": "int", "partitions": "int", "quarantined rows": "int"})
    st.subheader("Last transform")
    sentence, written = transform_summary(last_transform)
    st.write(sentence)
    if len(written):
        labels.table(written, {"rows written": "int"})
    if not src.snapshot:
        stream_section(read_json(src.root, "_state", "stream.json"), now)
    st.caption(f"Data version {src.version} (the page refreshes itself when it changes).")


STREAM_STALE_SECONDS = 120  # the job rewrites its state about once a second while it runs


def stream_section(state: dict, now: dt.datetime) -> None:
    """The streaming job's counts and lag (LAKE/_state/stream.json), and whether it still reports."""
    st.subheader("The streaming job")
    if not state:
        st.info("The streaming job has not reported into this lake (`make up` starts it; "
                "`python -m etl stream --source robots --lake LAKE`).")  # fmt: skip
        return
    updated = pd.Timestamp(state["updated"]) if state.get("updated") else None
    age = (pd.Timestamp(now) - updated).total_seconds() if updated is not None else None
    if age is None or age > STREAM_STALE_SECONDS:
        st.warning(f"The streaming job last reported {'never' if age is None else f'{age / 60:,.0f} minutes ago'}: "
                   "it may have stopped (see .run/stream.log).")  # fmt: skip
    a, b, c, d = st.columns(4)
    a.metric("Readings scored", f"{state.get('scored', 0):,}")
    b.metric("Alerts (ERROR)", f"{state.get('alerts', 0):,} ({state.get('errors', 0):,})")
    c.metric("Dead letters", f"{state.get('dead_letters', 0):,}")
    lag = state.get("lag_seconds")
    d.metric("Lag", "-" if lag is None else f"{lag:,.1f} s")
    rate = state.get("rate_per_second")
    st.caption(f"Newest reading scored: {state.get('last_ts') or 'none'}; "
               f"{'' if rate is None else f'{rate:,.0f} readings/s; '}reported {state.get('updated')}.")  # fmt: skip


def airflow_section(settings: DashboardSettings) -> None:
    st.subheader(f"The hourly DAG ({dag_runs.DAG_ID})")
    result = airflow_runs(settings.airflow_url, settings.airflow_user, settings.airflow_password)
    if result.state == "not configured":
        st.info(result.message)
        return
    if result.state != "ok":
        st.warning(result.message)
        return
    last = result.runs[0]["state"] if result.runs else None
    # A failed run is a warning about the pipeline; st.error stays for the page's own errors.
    (st.warning if last == "failed" else st.success if last == "success" else st.info)(result.message)
    if result.runs:
        labels.table(runs_frame(result.runs), {"started": "time", "ended": "time", "run for": "time"})
    st.caption(f"From Airflow's REST API at {settings.airflow_url}, at most {AIRFLOW_CACHE_SECONDS} s old.")


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    def when(value: str | None) -> pd.Timestamp | None:
        return pd.Timestamp(value).tz_convert("UTC").tz_localize(None) if value else None

    return pd.DataFrame([{
        "run": r.get("dag_run_id"),
        "state": RUN_STATES.get(r.get("state"), r.get("state")),
        "kind": r.get("run_type"),
        "run for": when(r.get("run_after")),
        "started": when(r.get("start_date")),
        "ended": when(r.get("end_date")),
    } for r in runs])  # fmt: skip


def transform_summary(line: str | None) -> tuple[str, pd.DataFrame]:
    """The transform's one-line log ("transform: 63 dates; door_hourly_sensor 58,968, ...; 0.00 s")
    as a sentence and a table of the rows written per table."""
    empty = pd.DataFrame(columns=["table", "rows written"])
    if not line:
        return "No transform has run on this lake yet.", empty
    head, _, rest = line.partition(": ")
    parts = rest.split("; ")
    full = "--full" in head
    what = parts[0] if parts else ""
    dates = re.match(r"(\d+) dates", what)
    if dates:
        sentence = f"The last {'full ' if full else ''}transform recomputed {int(dates.group(1)):,} days of raw data."
    else:
        sentence = "The last transform found nothing new to compute."
    rows = []
    for item in parts[1].split(", ") if len(parts) > 1 else []:
        name, _, count = item.rpartition(" ")
        if name in TABLE_NAMES and count.replace(",", "").isdigit():
            rows.append({"table": TABLE_NAMES[name], "rows written": int(count.replace(",", ""))})
    return sentence, pd.DataFrame(rows) if rows else empty


def status_rows(lake: dict, now: dt.datetime) -> pd.DataFrame:
    rows = []
    for kind, s in lake.items():
        run = s.get("last_run") or {}
        watermark = pd.Timestamp(s["watermark"]) if s.get("watermark") else None
        age = (pd.Timestamp(now) - watermark) if watermark is not None else None
        rows.append({
            "data set": kind,
            "data up to": f"{watermark:%Y-%m-%d %H:%M} UTC" if watermark is not None else "no data",
            "freshness": "no data" if age is None else age_text(age),
            "rows": s.get("rows", 0),
            "partitions": s.get("partitions", 0),
            "dates": f"{s.get('first_date')} to {s.get('last_date')}" if s.get("partitions") else "empty",
            "quarantined rows": s.get("quarantined_rows", 0),
            "last run": run_text(run),
        })  # fmt: skip
    return pd.DataFrame(rows)


def age_text(age: pd.Timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 48:
        return f"{hours:,.1f} hours old"
    return f"{hours / 24:,.0f} days old"


def run_text(run: dict) -> str:
    if not run:
        return "never"
    verb = {"ok": "succeeded", "failed": "failed"}.get(run.get("status"), run.get("status") or "ended")
    finished = pd.Timestamp(run["finished_at"]).strftime("%Y-%m-%d %H:%M UTC") if run.get("finished_at") else "?"
    return f"{run.get('command', 'run')} {verb} at {finished}"
