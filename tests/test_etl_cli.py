"""`python -m etl` on bad input: one line `error: ...` on stderr, exit 2 (bad input) or 1, never a traceback."""

from __future__ import annotations

import datetime as dt
import tempfile
import unittest
from pathlib import Path

import pyarrow.parquet as pq

from etl.client import iso
from tests.support import ApiServer
from tests.test_etl_pull import run_cli

DOOR_MAP = "ts=ts,store=store,sensor_id=sensor_id,count=count"


class CliErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer())

    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.lake = str(Path(self.tmp.name, "lake"))

    def assert_error(self, args: list[str], code: int, message: str, env: dict[str, str] | None = None) -> None:
        result = run_cli(*args, env={"ETL_RETRIES": "1", "ETL_BACKOFF_SECONDS": "0.01", **(env or {})})
        self.assertNotIn("Traceback", result.stderr)
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("retrying GET")]
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("error: "), lines[0])
        self.assertIn(message, lines[0])
        self.assertEqual(result.returncode, code, result.stderr)

    def pull(self, *extra: str) -> list[str]:
        return ["pull", "--api", self.server.base, "--lake", self.lake, "--kind", "doors", *extra]

    def test_bad_settings_name_the_variable(self) -> None:
        cases = [
            ("ETL_RETRIES", "-5", "ETL_RETRIES=-5 must be at least 0"),
            ("ETL_FIRST_PULL_DAYS", "inf", "ETL_FIRST_PULL_DAYS=inf is not a finite number"),
            ("ETL_READ_TIMEOUT", "nan", "ETL_READ_TIMEOUT=nan is not a finite number"),
            ("ETL_CONNECT_TIMEOUT", "0", "ETL_CONNECT_TIMEOUT=0.0 must be at least 0.001"),
            ("ETL_BACKOFF_SECONDS", "-1", "ETL_BACKOFF_SECONDS=-1.0 must be at least 0"),
            ("ETL_PAGE_ROWS", "0", "ETL_PAGE_ROWS=0 must be at least 1"),
            ("ETL_PAGE_ROWS", "many", "ETL_PAGE_ROWS='many' is not a whole number"),
            ("ETL_LOCK_TIMEOUT", "-inf", "ETL_LOCK_TIMEOUT=-inf is not a finite number"),
            ("ETL_SMTP_PORT", "70000", "ETL_SMTP_PORT=70000 must be between 1 and 65535"),
            ("ETL_MAX_FUTURE_DAYS", "1e9", "ETL_MAX_FUTURE_DAYS=1000000000.0 must be between 0 and 36500"),
            ("ETL_MIN_TIME", "yesterday", "ETL_MIN_TIME='yesterday' is not an ISO 8601 time"),
            ("ETL_API_URL", "localhost:8000", "ETL_API_URL='localhost:8000' is not an http:// or https:// URL"),
        ]
        for variable, value, message in cases:
            with self.subTest(variable=variable, value=value):
                self.assert_error(["status", "--lake", self.lake], 2, message, env={variable: value})

    def test_pull_times_outside_the_plausible_window_or_the_calendar(self) -> None:
        cases = [
            (["--start", "9999-12-31T23:00:00-14:00"], "--start: '9999-12-31T23:00:00-14:00' is not an ISO 8601 time"),
            (["--start", "0001-01-01"], "start 0001-01-01T00:00:00Z is outside the plausible window 1970-01-01"),
            (["--start", "2024-01-01", "--end", "2200-01-01"], "end 2200-01-01T00:00:00Z is outside the plausible"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                self.assert_error(self.pull(*extra), 2, message)
        self.assertFalse(Path(self.lake, "raw").exists())

    def test_the_first_pull_of_a_huge_history_starts_at_the_window(self) -> None:
        done = run_cli(*self.pull("--end", "1970-01-03T00:00:00Z"), env={"ETL_FIRST_PULL_DAYS": "3000000"})
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("1970-01-01T00:00:00Z .. 1970-01-03T00:00:00Z", done.stdout)

    def test_reading_commands_refuse_a_lake_that_is_not_there(self) -> None:
        typo = str(Path(self.tmp.name, "laek"))
        for command in (["transform"], ["status"], ["snapshot", "--out", str(Path(self.tmp.name, "snap"))]):
            with self.subTest(command=command[0]):
                self.assert_error([*command, "--lake", typo], 2, f"--lake {typo}: no lake there")
        self.assertFalse(Path(typo).exists(), "nothing was created")
        self.assertFalse(Path(self.tmp.name, "snap").exists())

    def test_import_rows_that_fit_no_column_are_quarantined_naming_the_column(self) -> None:
        path = Path(self.tmp.name, "doors.csv")
        rows = ["2024-07-01T08:00:00Z,Paris,0,5", "2024-07-01T09:00:00Z,Paris,0,inf",
                "2024-07-01T10:00:00Z,Paris,0,99999999999999999999", "2024-07-01T11:00:00Z,Paris,0,3000000000",
                "2024-07-01T12:00:00Z,Paris,4294967296,1", "9999-12-31T23:00:00Z,Paris,0,1"]  # fmt: skip
        path.write_text("\n".join(["ts,store,sensor_id,count", *rows]) + "\n")
        sites = Path(self.tmp.name, "sites.json")  # the store must be in the site registry
        sites.write_text('{"stores": [{"name": "Paris", "timezone": "Europe/Paris", "doors": 20}]}')
        self.assertEqual(run_cli("sites", "load", str(sites), "--lake", self.lake).returncode, 0)
        done = run_cli("import-csv", "--kind", "doors", str(path), "--map", DOOR_MAP, "--lake", self.lake)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        self.assertIn("import-csv doors: 1 rows, 1 partitions, 5 quarantined", done.stdout)
        quarantined = pq.read_table(next(Path(self.lake).glob("quarantine/doors/*.parquet"))).to_pylist()
        reasons = {r["ts"][:13]: r["reason"] for r in quarantined}
        self.assertEqual(reasons["2024-07-01T09"], "count is not a whole number")
        self.assertEqual(reasons["2024-07-01T10"], "count beyond the int32 range")
        self.assertEqual(reasons["2024-07-01T11"], "count beyond the int32 range")
        self.assertEqual(reasons["2024-07-01T12"], "sensor_id beyond the int32 range")
        self.assertTrue(reasons["9999-12-31 23"].startswith("ts outside the plausible window"))

    def test_times_go_on_the_wire_with_four_digit_years(self) -> None:
        # strftime("%Y") wrote the year 1 as "1": `--start 0001-01-01` reached the API as
        # `1-01-01T00:00:00Z` and came back as an API failure
        self.assertEqual(iso(dt.datetime(1, 1, 1, tzinfo=dt.UTC)), "0001-01-01T00:00:00Z")
        self.assertEqual(iso(dt.datetime(2024, 7, 1, 8, 30, 15, 999, tzinfo=dt.UTC)), "2024-07-01T08:30:15Z")

    def test_an_unreachable_api_is_a_failed_run(self) -> None:
        self.assert_error(["pull", "--api", "http://127.0.0.1:9", "--lake", self.lake], 1, "GET /health failed after 2")


if __name__ == "__main__":
    unittest.main()
