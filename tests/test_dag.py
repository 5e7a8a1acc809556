"""The Airflow DAG: it parses cleanly and cheaply, and it picks the right span for every kind of run."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import unittest

from etl.pipeline import pull_span
from tests.support import ROOT

UTC = dt.UTC
H = dt.timedelta(hours=1)
T10 = dt.datetime(2024, 6, 10, 10, tzinfo=UTC)

# Parses dags/ with every network connection and database connection refused, then reports.
PARSE_SCRIPT = r"""
import json, socket, sqlite3, sys, time
import airflow.sdk  # Airflow itself may set things up; the DAG file may not touch anything
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.encoders import coerce_to_core_timetable as core_timetable
import pendulum

touched = []
def refuse(what):
    def blocked(*args, **kwargs):
        touched.append(what)
        raise OSError(f"{what} at parse time")
    return blocked
socket.socket.connect = refuse("network")
socket.create_connection = refuse("network")
sqlite3.connect = refuse("database")
import sqlalchemy.engine
sqlalchemy.engine.Engine.connect = refuse("database")

began = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
seconds = time.perf_counter() - began
dag = bag.dags.get("sensor_pipeline")
print(json.dumps({
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dags),
    "seconds": seconds,
    "touched": touched,
    "heavy_modules": [m for m in ("etl", "duckdb", "pyarrow", "pandas", "requests", "streamlit") if m in sys.modules],
    "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} if dag else {},
    "timetable": type(dag.timetable).__name__ if dag else None,
    "interval_of_11h": [str(x) for x in core_timetable(dag.timetable).infer_manual_data_interval(
        run_after=pendulum.datetime(2024, 6, 10, 11))] if dag else None,
    "catchup": dag.catchup if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "dagrun_timeout": dag.dagrun_timeout.total_seconds() if dag and dag.dagrun_timeout else None,
    "retries": sorted({t.retries for t in dag.tasks}) if dag else [],
    "backoff": sorted({t.retry_exponential_backoff for t in dag.tasks}) if dag else [],
    "execution_timeout": sorted({t.execution_timeout.total_seconds() for t in dag.tasks}) if dag else [],
}))
"""


class DagParseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        import os
        import tempfile

        cls.home = tempfile.TemporaryDirectory()
        env = {**os.environ, "AIRFLOW_HOME": cls.home.name, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        env.pop("SENSOR_DAG_CATCHUP", None)
        result = subprocess.run(
            [sys.executable, "-c", PARSE_SCRIPT, str(ROOT / "dags")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(result.stderr[-3000:])
        cls.parsed = json.loads(result.stdout.strip().splitlines()[-1])

    @classmethod
    def tearDownClass(cls) -> None:
        cls.home.cleanup()

    def test_the_dag_imports_without_errors(self) -> None:
        self.assertEqual(self.parsed["import_errors"], {})
        # sensor_quality, the daily detector scores: tests/test_quality_dag.py
        self.assertEqual(self.parsed["dags"], ["sensor_pipeline", "sensor_quality"])

    def test_parsing_touches_no_network_no_database_and_imports_nothing_heavy(self) -> None:
        self.assertEqual(self.parsed["touched"], [])
        self.assertEqual(self.parsed["heavy_modules"], [], "the ETL is imported inside the tasks, at run time")
        self.assertLess(self.parsed["seconds"], 5.0)

    def test_tasks_and_their_dependencies(self) -> None:
        self.assertEqual(
            self.parsed["tasks"],
            {
                "pull_doors": [],
                "pull_robots": [],  # the two pulls run side by side
                "audit": ["pull_doors", "pull_robots"],
                "plan_transform": ["audit"],
                "transform_unit": ["plan_transform"],  # mapped: one task per unit of the plan
                "commit_transform": ["transform_unit"],
                "publish_snapshot": ["commit_transform"],
                "notify": ["publish_snapshot"],
            },
        )

    def test_schedule_and_safety_settings_are_explicit(self) -> None:
        p = self.parsed
        self.assertEqual(p["timetable"], "CronDataIntervalTimetable")
        # A run at 11:00 covers the hour before it: the interval is never empty.
        self.assertEqual(p["interval_of_11h"], ["2024-06-10 10:00:00+00:00", "2024-06-10 11:00:00+00:00"])
        self.assertIs(p["catchup"], False)
        self.assertEqual(p["max_active_runs"], 1)
        self.assertEqual(p["dagrun_timeout"], 50 * 60)
        self.assertEqual(p["retries"], [3])
        self.assertEqual(p["backoff"], [2.0])
        self.assertEqual(p["execution_timeout"], [20 * 60])


class PullSpanTest(unittest.TestCase):
    """Which [start, end) a run pulls, for every way a run comes about."""

    def test_a_scheduled_run_pulls_its_hour(self) -> None:
        self.assertEqual(pull_span(T10, (T10, T10 + H)), (T10, T10 + H))
        self.assertEqual(pull_span(None, (T10, T10 + H)), (T10, T10 + H), "a first run on an empty lake")

    def test_a_run_after_downtime_pulls_the_gap_too(self) -> None:
        self.assertEqual(pull_span(T10 - 5 * H, (T10, T10 + H)), (T10 - 5 * H, T10 + H))

    def test_a_backfill_or_a_rerun_of_an_old_hour_pulls_that_hour_only(self) -> None:
        self.assertEqual(pull_span(T10 + 48 * H, (T10, T10 + H)), (T10, T10 + H))

    def test_a_run_without_an_interval_catches_up_from_the_watermark(self) -> None:
        self.assertEqual(pull_span(T10, (None, None)), (None, None), "manual or asset-triggered")
        self.assertEqual(pull_span(T10, (T10 + H, T10 + H)), (None, T10 + H), "an empty (trigger) interval")

    def test_a_span_in_the_conf_is_pulled_as_asked(self) -> None:
        asked = (T10 - 24 * H, T10 - 20 * H)
        self.assertEqual(pull_span(T10, (T10, T10 + H), asked), asked)
        for bad in [(T10, None), (T10, T10), (T10 + H, T10)]:
            with self.subTest(bad=bad), self.assertRaisesRegex(ValueError, "needs both start and end"):
                pull_span(T10, (T10, T10 + H), bad)

    def test_pendulum_datetimes_come_out_plain(self) -> None:
        import pendulum

        start, end = pull_span(None, (pendulum.instance(T10), pendulum.instance(T10 + H)))
        self.assertIs(type(start), dt.datetime)
        self.assertEqual((start, end), (T10, T10 + H))


if __name__ == "__main__":
    unittest.main()
