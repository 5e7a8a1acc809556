"""The DAG end to end: `airflow dags test` for three consecutive hours against a real API on 127.0.0.1,
a rerun of one of them, then a run triggered by hand without an interval.

Airflow runs on SQLite in a temporary AIRFLOW_HOME; the lake and the snapshot are temporary
folders named through Airflow Variables (AIRFLOW_VAR_*), as a deployment would name them.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.lake import Lake
from tests.support import AIRFLOW, ROOT, ApiServer, airflow_env

UTC = dt.UTC
# Logical dates: a run's data interval is the hour before it ([20:00, 21:00) for 21:00).
HOURS = ["2024-12-31T21:00:00+00:00", "2024-12-31T22:00:00+00:00", "2024-12-31T23:00:00+00:00"]
FIRST, LAST = dt.datetime(2024, 12, 31, 20, tzinfo=UTC), dt.datetime(2024, 12, 31, 23, tzinfo=UTC)


def tables_under(root: Path, *folders: str) -> dict[str, pa.Table]:
    """Every Parquet file's rows, by path: what a reader of the lake sees."""
    return {
        str(p.relative_to(root)): pq.read_table(p)
        for folder in folders
        for p in sorted((root / folder).glob("**/*.parquet"))
    }


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Equal tables, a NaN equal to a NaN in the same place (Arrow's equals says they differ)."""
    return a.schema == b.schema and a.to_pandas().equals(b.to_pandas())


class DagRunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.key = secrets.token_urlsafe(24)  # the API asks for a key, which the DAG has only from a connection
        cls.server = ApiServer(API_KEY=cls.key).__enter__()
        cls.server.session.headers["X-API-Key"] = cls.key
        cls.tmp = Path(tempfile.mkdtemp())
        cls.lake, cls.snapshot = cls.tmp / "lake", cls.tmp / "snapshot"
        cls.env = airflow_env(
            cls.tmp / "airflow",
            # the API and its key as a deployment would give them: an Airflow connection (the key its password)
            AIRFLOW_CONN_SENSOR_API=f"http://:{cls.key}@127.0.0.1:{cls.server.port}",
            AIRFLOW_VAR_SENSOR_API_URL="http://127.0.0.1:9",  # the connection wins over the Variables
            AIRFLOW_VAR_SENSOR_LAKE=str(cls.lake),
            AIRFLOW_VAR_SENSOR_SNAPSHOT_DIR=str(cls.snapshot),
            ETL_LAKE=str(cls.tmp / "not-this-lake"),  # the Variables win over the environment
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def run_dag(self, logical_date: str) -> str:
        result = subprocess.run(
            [AIRFLOW, "dags", "test", "sensor_pipeline", logical_date],
            cwd=self.tmp, env=self.env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output[-4000:])
        self.assertIn("state=success", output, output[-4000:])
        self.assertNotIn(self.key, output)  # Airflow masks a connection's password in task logs
        return output

    def run_manual_without_interval(self) -> str:
        """A run as the UI's "Trigger" button makes it in Airflow 3: no logical date, no interval."""
        script = (
            "import sys\nfrom airflow.dag_processing.dagbag import DagBag\n"
            "run = DagBag(dag_folder=sys.argv[1]).dags['sensor_pipeline'].test(logical_date=None)\n"
            "print('interval', run.data_interval_start, run.data_interval_end, 'state=' + str(run.state))"
        )
        result = subprocess.run([sys.executable, "-c", script, str(ROOT / "dags")], cwd=self.tmp, env=self.env,
                                capture_output=True, text=True, timeout=900)  # fmt: skip
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output[-4000:])
        self.assertIn("interval None None state=success", output, output[-4000:])
        return output

    def api_rows(self, kind: str, end: dt.datetime = LAST) -> pa.Table:
        response = self.server.get(
            f"/v1/readings/{kind}", start=FIRST.isoformat(), end=end.isoformat(), format="parquet"
        )
        self.assertEqual(response.status_code, 200, response.text[:300])
        return pq.read_table(pa.BufferReader(response.content))

    def test_three_hours_a_rerun_and_a_manual_catch_up(self) -> None:
        outputs = [self.run_dag(hour) for hour in HOURS]
        self.assertIn("pull doors: 39 rows", outputs[0])
        self.assertIn("audit robots 2024-12-31T22:00:00Z .. 2024-12-31T23:00:00Z: ok, 1,440 of 1,440", outputs[2])
        self.assertFalse((self.tmp / "not-this-lake").exists())

        lake = Lake(str(self.lake))
        for kind, key in [("doors", ["ts", "store", "sensor_id"]), ("robots", ["ts", "robot_id"])]:
            with self.subTest(kind=kind):
                in_lake = pa.concat_tables(tables_under(self.lake, f"raw/{kind}").values())
                expected = self.api_rows(kind)
                self.assertEqual(in_lake.num_rows, expected.num_rows)
                order = [(k, "ascending") for k in key]
                self.assertTrue(in_lake.sort_by(order).equals(expected.sort_by(order)), "exactly those hours")
                self.assertEqual(lake.read_state(kind)["watermark"], "2024-12-31T23:00:00Z")

        hourly = pa.concat_tables(tables_under(self.lake, "marts/door_hourly_sensor").values())
        self.assertEqual(hourly.num_rows, 39 * 3, "the marts hold every hour pulled")
        snapshot = json.loads((self.snapshot / "snapshot.json").read_text())
        self.assertEqual(snapshot["status"]["doors"]["watermark"], "2024-12-31T23:00:00Z", "the snapshot is fresh")
        self.assertTrue(list(self.snapshot.glob("marts/door_hourly_sensor/**/*.parquet")))

        before = tables_under(self.lake, "raw", "marts")
        snapshot_before = tables_under(self.snapshot, "marts", "raw")
        rerun = self.run_dag(HOURS[1])
        self.assertIn("pull doors: 39 rows", rerun)
        after = tables_under(self.lake, "raw", "marts")
        self.assertEqual(sorted(after), sorted(before))
        for path, table in before.items():
            self.assertTrue(same_rows(after[path], table), f"{path} changed on a rerun")
        for kind in ("doors", "robots"):
            self.assertEqual(lake.read_state(kind)["watermark"], "2024-12-31T23:00:00Z", "a rerun never moves it back")
        snapshot_after = tables_under(self.snapshot, "marts", "raw")
        self.assertEqual(sorted(snapshot_after), sorted(snapshot_before))
        self.assertTrue(all(same_rows(snapshot_after[p], t) for p, t in snapshot_before.items()))

        # Triggered by hand without a date: no interval, so it catches up from the watermark to
        # the API's clock (pinned at midnight), and the lake again equals the API, now to midnight.
        manual = self.run_manual_without_interval()
        self.assertIn("2024-12-31T23:00:00Z .. 2025-01-01T00:00:00Z", manual)
        midnight = dt.datetime(2025, 1, 1, tzinfo=UTC)
        for kind in ("doors", "robots"):
            with self.subTest(kind=kind):
                in_lake = pa.concat_tables(tables_under(self.lake, f"raw/{kind}").values())
                self.assertEqual(in_lake.num_rows, self.api_rows(kind, midnight).num_rows)
                self.assertEqual(lake.read_state(kind)["watermark"], "2025-01-01T00:00:00Z")


if __name__ == "__main__":
    unittest.main()
