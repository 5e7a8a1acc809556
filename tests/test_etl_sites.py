"""Real sites without the simulator: the site registry, imports at any interval, every raw row placed.

A client's building with two doors (in and out counted as two sensors) at 30-minute resolution is
described with `sites load`, imported, and transformed; readings of sites the registry does not
describe are quarantined with the reason (imports) or reported (transform); and the ETL and the
dashboard run in a process where the simulator's package `api` cannot be imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl.datasets import DOORS
from etl.lake import Lake
from etl.marts import read_mart
from etl.transform import TransformParams, transform
from tests.support import ROOT
from tests.test_dashboard_cloud import CLOUD_SCRIPT

SITES_TOML = """
[[stores]]
name = "Campus Library"
timezone = "Europe/London"
sensor_ids = [0, 1]   # 0: the main door's `in` count, 1: its `out` count

[[robots]]
id = "cell-7"
sample_seconds = 1.9
axes = [{ name = "axis1", mean = 0.7, std = 2.1 }]
"""
# Imports refuse the simulator's package: what a deployment without it would do.
NO_API = """
import importlib.abc, sys
class NoApi(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "api" or name.startswith("api."):
            raise ModuleNotFoundError(f"{name}: the simulator is not deployed here", name=name)
sys.meta_path.insert(0, NoApi())
"""
RUN_ETL = NO_API + "import runpy; sys.argv = ['etl', *sys.argv[1:]]; runpy.run_module('etl', run_name='__main__')"


def etl(*args: str) -> subprocess.CompletedProcess:
    """`python -m etl ARGS` with `api` unimportable."""
    return subprocess.run([sys.executable, "-c", RUN_ETL, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def half_hourly_counts(days: int, seed: int = 7) -> pd.DataFrame:
    """A building's 30-minute in and out counts, UTC, from Monday 2024-03-04: small and bursty."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-03-04T00:00:00Z", periods=days * 48, freq="30min")
    busy = np.where((ts.hour >= 8) & (ts.hour < 20) & (ts.day_of_week < 6), 6.0, 0.3)
    return pd.DataFrame({"Time": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "In": rng.poisson(busy),
                         "Out": rng.poisson(busy)})  # fmt: skip


class SitesTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(__import__("shutil").rmtree, self.tmp, True)
        self.lake = self.tmp / "lake"
        self.sites = self.tmp / "sites.toml"
        self.sites.write_text(SITES_TOML)

    def import_doors(self, path: Path, column: str, sensor: int, store: str = "Campus Library"):
        return etl("import-csv", "--kind", "doors", str(path), "--map", f"Time=ts,{column}=count",
                   "--store", store, "--sensor-id", str(sensor), "--lake", str(self.lake))  # fmt: skip

    def test_a_two_door_site_at_30_minutes_is_registered_imported_and_every_row_placed(self) -> None:
        loaded = etl("sites", "load", str(self.sites), "--lake", str(self.lake))
        self.assertEqual(loaded.returncode, 0, loaded.stderr)
        self.assertIn("store Campus Library (Europe/London): 2 doors 0-1, open around the clock; from file",
                      loaded.stdout)  # fmt: skip
        self.assertIn("robot cell-7: axis1; samples every 1.9 s; from file", loaded.stdout)
        frame = half_hourly_counts(days=35)
        frame.loc[frame.index[-1], "In"] = None  # the file ends half-way through an hour for `in`
        frame.loc[frame.index[100:102], "Out"] = None  # a failed hour for `out`: both halves empty
        path = self.tmp / "building.csv"
        frame.to_csv(path, index=False)
        done_in, done_out = self.import_doors(path, "In", 0), self.import_doors(path, "Out", 1)
        self.assertEqual(done_in.returncode, 0, done_in.stderr)
        self.assertEqual(done_out.returncode, 0, done_out.stderr)
        hours = 35 * 24
        self.assertIn(f"import-csv doors: {hours - 1:,} rows", done_in.stdout)
        self.assertIn("1 quarantined", done_in.stdout)
        self.assertIn("quarantined 1: partial hour: 1 of 2 counts of 30 minutes", done_in.stdout)
        self.assertIn(f"import-csv doors: {hours:,} rows", done_out.stdout, "a failed hour is a null count")
        transformed = etl("transform", "--lake", str(self.lake))
        self.assertEqual(transformed.returncode, 0, transformed.stderr)
        self.assertNotIn("not placed", transformed.stdout)
        raw = pa.concat_tables(pq.read_table(p) for p in sorted(self.lake.glob("raw/doors/*/data.parquet")))
        hourly = read_mart(Lake(str(self.lake)), "door_hourly_sensor")
        self.assertEqual(hourly.num_rows, raw.num_rows, "every raw row is in door_hourly_sensor")
        self.assertEqual(hourly.column("visits").to_pandas().sum(), raw.column("count").to_pandas().sum())
        whole = frame.iloc[:-2]  # the partial last hour is quarantined, not loaded
        self.assertEqual(raw.column("count").to_pandas().sum(), whole.In.sum() + frame.Out.sum())
        self.assertEqual(hourly.filter(pa.compute.is_null(hourly.column("visits"))).num_rows, 1)

    def test_robot_samples_at_any_rate_import_and_transform(self) -> None:
        self.assertEqual(etl("sites", "load", str(self.sites), "--lake", str(self.lake)).returncode, 0)
        rng = np.random.default_rng(3)
        n = int(8 * 3600 / 1.9)  # 8 hours of the workshop's export, a sample every 1.9 s
        ts = pd.Timestamp("2024-03-04T06:00:00Z") + pd.to_timedelta(np.arange(n) * 1.9, unit="s")
        moving = (np.arange(n) % 20) < 7
        frame = pd.DataFrame({"Time": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        for i in range(1, 9):
            frame[f"A{i}"] = np.where(moving, rng.normal(2.0, 0.5, n), 0.0)
        path = self.tmp / "cell.csv"
        frame.to_csv(path, index=False)
        mapping = "Time=ts," + ",".join(f"A{i}=axis{i}" for i in range(1, 9))
        for robot, noted in (("cell-7", False), ("cell-8", True)):
            done = etl("import-csv", "--kind", "robots", str(path), "--map", mapping, "--robot-id", robot,
                       "--lake", str(self.lake))  # fmt: skip
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn(f"import-csv robots: {n:,} rows", done.stdout)
            self.assertEqual(f"robot {robot} is not in the site registry" in done.stdout, noted, done.stdout)
        transformed = etl("transform", "--lake", str(self.lake))
        self.assertEqual(transformed.returncode, 0, transformed.stderr)
        fits = read_mart(Lake(str(self.lake)), "robot_fits").to_pandas()
        self.assertEqual(sorted(fits.robot_id.unique()), ["cell-7", "cell-8"])
        self.assertAlmostEqual(fits.samples.median(), 600 / 1.9, delta=1)
        one_axis = fits[fits.axis == "axis1"]  # a row per robot, axis and bucket
        self.assertEqual(one_axis.groupby("robot_id").samples.sum().tolist(), [n, n], "every sample in a bucket")

    def test_readings_of_an_unknown_site_or_door_are_quarantined_with_the_reason(self) -> None:
        self.assertEqual(etl("sites", "load", str(self.sites), "--lake", str(self.lake)).returncode, 0)
        path = self.tmp / "elsewhere.csv"
        half_hourly_counts(days=2).to_csv(path, index=False)
        done = self.import_doors(path, "In", 0, store="Nowhere")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("import-csv doors: 0 rows", done.stdout)
        self.assertIn("quarantined 96: store 'Nowhere' is not in the site registry", done.stdout)
        wrong_door = self.import_doors(path, "In", 5)
        self.assertIn("door not in the site registry's doors of 'Campus Library' (0-1)", wrong_door.stdout)
        reasons = pa.concat_tables(pq.read_table(p) for p in self.lake.glob("quarantine/doors/*.parquet"))
        self.assertEqual(reasons.num_rows, 96 + 48, "whole hours of a known time zone, half hours of an unknown one")

    def test_the_transform_reports_raw_rows_it_cannot_place(self) -> None:
        lake = Lake(str(self.lake))
        lake.write_bytes(lake.fleet_file(), json.dumps({"stores": [], "robots": []}).encode())
        ts = pd.date_range("2024-03-04T00:00:00Z", periods=48, freq="h")
        rows = pd.DataFrame({"ts": ts, "store": "Ghost", "sensor_id": 0, "count": 3})
        table = pa.Table.from_pandas(rows, schema=DOORS.schema, preserve_index=False)
        lake.replace_interval(DOORS, table, ts[0].to_pydatetime(), ts[-1].to_pydatetime() + pd.Timedelta(hours=1))
        summary = transform(lake, TransformParams())
        self.assertEqual(summary.unplaced, {"Ghost": 48})
        self.assertIn("not placed: 48 raw door readings of store 'Ghost'", summary.line())
        self.assertEqual(lake.read_state("transform")["unplaced"], {"Ghost": 48})

    def test_a_bad_sites_file_names_every_bad_field(self) -> None:
        bad = self.tmp / "bad.toml"
        bad.write_text(
            textwrap.dedent("""
            [[stores]]
            name = "A"
            timezone = "Europe/Pariss"
            doors = 0
            open_hour = 20
            close_hour = 8
            [[robots]]
            id = "r"
            axes = [{ name = "axis9", mean = 1, std = 1 }]
        """)
        )
        done = etl("sites", "load", str(bad), "--lake", str(self.lake))
        self.assertEqual(done.returncode, 2)
        for field in ("stores[0].timezone", "stores[0].doors", "stores[0].open_hour/close_hour",
                      "robots[0].axes[0].name"):  # fmt: skip
            self.assertIn(field, done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1)
        self.assertFalse((self.lake / "reference" / "fleet.json").exists(), "nothing registered")
        listed = etl("sites", "list", "--lake", str(self.lake))
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("no sites registered", listed.stdout)


class WithoutTheSimulatorTest(unittest.TestCase):
    def test_the_dashboard_runs_every_tab_with_api_unimportable(self) -> None:
        app, lean = ROOT / "dashboard" / "app.py", ROOT / "dashboard" / "requirements.txt"
        done = subprocess.run([sys.executable, "-c", NO_API + CLOUD_SCRIPT, str(app), str(lean)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        report = json.loads(done.stdout.strip().splitlines()[-1])
        for tab, seen in report.items():
            self.assertEqual((tab, seen["exceptions"], seen["errors"]), (tab, [], []))

    def test_no_module_of_etl_or_dashboard_imports_api(self) -> None:
        sources = [*ROOT.glob("etl/**/*.py"), *ROOT.glob("dashboard/**/*.py"), *ROOT.glob("contract/**/*.py")]
        offenders = [str(p.relative_to(ROOT)) for p in sources if "from api" in p.read_text() or
                     "import api" in p.read_text()]  # fmt: skip
        self.assertEqual(offenders, [])


if __name__ == "__main__":
    unittest.main()
