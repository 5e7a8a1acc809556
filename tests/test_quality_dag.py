"""The daily sensor_quality DAG: it parses cheaply, with one task on a daily schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest

from tests.support import ROOT

PARSE_SCRIPT = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.encoders import coerce_to_core_timetable as core_timetable

began = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["sensor_quality"]
print(json.dumps({
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "seconds": time.perf_counter() - began,
    "heavy_modules": [m for m in ("etl", "duckdb", "pyarrow", "pandas", "mlflow", "lightgbm") if m in sys.modules],
    "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
    "timetable": type(dag.timetable).__name__,
    "cron": core_timetable(dag.timetable).summary,
    "catchup": dag.catchup,
    "retries": sorted({t.retries for t in dag.tasks}),
}))
"""


class QualityDagTest(unittest.TestCase):
    def test_one_daily_task_and_nothing_heavy_at_parse_time(self) -> None:
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
            result = subprocess.run([sys.executable, "-c", PARSE_SCRIPT, str(ROOT / "dags")], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=120)  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        parsed = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual(parsed["import_errors"], {})
        self.assertEqual(parsed["heavy_modules"], [])
        self.assertEqual(parsed["tasks"], {"quality": []})
        self.assertEqual((parsed["timetable"], parsed["cron"]), ("CronTriggerTimetable", "45 0 * * *"))
        self.assertIs(parsed["catchup"], False)
        self.assertEqual(parsed["retries"], [2])


if __name__ == "__main__":
    unittest.main()
