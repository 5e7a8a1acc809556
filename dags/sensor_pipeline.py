"""Hourly sensor pipeline: pull doors and robots -> audit -> transform (plan, units, commit) -> publish
snapshot -> notify.

The DAG only orchestrates: every step is a function of `etl.pipeline`, called with the run's
data interval, and idempotent, so clearing and re-running any run leaves the lake as it was.

Intervals, deliberately: `CronDataIntervalTimetable` gives each hourly run the hour before it
([10:00, 11:00) runs at 11:00), where a plain cron schedule in Airflow 3 would give an empty
interval. A run triggered by hand without a logical date has no interval: it catches up from
the lake's watermark. A scheduled run whose interval starts after the watermark also pulls the
gap, so hours missed while the scheduler was down are never lost, with or without catchup.
Trigger with conf {"start": ISO, "end": ISO} to re-pull a span on purpose.

Configuration, read at run time (never at parse time): Airflow Variables `sensor_api_url`,
`sensor_api_key`, `sensor_lake`, `sensor_snapshot_dir`, `sensor_alert_webhook`, each defaulting to
the ETL's environment (ETL_API_URL, ETL_API_KEY, ETL_LAKE, ...: etl/settings.py). Airflow masks
the value of a Variable whose name contains `api_key` in task logs. An Airflow connection
`sensor_api` (host, port, the key as its password) wins over both. Relative paths are relative to this
repository. At parse time: SENSOR_DAG_START (ISO start date) and SENSOR_DAG_CATCHUP (true/false).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

REPO = Path(__file__).resolve().parents[1]
VARIABLES = ("api_url", "api_key", "lake", "snapshot_dir", "alert_webhook")  # Airflow Variable sensor_<name>
API_CONNECTION = "sensor_api"  # an Airflow connection with the API's host, port and key (password)

START_DATE = dt.datetime.fromisoformat(os.environ.get("SENSOR_DAG_START", "2026-01-01T00:00:00+00:00"))
CATCHUP = os.environ.get("SENSOR_DAG_CATCHUP", "false").strip().lower() in ("1", "true", "yes")

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=20),
    "retry_exponential_backoff": 2.0,  # 20 s, 40 s, 80 s: an API hiccup passes, an outage fails the run
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(minutes=20),
}


def run_settings():
    """The ETL settings for this run: environment defaults, overridden by Airflow Variables."""
    from dataclasses import replace

    from airflow.sdk import Variable

    from etl.pipeline import resolve_paths
    from etl.settings import EtlSettings

    settings = EtlSettings.from_env()
    overrides = {name: Variable.get(f"sensor_{name}", default=getattr(settings, name)) for name in VARIABLES}
    return resolve_paths(replace(settings, **{**overrides, **api_connection()}), REPO)


def api_connection() -> dict:
    """The API's URL and key from the Airflow connection `sensor_api`, when there is one (e.g.
    AIRFLOW_CONN_SENSOR_API='http://:KEY@api-host:8000'): the key is a connection's password, kept
    in Airflow's secrets backend and masked in logs. It wins over the Variables."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import Connection

    try:
        conn = Connection.get(API_CONNECTION)
    except AirflowNotFoundException:
        return {}
    found = {}
    if conn.host:
        scheme = "https" if conn.conn_type == "https" else "http"
        found["api_url"] = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
    if conn.password:
        found["api_key"] = conn.password
    return found


def run_interval() -> tuple[dt.datetime | None, dt.datetime | None]:
    context = get_current_context()
    return context.get("data_interval_start"), context.get("data_interval_end")


def requested_span() -> tuple[dt.datetime | None, dt.datetime | None]:
    from etl.client import parse_iso

    params = get_current_context()["params"]
    return tuple(parse_iso(params[k]) if params.get(k) else None for k in ("start", "end"))


@dag(
    dag_id="sensor_pipeline",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=CATCHUP,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=50),
    default_args=DEFAULT_ARGS,
    params={
        "start": Param(None, type=["null", "string"], description="re-pull from this ISO time (with end)"),
        "end": Param(None, type=["null", "string"], description="re-pull until this ISO time (exclusive)"),
    },
    tags=["sensors", "lake"],
    doc_md=__doc__,
)
def sensor_pipeline() -> None:
    @task
    def pull_doors() -> dict:
        from etl.pipeline import pull_step

        return pull_step(run_settings(), "doors", run_interval(), requested_span())

    @task
    def pull_robots() -> dict:
        from etl.pipeline import pull_step

        return pull_step(run_settings(), "robots", run_interval(), requested_span())

    @task
    def audit(doors: dict, robots: dict) -> list[dict]:
        from etl.pipeline import audit_step

        return audit_step(run_settings(), [doors, robots])

    # The transform in units (etl/units.py): planned and claimed, each unit a mapped task (on
    # as many workers as the executor has), committed once all succeeded. A failed unit is
    # retried alone; a run whose units failed for good commits nothing (the next plan redoes it).
    @task
    def plan_transform() -> list[dict]:
        from etl.pipeline import transform_plan_step

        return transform_plan_step(run_settings())

    @task
    def transform_unit(unit: dict) -> dict:
        from etl.pipeline import transform_unit_step

        return transform_unit_step(run_settings(), unit)

    @task
    def commit_transform(results: list[dict]) -> dict:
        from etl.pipeline import transform_commit_step

        return transform_commit_step(run_settings(), results)

    @task
    def publish_snapshot() -> dict:
        from etl.pipeline import snapshot_step

        return snapshot_step(run_settings())

    @task
    def notify() -> dict:
        from etl.pipeline import notify_step

        return notify_step(run_settings(), now=run_interval()[1])

    audited = audit(pull_doors(), pull_robots())
    units = plan_transform()
    audited >> units
    commit_transform(transform_unit.expand(unit=units)) >> publish_snapshot() >> notify()


pipeline = sensor_pipeline()
