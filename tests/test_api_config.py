"""Fleet files, settings and the clock: bad configuration fails with a message naming it."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import unittest
from pathlib import Path

from api.budget import MB, ROW_BYTES, chunk_rows, idle_bytes
from api.fleet import DEFAULT_FLEET_FILE, FleetError, load_fleet
from api.settings import Clock, Settings
from tests.support import ApiServer


def edited_fleet(old: str, new: str) -> Path:
    text = DEFAULT_FLEET_FILE.read_text()
    assert old in text, old
    path = Path(tempfile.mkdtemp()) / "fleet.toml"
    path.write_text(text.replace(old, new, 1))
    return path


class FleetFileTest(unittest.TestCase):
    def test_the_default_fleet(self) -> None:
        fleet = load_fleet()
        self.assertEqual([(s.name, s.doors, s.opened.year) for s in fleet.stores],
                         [("Madrid", 1, 2024), ("Paris", 20, 2018), ("Berlin", 6, 2022), ("Roma", 4, 2019),
                          ("London", 8, 2014)])  # fmt: skip
        self.assertEqual(len(fleet.units), 4)
        self.assertEqual(fleet.robots.sample_seconds, 10)

    def test_bad_fleet_files_name_the_problem(self) -> None:
        cases = [
            ('timezone = "Europe/Paris"', 'timezone = "Europe/Lutetia"', "unknown timezone 'Europe/Lutetia'"),
            ("doors = 20", "doors = 0", "store Paris: doors must be at least 1"),
            ("mean = 0.725743", "mean = 99.0", "axis1: mean/std not reachable"),
            ("seed = 20240101", "", "missing or malformed key 'seed'"),
            ("[doors]", "[doors", "fleet file"),
        ]
        for old, new, message in cases:
            with self.subTest(message=message), self.assertRaisesRegex(FleetError, message):
                load_fleet(edited_fleet(old, new))
        with self.assertRaisesRegex(FleetError, "No such file"):
            load_fleet("/nonexistent/fleet.toml")

    def test_another_fleet_file_is_served(self) -> None:
        path = edited_fleet('name = "Madrid"', 'name = "Valencia"')
        with ApiServer(FLEET_FILE=str(path)) as server:
            names = [s["name"] for s in server.get("/v1/fleet").json()["stores"]]
            self.assertIn("Valencia", names)
            self.assertNotIn("Madrid", names)

    def test_the_seed_changes_every_value(self) -> None:
        path = edited_fleet("seed = 20240101", "seed = 7")
        with ApiServer(FLEET_FILE=str(path)) as other, ApiServer() as default:
            q = {"store_name": "Paris", "year": 2024, "month": 7, "day": 30, "hour": 12}
            self.assertNotEqual(other.get("/", **q).json(), default.get("/", **q).json())


class SettingsTest(unittest.TestCase):
    def test_environment(self) -> None:
        s = Settings.from_env({"SIM_NOW": "2025-01-01T00:00:00Z", "API_MAX_ROWS": "5", "SIM_SPEED": "60"})
        self.assertEqual(s.max_rows, 5)
        self.assertEqual(s.clock.anchor, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        for env, message in [({"SIM_NOW": "noon"}, "SIM_NOW"), ({"API_MAX_ROWS": "-3"}, "API_MAX_ROWS"),
                             ({"SIM_SPEED": "fast"}, "SIM_SPEED")]:  # fmt: skip
            with self.subTest(env=env), self.assertRaisesRegex(ValueError, message):
                Settings.from_env(env)

    def test_clocks(self) -> None:
        anchor = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        self.assertEqual(Clock(anchor=anchor).now(), anchor)
        fast = Clock(anchor=anchor, speed=3600.0, started=time.time() - 2)
        self.assertGreaterEqual(fast.now(), anchor + dt.timedelta(hours=2))
        wall = Clock().now()
        self.assertLess(abs((wall - dt.datetime.now(dt.UTC)).total_seconds()), 5)

    def test_a_server_refuses_to_start_on_bad_settings(self) -> None:
        with self.assertRaisesRegex(RuntimeError, "SIM_NOW"):
            ApiServer(SIM_NOW="noon").__enter__()

    def test_replay_paths_that_do_not_exist_are_refused_at_start_in_one_line(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            missing = Path(tmp) / "recordings"
            with self.assertRaises(RuntimeError) as caught:
                ApiServer(API_REPLAY_PATHS=str(missing)).__enter__()
        output = str(caught.exception).removeprefix("API server exited: ").strip()
        self.assertEqual(output, f"error: API_REPLAY_PATHS: {missing} does not exist")

    def test_a_memory_budget_that_cannot_hold_the_streams_is_refused_in_one_line(self) -> None:
        with self.assertRaises(RuntimeError) as caught:
            ApiServer(API_MEMORY_BUDGET_MB="100", API_MAX_STREAMS="4").__enter__()
        output = str(caught.exception).removeprefix("API server exited: ").strip()
        self.assertEqual(len(output.splitlines()), 1, output)
        self.assertRegex(
            output, r"^error: API_MEMORY_BUDGET_MB=100 cannot hold API_MAX_STREAMS=4 answers.*at least \d+"
        )

    def test_chunks_are_sized_from_the_budget_whatever_the_fleets_width(self) -> None:
        narrow, wide = load_fleet(), load_fleet(edited_fleet("doors = 20\n", "doors = 20000\n"))
        self.assertEqual(chunk_rows(Settings(), narrow).doors, Settings().chunk_rows)  # the default fits
        small = Settings(memory_budget_mb=400)
        self.assertLess(chunk_rows(small, wide).doors, chunk_rows(small, narrow).doors)  # the doors' schedules
        rows = chunk_rows(small, wide)
        held = idle_bytes(wide) + small.max_streams * max(
            rows.doors * ROW_BYTES["doors"], rows.robots * ROW_BYTES["robots"]
        )
        self.assertLessEqual(held, 400 * MB)


if __name__ == "__main__":
    unittest.main()
