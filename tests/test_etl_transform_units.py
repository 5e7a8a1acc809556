"""The transform in units: planned by rows against the memory budget, run side by side, committed once.

Lakes come straight from the simulator (the default fleet's 39 doors, a few months; the robots
over a month's end), so that a small budget cuts them into several units and chunks of days."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import unittest
from pathlib import Path

import pyarrow.parquet as pq

from api.fleet import load_fleet
from api.simulate.doors import DoorSimulator
from api.simulate.robots import RobotSimulator
from etl.datasets import DOORS, ROBOTS
from etl.lake import Lake
from etl.settings import EtlSettings
from etl.transform import (
    RUN_KIND,
    STATE_KIND,
    RunSuperseded,
    TransformParams,
    commit_run,
    run_unit,
    start_run,
    transform,
)
from etl.units import Unit, plan_units, share

UTC = dt.UTC
DOORS_SPAN = (dt.datetime(2024, 8, 1, tzinfo=UTC), dt.datetime(2025, 1, 1, tzinfo=UTC))  # 143,676 door rows
ROBOTS_SPAN = (dt.datetime(2024, 11, 26, tzinfo=UTC), dt.datetime(2024, 12, 6, tzinfo=UTC))  # 10 days over 1 Dec
SMALL = EtlSettings(memory_budget_mb=64)  # units of 111,848 raw rows: doors in two units, robots in day chunks
LARGE = EtlSettings(memory_budget_mb=100_000)  # one unit per family
WINDOW = (dt.datetime(1970, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 3, tzinfo=UTC))


def simulated_lake(root: Path) -> Lake:
    """Raw doors and robots and the fleet reference, as a pull leaves them."""
    fleet = load_fleet()
    lake = Lake(str(root))
    stores = [{"name": s.name, "timezone": s.timezone, "doors": s.doors} for s in fleet.stores]
    axes = [{"name": a.name, "mean": a.mean, "std": a.std} for a in fleet.robots.axes]
    robots = [{"id": r.id, "axes": axes} for r in fleet.units]
    lake.write_bytes(lake.fleet_file(), json.dumps({"stores": stores, "robots": robots}).encode())
    doors = DoorSimulator(fleet)
    start, end = DOORS_SPAN
    lake.replace_interval(DOORS, doors.readings(hour_of(start), hour_of(end), doors.select()), start, end)
    sim = RobotSimulator(fleet)
    start, end = ROBOTS_SPAN
    lake.replace_interval(ROBOTS, sim.readings(int(start.timestamp()) // 10, int(end.timestamp()) // 10, sim.select()),
                          start, end)  # fmt: skip
    return lake


def hour_of(value: dt.datetime) -> int:
    return int(value.timestamp()) // 3600


def mart_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "marts").glob("**/*.parquet"))}


def copy_raw(source: Path, target: Path) -> Lake:
    shutil.copytree(source / "raw", target / "raw")
    shutil.copytree(source / "reference", target / "reference")
    return Lake(str(target))


class PlanTest(unittest.TestCase):
    def test_the_budget_is_split_between_units_and_cores(self) -> None:
        two = share(1024, cpus=2)
        self.assertEqual((two.at_once, two.threads), (2, 1))
        self.assertEqual(two.unit_mb, (1024 - 160) // 2)
        self.assertLess(two.duckdb_mb, two.unit_mb)
        one = share(1024, at_once=1, cpus=8)
        self.assertEqual((one.at_once, one.threads, one.unit_mb), (1, 8, 864))
        self.assertEqual(share(1024, at_once=3, cpus=2).threads, 1, "never fewer than one thread")

    def test_months_are_grouped_while_their_rows_fit_and_a_month_too_large_is_cut_in_days(self) -> None:
        rows = {d: 10 for d in range(0, 200)}  # ten rows a day, a look-back of 5 days

        def rows_read(first: int, until: int) -> int:
            return sum(rows.get(d, 0) for d in range(first - 5, until + 2))

        months = [(0, 30), (31, 59), (60, 90)]
        self.assertEqual(plan_units("doors", months, rows_read, 10_000), [Unit("doors", ((0, 90),))])
        self.assertEqual(
            plan_units("doors", months, rows_read, 600),  # two months: 61 days read, 610 rows
            [Unit("doors", ((0, 30),)), Unit("doors", ((31, 59),)), Unit("doors", ((60, 90),))],
        )
        cut = plan_units("doors", [(0, 30)], rows_read, 150)  # 8 days read for 2 output days
        self.assertEqual(len(cut), 1)
        self.assertEqual(cut[0].chunks[0], (0, 13), "days -5 .. 14 read: 150 rows (none before day 0)")
        self.assertTrue(all(rows_read(a, b) <= 150 for a, b in cut[0].chunks[1:]))
        days = [d for a, b in cut[0].chunks for d in range(a, b + 1)]
        self.assertEqual(days, list(range(31)), "every day once, in order")
        self.assertEqual(plan_units("doors", [(0, 2)], rows_read, 1), [Unit("doors", ((0, 0), (1, 1), (2, 2)))])

    def test_a_chunk_is_never_shorter_than_the_look_back_it_reads_again(self) -> None:
        def rows_read(first: int, until: int) -> int:
            return 10 * (until + 2 - max(0, first - 5))  # ten rows a day, a look-back of 5 days

        cut = plan_units("doors", [(0, 30)], rows_read, 1, min_days=5)
        self.assertEqual(cut[0].chunks, ((0, 4), (5, 9), (10, 14), (15, 19), (20, 24), (25, 29), (30, 30)))
        self.assertEqual(plan_units("doors", [(0, 30)], rows_read, 1, min_days=58), [Unit("doors", ((0, 30),))])
        grown = plan_units("doors", [(0, 30)], rows_read, 300, min_days=5)[0].chunks
        self.assertEqual(grown[0], (0, 28), "a chunk still grows while its reads fit: days 0 .. 29 read, 300 rows")


class UnitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp())
        cls.root = cls.tmp / "one"
        cls.lake = simulated_lake(cls.root)
        cls.params = TransformParams()
        cls.one = transform(cls.lake, cls.params, full=True, settings=LARGE, window=WINDOW)
        cls.reference = mart_files(cls.root)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp)

    def test_units_of_a_small_budget_write_exactly_what_one_unit_writes(self) -> None:
        lake = copy_raw(self.root, self.tmp / "small")
        plan = start_run(lake, self.params, True, WINDOW, SMALL.memory_budget_mb)
        units = [Unit.from_dict(u) for u in plan["units"]]
        self.assertGreaterEqual(sum(u.source == "doors" for u in units), 2, "doors in several units")
        self.assertTrue(any(len(u.chunks) > 1 for u in units if u.source == "robots"), "robots in chunks of days")
        summary = transform(lake, self.params, full=True, settings=SMALL, window=WINDOW)
        self.assertEqual(summary.tables, self.one.tables)
        got = mart_files(self.tmp / "small")
        self.assertEqual(sorted(got), sorted(self.reference))
        for path, data in self.reference.items():
            self.assertEqual(got[path], data, f"{path} differs")
        self.assertFalse((self.tmp / "small" / "_tmp").exists(), "spill folders go with the run")
        self.assertEqual(lake.read_state(RUN_KIND), {}, "the claim goes with the commit")

    def test_a_failed_unit_commits_nothing_and_a_rerun_completes(self) -> None:
        root = self.tmp / "failing"
        lake = copy_raw(self.root, root)
        transform(lake, self.params, settings=SMALL, window=WINDOW)
        state = lake.read_state(STATE_KIND)
        # December's robot data rewritten by hand without its samples: planned (its footer counts
        # rows), its unit fails, the others run.
        part = root / "raw" / "robots" / "date=2024-12-03" / "data.parquet"
        good = part.read_bytes()
        pq.write_table(pq.read_table(part).select(["ts", "robot_id"]), part)
        with self.assertRaises(Exception):  # noqa: B017 - whatever DuckDB raises for a bad file
            transform(lake, self.params, settings=SMALL, window=WINDOW)
        self.assertEqual(lake.read_state(STATE_KIND), state, "the state did not move")
        self.assertNotEqual(lake.read_state(RUN_KIND), {}, "the failed run's claim is left, for the next plan")
        part.write_bytes(good)
        rerun = transform(lake, self.params, settings=SMALL, window=WINDOW)
        self.assertIn("2024-12-03", rerun.dates)
        self.assertEqual(mart_files(root), self.reference)
        self.assertEqual(lake.read_state(RUN_KIND), {})
        self.assertEqual(transform(lake, self.params, settings=SMALL, window=WINDOW).dates, [], "committed once")

    def test_a_later_plan_supersedes_an_earlier_one(self) -> None:
        # Orchestrated runs (Airflow's tasks) plan, run units and commit in separate steps: a
        # backfill planned beside an hourly run takes the claim; the earlier run stops.
        lake = copy_raw(self.root, self.tmp / "overlap")
        first = start_run(lake, self.params, True, WINDOW, SMALL.memory_budget_mb, at_once=1)
        done = [run_unit(lake, first, 0)]
        second = start_run(lake, self.params, True, WINDOW, SMALL.memory_budget_mb, at_once=1)
        with self.assertRaisesRegex(RunSuperseded, "superseded"):
            run_unit(lake, first, 1)
        with self.assertRaisesRegex(RunSuperseded, "superseded"):
            commit_run(lake, first, done)
        with self.assertRaisesRegex(RuntimeError, "not committed"):
            commit_run(lake, second, [run_unit(lake, second, 0)])  # a unit missing
        commit_run(lake, second, [run_unit(lake, second, i) for i in range(len(second["units"]))])
        self.assertEqual(mart_files(self.tmp / "overlap"), self.reference)

    def test_the_dags_steps_plan_run_and_commit_and_a_run_with_nothing_new_commits_at_its_plan(self) -> None:
        from dataclasses import replace

        from etl.pipeline import transform_commit_step, transform_plan_step, transform_unit_step

        root = self.tmp / "steps"
        lake = copy_raw(self.root, root)
        left = root / "_tmp" / "transform" / "0badf00d-0"  # a killed unit's spill folder
        left.mkdir(parents=True)
        (left / "duckdb_temp_storage-0.tmp").write_bytes(b"spilled")
        settings = replace(SMALL, lake=str(root), min_time="1970-01-01T00:00:00Z", max_future_days=36_500)
        refs = transform_plan_step(settings)
        self.assertFalse(left.exists(), "a new plan removes a killed run's spills")
        self.assertGreater(len(refs), 1)
        summary = transform_commit_step(settings, [transform_unit_step(settings, ref) for ref in refs])
        self.assertEqual(summary["tables"], self.one.tables)
        self.assertEqual(mart_files(root), self.reference)
        again = transform_plan_step(settings)
        self.assertEqual([r["unit"] for r in again], [None], "one no-op unit: the mapped task is never empty")
        self.assertEqual(lake.read_state(RUN_KIND), {}, "committed by the plan")
        self.assertEqual(transform_commit_step(settings, [transform_unit_step(settings, again[0])]), {})
        self.assertEqual(mart_files(root), self.reference)


if __name__ == "__main__":
    unittest.main()
