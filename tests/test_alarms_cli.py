"""`python -m etl alarms ...` and `import-csv --stage`, as people run them, on SQLite and on a real
PostgreSQL server on 127.0.0.1 (ETL_OPS_DB)."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import unittest
from pathlib import Path

from etl.alarms.db import open_db, ops_url
from etl.alarms.engine import Condition, apply
from etl.alarms.rules import Rules
from etl.alarms.staging import staged_rows
from tests.pg_support import PostgresServer
from tests.support import free_port
from tests.test_etl_pull import run_cli

T0 = dt.datetime(2024, 6, 10, 8, tzinfo=dt.UTC)
DOORS = ["ts,store,sensor_id,count", "2024-07-01T08:00:00Z,Paris,0,5", "2024-07-01T09:00:00Z,Paris,0,7",
         "2024-07-01T09:00:00Z,Paris,1,", "2024-07-01T10:00:00Z,Paris,0,oops"]  # fmt: skip
ROBOTS = [
    "Time,Robot," + ",".join(f"Axis #{i}" for i in range(1, 9)),
    *(f"2024-07-01T08:00:{s:02d}Z,robot-1," + ",".join(str(s + i) for i in range(8)) for s in range(0, 30, 10)),
]
ROBOT_MAP = "Time=ts,Robot=robot_id," + ",".join(f"Axis #{i}=axis{i}" for i in range(1, 9))


class StagingCases:
    def ops_env(self) -> dict[str, str]:
        raise NotImplementedError

    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.lake = str(Path(self.tmp.name, "lake"))
        sites = Path(self.tmp.name, "sites.json")
        sites.write_text('{"stores": [{"name": "Paris", "timezone": "Europe/Paris", "doors": 4}]}')
        self.assertEqual(run_cli("sites", "load", str(sites), "--lake", self.lake).returncode, 0)

    def run_import(self, kind: str, lines: list[str], mapping: str) -> str:
        path = Path(self.tmp.name, f"{kind}.csv")
        path.write_text("\n".join(lines) + "\n")
        done = run_cli("import-csv", "--kind", kind, str(path), "--map", mapping, "--lake", self.lake, "--stage",
                       env=self.ops_env())  # fmt: skip
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_a_staged_import_run_twice_stages_each_row_once(self) -> None:
        door_map = "ts=ts,store=store,sensor_id=sensor_id,count=count"
        for _ in range(2):
            out = self.run_import("doors", DOORS, door_map)
            self.assertIn("staged 3 rows in staging_doors", out)
            self.assertIn("1 quarantined", out)
            out = self.run_import("robots", ROBOTS, ROBOT_MAP)
            self.assertIn("staged 3 rows in staging_robots", out)
        engine = open_db(self.ops_env().get("ETL_OPS_DB") or ops_url("", self.lake))
        self.assertEqual((staged_rows(engine, "doors"), staged_rows(engine, "robots")), (3, 3))
        corrected = [DOORS[0], DOORS[1].replace(",5", ",6")]
        self.run_import("doors", corrected, door_map)  # a corrected file replaces what it staged
        with engine.connect() as conn:
            counts = conn.exec_driver_sql("SELECT sensor_id, count FROM staging_doors ORDER BY ts, sensor_id").all()
        engine.dispose()
        self.assertEqual([tuple(r) for r in counts], [(0, 6), (0, 7), (1, None)])


class SqliteStagingTest(StagingCases, unittest.TestCase):
    def ops_env(self) -> dict[str, str]:
        return {}


class PostgresStagingTest(StagingCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(PostgresServer())

    def setUp(self) -> None:
        super().setUp()
        self.url = self.server.database()

    def ops_env(self) -> dict[str, str]:
        return {"ETL_OPS_DB": self.url}


class AlarmsCliTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.lake = self.tmp.name
        engine = open_db(ops_url("", self.lake))
        reports = [Condition("robot-1/axis3", "robot_incident", "CRITICAL", T0 + dt.timedelta(minutes=m), True)
                   for m in (0, 5)] + [Condition("Paris/2", "door_replacement", "MAJOR", T0, True)]  # fmt: skip
        apply(engine, reports, Rules(), T0 + dt.timedelta(minutes=5))
        engine.dispose()

    def cli(self, *args: str, code: int = 0) -> str:
        done = run_cli("alarms", *args, "--lake", self.lake)
        self.assertNotIn("Traceback", done.stderr)
        self.assertEqual(done.returncode, code, done.stderr)
        return done.stdout if code == 0 else done.stderr

    def test_list_ack_silence_and_history(self) -> None:
        listed = json.loads(self.cli("list", "--json"))
        expected = [("robot-1/axis3", "active, unacknowledged"), ("Paris/2", "active, unacknowledged")]
        self.assertEqual([(a["originator"], a["status"]) for a in listed], expected)
        robot = listed[0]["id"]
        self.assertIn("robot_incident", self.cli("list", "--robot", "robot-1", "--severity", "CRITICAL"))
        self.assertEqual(self.cli("list", "--store", "Roma"), "(none)\n")
        self.assertIn("active, acknowledged by ana", self.cli("ack", str(robot), "--by", "ana"))
        self.assertIn("Paris/2", self.cli("list", "--status", "active", "unacknowledged"))
        self.assertNotIn("robot-1", self.cli("list", "--status", "unacknowledged"))
        out = self.cli("silence", "--originator", "Paris/2", "--until", "2999-01-01T00:00:00Z", "--reason", "works",
                       "--by", "bo")  # fmt: skip
        self.assertIn("silence #1 until 2999-01-01T00:00:00+00:00", out)
        self.assertIn("#1 Paris/2 until 2999-01-01 00:00:00Z by bo: works", self.cli("silences"))
        history = self.cli("history", str(robot)).splitlines()
        self.assertEqual([line.split()[2] for line in history], ["opened", "acknowledged"])
        self.assertIn("by ana", history[1])

    def test_bad_input_is_one_line_and_exit_2(self) -> None:
        self.assertIn("error: no alarm #999", self.cli("ack", "999", "--by", "ana", code=2))
        self.assertIn("error: a silence needs --originator or --type",
                      self.cli("silence", "--until", "2999-01-01", "--reason", "r", "--by", "b", code=2))  # fmt: skip
        bad_time = self.cli("silence", "--type", "x", "--until", "soon", "--reason", "r", "--by", "b", code=2)
        self.assertIn("error: --until: 'soon' is not an ISO 8601 time", bad_time)
        self.assertIn("invalid choice: 'open'", self.cli("list", "--status", "open", code=2))
        done = run_cli("alarms", "list", "--lake", str(Path(self.lake, "nowhere")))
        self.assertEqual(done.returncode, 2)
        self.assertIn("error: no operational database in --lake", done.stderr)

    def test_an_unreachable_database_is_exit_1(self) -> None:
        url = f"postgresql+psycopg://test@127.0.0.1:{free_port()}/x"
        done = run_cli("alarms", "list", env={"ETL_OPS_DB": url})
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        self.assertRegex(done.stderr, r"^error: operational database postgresql\+psycopg://test@127.0.0.1:\d+/x: ")


if __name__ == "__main__":
    unittest.main()
