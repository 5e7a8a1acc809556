"""The robot simulator, in process: fidelity to the reference axes, purity, visible events, fitting."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pyarrow as pa

from api.fleet import load_fleet
from api.simulate.fit import fit_axes
from api.simulate.robots import RobotSimulator
from contract.schemas import AXES
from tests.support import ROOT

DAY = 8640  # samples of 10 s


def sample_of(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) // 10


class RobotSimulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.fleet = load_fleet()
        cls.sim = RobotSimulator(cls.fleet)
        cls.n0 = sample_of("2024-03-01T00:00:00+00:00")
        cls.days = 14
        cls.data = cls.sim.readings(cls.n0, cls.n0 + cls.days * DAY, cls.sim.select()).to_pandas()
        cls.events = cls.sim.events(cls.n0, cls.n0 + cls.days * DAY).to_pandas()

    def disturbed(self, robot_id: str, axis: str, day: int) -> bool:
        """Whether an injected event touches this robot-axis-day (fidelity is for healthy days)."""
        start = pa.scalar((self.n0 + day * DAY) * 10_000_000, pa.timestamp("us", tz="UTC")).as_py()
        end = start + dt.timedelta(days=1)
        ev = self.events[(self.events.robot_id == robot_id) & (self.events.axis == axis)]
        return bool(((ev.start < end) & (ev.end > start)).any())

    def test_rows(self) -> None:
        self.assertEqual(len(self.data), 4 * self.days * DAY)
        self.assertEqual(list(self.data.columns), ["ts", "robot_id", *AXES])

    def test_each_healthy_axis_day_matches_the_reference_within_5_percent(self) -> None:
        checked = 0
        for day in range(self.days):
            frame = self.data[
                (self.data.ts >= self.data.ts.iloc[0] + dt.timedelta(days=day))
                & (self.data.ts < self.data.ts.iloc[0] + dt.timedelta(days=day + 1))
            ]
            for robot_id, rows in frame.groupby("robot_id"):
                for ref in self.fleet.robots.axes:
                    if self.disturbed(robot_id, ref.name, day):
                        continue
                    checked += 1
                    values = rows[ref.name]
                    self.assertAlmostEqual(values.mean() / ref.mean, 1.0, delta=0.05, msg=f"{robot_id} {ref.name}")
                    self.assertAlmostEqual(values.std() / ref.std, 1.0, delta=0.05, msg=f"{robot_id} {ref.name}")
        self.assertGreater(checked, 0.6 * self.days * 4 * 8)

    def test_duty_cycle_means_below_stds(self) -> None:
        resting = (self.data[list(AXES)] == 0.0).mean()
        np.testing.assert_allclose(resting.to_numpy(), 13 / 20, atol=0.01)

    def test_bulk_equals_single(self) -> None:
        rng = np.random.default_rng(3)
        for i in rng.choice(len(self.data), 100, replace=False):
            row = self.data.iloc[i]
            n = int(row.ts.timestamp()) // 10
            alone = self.sim.readings(n, n + 1, self.sim.select(row.robot_id)).to_pandas().iloc[0]
            np.testing.assert_array_equal(alone[list(AXES)].to_numpy(float), row[list(AXES)].to_numpy(float))

    def test_a_new_simulator_gives_the_same_values(self) -> None:
        again = RobotSimulator(load_fleet()).readings(self.n0, self.n0 + DAY, self.sim.select()).to_pandas()
        self.assertTrue(again.equals(self.data.iloc[: len(again)]))

    def test_anomaly_blocks_shift_the_moving_samples_by_their_size(self) -> None:
        blocks = self.events[self.events.type == "anomaly"]
        self.assertTrue(set(blocks.level) == {"ALERT", "ERROR"})
        for row in blocks.itertuples():
            robot = self.sim.select(row.robot_id)[0]
            axis = next(a for a in robot.axes if a.name == row.axis)
            span = self.data[
                (self.data.robot_id == row.robot_id) & (self.data.ts >= row.start) & (self.data.ts < row.end)
            ]
            moving = span[span[row.axis] != 0.0]
            self.assertGreaterEqual(len(moving), 7, "a block covers at least one full motion")
            wear = self.sim.wear(axis, moving.ts.astype("int64").to_numpy() // 10_000_000)
            shift = ((moving[row.axis] - axis.mu) / axis.sigma - wear).mean()
            self.assertAlmostEqual(shift, row.magnitude, delta=4 / np.sqrt(len(moving)) + 0.5, msg=row.id)
            low, high = (2.0, 4.0) if row.level == "ALERT" else (4.0, 99.0)
            self.assertTrue(low <= abs(row.magnitude) <= high, f"{row.level} block of {row.magnitude} sigma")

    def test_wear_drifts_up_until_maintenance(self) -> None:
        n0 = sample_of("2024-01-01T00:00:00+00:00")
        drifts = self.sim.events(n0, n0 + 365 * DAY).to_pandas()
        drifts = drifts[drifts.type == "drift"]
        self.assertGreater(len(drifts), 3)
        for row in drifts.head(4).itertuples():
            robot = self.sim.select(row.robot_id)[0]
            axis = next(a for a in robot.axes if a.name == row.axis)
            end = int(row.end.timestamp()) // 10
            before = self.sim.readings(end - DAY, end, [robot]).column(row.axis).to_numpy()
            after = self.sim.readings(end, end + DAY, [robot]).column(row.axis).to_numpy()
            wear_before = (before[before != 0].mean() - axis.mu) / axis.sigma
            wear_after = (after[after != 0].mean() - axis.mu) / axis.sigma
            self.assertGreater(wear_before, 0.8 * row.magnitude, row.id)
            self.assertLess(abs(wear_after), 0.5, f"{row.id}: maintenance resets the wear")


class FitTest(unittest.TestCase):
    def test_fit_from_a_recorded_csv_recovers_the_axes(self) -> None:
        fleet = load_fleet()
        sim = RobotSimulator(fleet)
        n0 = sample_of("2024-03-05T00:00:00+00:00")
        table = sim.readings(n0, n0 + DAY, sim.select("robot-2")).to_pandas()
        recorded = table.rename(columns={"ts": "Time", **{a: f"Axis #{i}" for i, a in enumerate(AXES, 1)}})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "recorded.csv"
            recorded.drop(columns="robot_id").to_csv(path, index=False)
            # the map `python -m etl import-csv` takes for the same file: the time is not fitted
            mapping = "Time=ts," + ",".join(f"Axis #{i}={a}" for i, a in enumerate(AXES, 1))
            axes = fit_axes(path, mapping)
            for ref, got in zip(fleet.robots.axes, axes, strict=True):
                self.assertEqual(got.name, ref.name)
                self.assertAlmostEqual(got.mean / ref.mean, 1.0, delta=0.05)
                self.assertAlmostEqual(got.std / ref.std, 1.0, delta=0.05)
            cli = subprocess.run(
                [sys.executable, "-m", "api.simulate.fit", str(path), "--map", mapping],
                cwd=ROOT, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            self.assertEqual(cli.returncode, 0, cli.stderr)
            self.assertIn('[[robots.axes]]\nname = "axis1"', cli.stdout)
            bad = subprocess.run(
                [sys.executable, "-m", "api.simulate.fit", str(path), "--map", "Nope=axis1"],
                cwd=ROOT, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            self.assertEqual(bad.returncode, 2)
            self.assertIn("Nope", bad.stderr)


if __name__ == "__main__":
    unittest.main()
