"""Daily detector quality: score the lake's detectors against the simulator's ground truth.

One task, `quality`, runs `python -m etl quality` (etl.quality.run.quality_step) at 00:45 UTC,
after the midnight run of sensor_pipeline has transformed the day's last hour: it writes
marts/detector_scores and marts/detector_slices (a rerun the same day replaces that day's file).
A separate DAG rather than a task of the hourly one: it runs once a day, not every hour, and a
failure here (the API's /v1/events down) must not mark a pipeline run failed.

Configuration, read at run time: the Airflow Variables `sensor_api_url`, `sensor_api_key` and
`sensor_lake`, defaulting to the ETL's environment, as sensor_pipeline reads them.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.sdk import CronTriggerTimetable, dag, task

REPO = Path(__file__).resolve().parents[1]
VARIABLES = ("api_url", "api_key", "lake")
START_DATE = dt.datetime.fromisoformat(os.environ.get("SENSOR_DAG_START", "2026-01-01T00:00:00+00:00"))


def run_settings():
    """The ETL settings for this run: environment defaults, overridden by Airflow Variables."""
    from dataclasses import replace

    from airflow.sdk import Variable

    from etl.pipeline import resolve_paths
    from etl.settings import EtlSettings

    settings = EtlSettings.from_env()
    overrides = {name: Variable.get(f"sensor_{name}", default=getattr(settings, name)) for name in VARIABLES}
    return resolve_paths(replace(settings, **overrides), REPO)


@dag(
    dag_id="sensor_quality",
    schedule=CronTriggerTimetable("45 0 * * *", timezone="UTC"),  # scores the lake as it is: no interval needed
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=50),
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=1),
        "execution_timeout": dt.timedelta(minutes=30),
    },
    tags=["sensors", "quality"],
    doc_md=__doc__,
)
def sensor_quality() -> None:
    @task
    def quality() -> dict:
        from etl.quality.run import quality_step

        return quality_step(run_settings())

    quality()


quality_dag = sensor_quality()
