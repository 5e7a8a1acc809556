"""etl/snapshot.py: what the snapshot holds, that it replaces the old one whole, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from etl.lake import Lake
from etl.marts import read_mart
from etl.snapshot import SnapshotParams, write_snapshot
from tests.dashboard_support import built_lake
from tests.support import ROOT


class SnapshotTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.lake = Lake(str(built_lake()))
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = Path(cls.tmp.name, "streamlit_data")
        cls.params = SnapshotParams(door_days=14, robot_days=1, raw_robot_days=1)
        cls.summary = write_snapshot(cls.lake, cls.out, cls.params)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def test_it_holds_the_recent_marts_and_the_sources_status(self) -> None:
        copy = Lake(str(self.out))
        daily = read_mart(copy, "door_daily_store").to_pandas()
        self.assertEqual(str(daily.local_date.min()), "2024-11-26", "14 days up to the last raw UTC date, 9 December")
        self.assertEqual(str(daily.local_date.max()), "2024-12-10")
        source = read_mart(self.lake, "door_daily_store").to_pandas()
        recent = source[source.local_date >= daily.local_date.min()]
        self.assertEqual(len(daily), len(recent), "every recent row, none older")
        robot_dates = {p.rsplit("/", 2)[-2] for p in copy.files("marts", "robot_fits")}
        self.assertEqual(robot_dates, {"month=2024-12"})
        fits = read_mart(copy, "robot_fits").to_pandas()
        self.assertEqual({str(b.date()) for b in fits.bucket}, {"2024-12-09"}, "cut to the last robot_days dates")
        self.assertEqual(len(copy.files("raw", "robots")), 1)
        self.assertEqual(copy.files("raw", "doors"), [], "the dashboard needs no raw door readings")
        info = json.loads((self.out / "snapshot.json").read_text())
        self.assertEqual(info["status"]["doors"]["watermark"], "2024-12-10T00:00:00Z")
        self.assertTrue((self.out / "reference" / "fleet.json").exists())
        self.assertIn("snapshot", self.summary.line())
        self.assertEqual(self.summary.bytes, sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file()))

    def test_a_rerun_replaces_it_whole_and_leaves_nothing_beside_it(self) -> None:
        stray = self.out / "marts" / "door_old_table" / "month=2020-01" / "data.parquet"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"left from an older snapshot")
        leftover = self.out.with_name(f"{self.out.name}.tmp-deadbeef")
        leftover.mkdir()
        again = write_snapshot(self.lake, self.out, self.params)
        self.assertFalse(stray.exists(), "the old snapshot is gone, not merged")
        self.assertFalse(leftover.exists(), "a killed run's folder is removed")
        self.assertEqual(sorted(p.name for p in self.out.parent.iterdir()), ["streamlit_data"])
        self.assertEqual(again.rows, self.summary.rows, "same lake, same snapshot")

    def test_the_cli_writes_one_line_and_refuses_a_lake_without_marts(self) -> None:
        out = Path(self.tmp.name, "cli")
        cmd = [sys.executable, "-m", "etl", "snapshot", "--lake", self.lake.root, "--out", str(out)]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(done.stdout.strip().splitlines()), 1)
        self.assertTrue((out / "snapshot.json").exists())
        empty = Path(self.tmp.name, "empty")
        (empty / "_state").mkdir(parents=True)  # a lake (a pull made it), never transformed
        cmd = [sys.executable, "-m", "etl", "snapshot", "--lake", str(empty), "--out", str(out)]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 2)
        self.assertIn("holds no marts", done.stderr)
        cmd[5] = str(Path(self.tmp.name, "typo"))  # no lake at all: said so, and none is made
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 2)
        self.assertIn("no lake there", done.stderr)
        self.assertFalse(Path(cmd[5]).exists())
        self.assertTrue((out / "snapshot.json").exists(), "a failed run keeps the old snapshot")


if __name__ == "__main__":
    unittest.main()
