"""The DAG's transform as mapped tasks under `airflow dags test`: several units, one commit, and the
same mart files, byte for byte, as one `python -m etl transform --full` of the same raw data.

The lake holds five months of the default fleet's doors and ten days of robots, built straight
from the simulator (as a long history pulled earlier); the run pulls its hour from a real API on
127.0.0.1 and, with no transform state yet, rebuilds everything. ETL_MEMORY_BUDGET_MB=64 cuts the
doors into two units and the robots into chunks of days.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from etl.lake import Lake
from etl.transform import RUN_KIND, STATE_KIND
from tests.support import AIRFLOW, ROOT, ApiServer, airflow_env
from tests.test_etl_transform_units import copy_raw, mart_files, simulated_lake


class MappedTransformTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ApiServer().__enter__()
        cls.tmp = Path(tempfile.mkdtemp())
        cls.lake = cls.tmp / "lake"
        simulated_lake(cls.lake)
        cls.env = airflow_env(
            cls.tmp / "airflow",
            AIRFLOW_VAR_SENSOR_API_URL=cls.server.base,
            AIRFLOW_VAR_SENSOR_LAKE=str(cls.lake),
            AIRFLOW_VAR_SENSOR_SNAPSHOT_DIR=str(cls.tmp / "snapshot"),
            ETL_MEMORY_BUDGET_MB="64",
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def test_mapped_units_write_the_marts_of_one_full_transform(self) -> None:
        result = subprocess.run(
            [AIRFLOW, "dags", "test", "sensor_pipeline", "2024-12-31T23:00:00+00:00"],
            cwd=self.tmp, env=self.env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output[-4000:])
        self.assertIn("state=success", output, output[-4000:])
        planned = re.search(r"transform plan \w+: (\d+) units", output)
        self.assertIsNotNone(planned, output[-4000:])
        units = int(planned.group(1))
        self.assertGreaterEqual(units, 4, "doors in two units, robots in two")
        self.assertEqual(len(set(re.findall(r"transform unit (\d+) \(", output))), units, "one mapped task each")

        lake = Lake(str(self.lake))
        self.assertEqual(lake.read_state(RUN_KIND), {}, "committed: the claim is gone")
        self.assertIn("door_hourly_sensor", lake.read_state(STATE_KIND)["last_run"])

        single = copy_raw(self.lake, self.tmp / "single")
        cli = subprocess.run(
            [sys.executable, "-m", "etl", "transform", "--full", "--lake", single.root],
            cwd=ROOT, env={k: v for k, v in self.env.items() if k != "ETL_MEMORY_BUDGET_MB"},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        self.assertEqual(cli.returncode, 0, cli.stderr[-3000:])
        mapped, full = mart_files(self.lake), mart_files(self.tmp / "single")
        self.assertEqual(sorted(mapped), sorted(full))
        self.assertGreater(len(full), 40)
        for path, data in full.items():
            self.assertEqual(mapped[path], data, f"{path} differs")


if __name__ == "__main__":
    unittest.main()
