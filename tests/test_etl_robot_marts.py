"""Robot marts on simulated data, scored against the simulator's own ground truth."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from api.fleet import load_fleet
from api.simulate.robots import RobotSimulator
from etl.datasets import ROBOTS
from etl.lake import Lake
from etl.marts import read_mart
from etl.transform import TransformParams, transform

UTC = dt.UTC
START = dt.datetime(2024, 3, 1, tzinfo=UTC)
DAYS = 6


def load_days(lake: Lake, sim: RobotSimulator, first: int, last: int) -> None:
    """Days [first, last) after START, as a pull would write them."""
    for day in range(first, last):
        t0 = START + dt.timedelta(days=day)
        n0 = int(t0.timestamp()) // 10
        table = sim.readings(n0, n0 + 8640, sim.select())
        lake.replace_interval(ROBOTS, table, t0, t0 + dt.timedelta(days=1))


def write_fleet(lake: Lake) -> None:
    """The robots' reference axes, as a pull keeps them from /v1/fleet."""
    fleet = load_fleet()
    axes = [{"name": a.name, "mean": a.mean, "std": a.std} for a in fleet.robots.axes]
    robots = [{"id": r.id, "axes": axes} for r in fleet.units]
    lake.write_bytes(lake.path("reference", "fleet.json"), json.dumps({"stores": [], "robots": robots}).encode())


class RobotMartsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sim = RobotSimulator(load_fleet())
        cls.lake = Lake(str(Path(cls.tmp.name, "lake")))
        write_fleet(cls.lake)
        load_days(cls.lake, cls.sim, 0, DAYS)
        transform(cls.lake, TransformParams())
        n0 = int(START.timestamp()) // 10
        events = cls.sim.events(n0, n0 + DAYS * 8640).to_pandas()
        # Blocks need 6 hours of history for a trend: score those after the first morning.
        scored_from = pd.Timestamp(START + dt.timedelta(hours=8))
        cls.blocks = events[(events.type == "anomaly") & (events.start >= scored_from)]
        cls.drifts = events[events.type == "drift"]
        incidents = read_mart(cls.lake, "robot_incidents").to_pandas()
        cls.incidents = incidents[incidents.start >= scored_from]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def overlapping(self, rows: pd.DataFrame, robot_id: str, axis: str, start, end) -> pd.DataFrame:
        same = (rows.robot_id == robot_id) & (rows.axis == axis)
        return rows[same & (rows.start < end) & (rows["end"] > start)]

    def test_every_anomaly_block_becomes_an_incident_of_its_level(self) -> None:
        self.assertGreater(len(self.blocks), 10)
        for block in self.blocks.itertuples():
            found = self.overlapping(self.incidents, block.robot_id, block.axis, block.start, block.end)
            self.assertGreater(len(found), 0, f"{block.id} {block.level} at {block.start}")
            levels = set(found.level)
            self.assertIn(block.level, levels, f"{block.id} at {block.start}: {levels}")

    def test_error_incidents_are_error_blocks(self) -> None:
        errors = self.incidents[self.incidents.level == "ERROR"]
        for incident in errors.itertuples():
            blocks = self.overlapping(self.blocks, incident.robot_id, incident.axis, incident.start, incident.end)
            self.assertTrue((blocks.level == "ERROR").any(), f"false ERROR incident {incident}")

    def test_incidents_outside_blocks_are_few_and_never_errors(self) -> None:
        unexplained = [
            i for i in self.incidents.itertuples()
            if self.overlapping(self.blocks, i.robot_id, i.axis, i.start, i.end).empty
        ]  # fmt: skip
        self.assertTrue(all(i.level == "ALERT" for i in unexplained))
        # A maintenance that resets wear is a real step in the signal; anything else must be rare.
        resets = set(zip(self.drifts.robot_id, self.drifts.axis, strict=True))
        other = [i for i in unexplained if (i.robot_id, i.axis) not in resets]
        self.assertLessEqual(len(other), 2, other)

    def test_fits_measure_the_noise_of_moving_samples(self) -> None:
        fits = read_mart(self.lake, "robot_fits").to_pandas()
        robot = self.sim.select("robot-2")[0]
        for axis in robot.axes:
            rows = fits[(fits.robot_id == "robot-2") & (fits.axis == axis.name) & (fits.fit_buckets >= 12)]
            self.assertAlmostEqual(rows.sigma.median() / axis.sigma, 1.0, delta=0.1, msg=axis.name)

    def test_fits_against_a_least_squares_line_computed_here(self) -> None:
        fits = read_mart(self.lake, "robot_fits").to_pandas()
        n0 = int(START.timestamp()) // 10
        raw = self.sim.readings(n0, n0 + DAYS * 8640, self.sim.select("robot-3")).to_pandas()
        raw["bucket"] = raw.ts.dt.floor("10min")
        raw["t"] = raw.ts.astype("int64") / 1e6
        for axis in ("axis2", "axis7"):
            moving = raw[raw[axis] != 0]
            buckets = moving.groupby("bucket").agg(
                n=(axis, "size"), mean=(axis, "mean"), t=("t", "mean"), var=(axis, lambda v: v.var(ddof=0))
            )  # fmt: skip
            mart = fits[(fits.robot_id == "robot-3") & (fits.axis == axis)].set_index("bucket")
            for bucket in buckets.index[[100, 400, 700]]:
                window = buckets[(buckets.index >= bucket - pd.Timedelta(hours=6)) & (buckets.index < bucket)]
                slope, intercept = np.polyfit(window.t, window["mean"], 1)
                sigma = np.sqrt((window.n * window["var"]).sum() / (window.n.sum() - len(window)))
                row = mart.loc[bucket]
                self.assertAlmostEqual(row.slope, slope, delta=1e-9 + abs(slope) * 1e-6)
                self.assertAlmostEqual(row.expected, intercept + slope * buckets.loc[bucket, "t"], places=6)
                self.assertAlmostEqual(row.sigma, sigma, places=9)
                self.assertEqual(row.moving_samples, buckets.loc[bucket, "n"])

    def test_maintenance_forecasts_when_wear_reaches_the_error_band(self) -> None:
        maintenance = read_mart(self.lake, "robot_maintenance").to_pandas()
        checked = 0
        for drift in self.drifts[self.drifts.magnitude > 4].itertuples():
            crossing = drift.start + (drift.end - drift.start) * (4 / drift.magnitude)  # wear grows linearly
            rows = maintenance[(maintenance.robot_id == drift.robot_id) & (maintenance.axis == drift.axis)]
            for row in rows[rows.days_fitted >= 3].itertuples():
                day_end = pd.Timestamp(row.date, tz="UTC") + pd.Timedelta(days=1)
                if not drift.start + pd.Timedelta(days=7) < day_end <= drift.end:
                    continue
                self.assertIsNotNone(row.days_to_error, f"{drift.id} on {row.date}: {row.status}")
                predicted = day_end + pd.Timedelta(days=row.days_to_error)
                expected = max(crossing, day_end)
                self.assertLess(abs((predicted - expected).total_seconds()) / 86400, 2.0, f"{drift.id} {row.date}")
                checked += 1
        self.assertGreater(checked, 0, "no wearing axis in the test days")
        healthy = maintenance[(maintenance.days_fitted >= 3) & (maintenance.status == "no wear trend")]
        self.assertGreater(len(healthy), 100)

    def test_an_incremental_run_equals_a_full_rebuild(self) -> None:
        root = Path(self.tmp.name, "incremental")
        lake = Lake(str(root))
        write_fleet(lake)
        load_days(lake, self.sim, 0, 4)
        transform(lake, TransformParams())
        load_days(lake, self.sim, 4, DAYS)
        second = transform(lake, TransformParams())
        self.assertEqual(second.dates, ["2024-03-05", "2024-03-06"])
        full = Path(self.tmp.name, "full")
        shutil.copytree(root / "raw", full / "raw")
        shutil.copytree(root / "reference", full / "reference")
        transform(Lake(str(full)), TransformParams(), full=True)
        for name in ("robot_fits", "robot_alerts", "robot_incidents", "robot_maintenance"):
            with self.subTest(table=name):
                a = read_mart(lake, name).to_pandas()
                b = read_mart(Lake(str(full)), name).to_pandas()
                key = list(a.columns[:3])
                pd.testing.assert_frame_equal(
                    a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True),
                    check_exact=True,
                )  # fmt: skip

    def test_a_re_pulled_span_then_an_increment_writes_the_files_a_fresh_full_run_writes(self) -> None:
        # A month, then days 10-12 pulled again (the same rows, new files), then an increment:
        # robot_maintenance differed from --full in 18-31 of 992 rows (relative 2.6e-9), its sums
        # adding the same numbers in another order. The promise is the same bits.
        root = Path(self.tmp.name, "re-pulled")
        lake = Lake(str(root))
        write_fleet(lake)
        load_days(lake, self.sim, 0, 31)
        transform(lake, TransformParams())
        load_days(lake, self.sim, 10, 13)
        again = transform(lake, TransformParams())
        self.assertEqual(again.dates, ["2024-03-11", "2024-03-12", "2024-03-13"])
        full = Path(self.tmp.name, "re-pulled-full")
        shutil.copytree(root / "raw", full / "raw")
        shutil.copytree(root / "reference", full / "reference")
        transform(Lake(str(full)), TransformParams(), full=True)
        files = sorted(p.relative_to(root) for p in (root / "marts").rglob("*.parquet"))
        self.assertEqual(files, sorted(p.relative_to(full) for p in (full / "marts").rglob("*.parquet")))
        self.assertEqual(len(files), 4, "a month file per table")
        for path in files:
            with self.subTest(file=str(path)):
                self.assertEqual((root / path).read_bytes(), (full / path).read_bytes())

    def test_a_lake_of_daily_robot_files_is_rebuilt_by_month_once(self) -> None:
        root = Path(self.tmp.name, "daily-layout")
        lake = Lake(str(root))
        write_fleet(lake)
        load_days(lake, self.sim, 0, 2)
        transform(lake, TransformParams())
        # as the transform left a lake before robot marts were cut by month
        state = lake.read_state("transform")
        del state["layout"]
        lake.write_state("transform", state)
        old = lake.path("marts", "robot_fits", "date=2024-03-01", "data.parquet")
        lake.write_table(old, read_mart(lake, "robot_fits").slice(0, 10))
        Path(root, "marts", "robot_fits", "date=2024-02-29").mkdir()  # a folder an older version emptied
        self.assertEqual(len(transform(lake, TransformParams()).dates), 2, "everything again")
        self.assertEqual({p.rsplit("/", 2)[-2] for p in lake.files("marts", "robot_fits")}, {"month=2024-03"})
        self.assertEqual(sorted(p.name for p in Path(root, "marts", "robot_fits").iterdir()), ["month=2024-03"])
        self.assertEqual(transform(lake, TransformParams()).dates, [], "once")


if __name__ == "__main__":
    unittest.main()
