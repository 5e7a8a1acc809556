"""Robot marts on simulated data, scored against the simulator's own ground truth."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import unittest
from pathlib import Path

import pandas as pd

from api.fleet import load_fleet
from api.simulate.robots import RobotSimulator
from etl.datasets import ROBOTS
from etl.lake import Lake
from etl.transform import TransformParams, read_mart, transform

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


class RobotMartsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.sim = RobotSimulator(load_fleet())
        cls.lake = Lake(str(Path(cls.tmp.name, "lake")))
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

    def test_an_incremental_run_equals_a_full_rebuild(self) -> None:
        root = Path(self.tmp.name, "incremental")
        lake = Lake(str(root))
        load_days(lake, self.sim, 0, 4)
        transform(lake, TransformParams())
        load_days(lake, self.sim, 4, DAYS)
        second = transform(lake, TransformParams())
        self.assertEqual(second.dates, ["2024-03-05", "2024-03-06"])
        full = Path(self.tmp.name, "full")
        shutil.copytree(root / "raw", full / "raw")
        transform(Lake(str(full)), TransformParams(), full=True)
        for name in ("robot_fits", "robot_alerts", "robot_incidents"):
            with self.subTest(table=name):
                a = read_mart(lake, name).to_pandas()
                b = read_mart(Lake(str(full)), name).to_pandas()
                key = list(a.columns[:3])
                pd.testing.assert_frame_equal(
                    a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)
                )


if __name__ == "__main__":
    unittest.main()
