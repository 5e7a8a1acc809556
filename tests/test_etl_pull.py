"""The lake against a real API on 127.0.0.1: exactly once, whatever fails."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.fleets import write_widened
from etl.client import ApiClient, ApiError
from etl.datasets import DOORS, ROBOTS, Dataset
from etl.lake import Lake
from etl.pull import BASE_MB, page_rows, pages, pull, rows_per_hour
from etl.settings import EtlSettings
from etl.wire import decode
from tests.support import ROOT, ApiServer, FaultyProxy

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def lake_table(root: str | Path, data: Dataset) -> pa.Table:
    """Everything a reader globbing raw/<kind>/*/*.parquet would see."""
    files = sorted(Path(root, "raw", data.kind).glob("*/*.parquet"))
    if not files:
        return data.schema.empty_table()
    table = pa.concat_tables(pq.ParquetFile(f).read() for f in files).cast(data.schema)
    return table.sort_by([(k, "ascending") for k in data.key])


def api_table(server: ApiServer, data: Dataset, start: str, end: str) -> pa.Table:
    r = server.get(data.route, start=start, end=end, format="arrow")
    return decode(r.content, "arrow", data.schema).sort_by([(k, "ascending") for k in data.key])


def run_cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etl", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})  # fmt: skip


class PullTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer())

    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.settings = EtlSettings(api_url=self.server.base, lake=self.root, backoff_seconds=0.01)

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def pull(self, data: Dataset, start: str | None = None, end: str | None = None, **overrides):
        settings = EtlSettings(**{**self.settings.__dict__, **overrides})
        client = ApiClient(settings, log=lambda line: None)
        try:
            return pull(client, Lake(self.root), data, settings, start and at(start), end and at(end))
        finally:
            client.close()

    def test_a_30_day_pull_holds_exactly_the_apis_rows_and_a_repeat_changes_nothing(self) -> None:
        start, end = "2024-06-01T00:00:00", "2024-07-01T00:00:00"
        for data in (DOORS, ROBOTS):
            summary = self.pull(data, start, end, page_rows=200_000)
            expected = api_table(self.server, data, start + "Z", end + "Z")
            self.assertEqual(summary.rows, expected.num_rows)
            # the API's stores, registered in the lake's site registry as the API describes them
            registered = {
                s["name"]: s for s in json.loads(Path(self.root, "reference", "fleet.json").read_text())["stores"]
            }
            served = self.server.get("/v1/fleet").json()["stores"]
            self.assertEqual(sorted(registered), sorted(s["name"] for s in served))
            site_fields = ("name", "timezone", "doors", "sensor_ids", "opened_at", "open_hour", "close_hour",
                           "closed_weekdays")  # what a site is; the simulator's model knobs are not  # fmt: skip
            for store in served:
                kept = {k: registered[store["name"]][k] for k in site_fields}
                self.assertEqual(kept, {k: store[k] for k in site_fields})
                self.assertEqual(registered[store["name"]]["source"], "api")
            self.assertTrue(lake_table(self.root, data).equals(expected), data.kind)
            self.assertEqual(len(list(Path(self.root, "raw", data.kind).glob("*/*.parquet"))), 30)
        before = {p: pq.read_table(p) for p in Path(self.root, "raw").rglob("*.parquet")}
        for data in (DOORS, ROBOTS):
            self.pull(data, start, end)
            self.pull(data, "2024-06-10T05:00:00", "2024-06-12T07:00:00")  # overlapping, unaligned
        after = {p: pq.read_table(p) for p in Path(self.root, "raw").rglob("*.parquet")}
        self.assertEqual(before.keys(), after.keys())
        for path, table in before.items():
            self.assertTrue(after[path].equals(table), path)
        for data in (DOORS, ROBOTS):
            self.assertTrue(lake_table(self.root, data).equals(api_table(self.server, data, start + "Z", end + "Z")))

    def test_the_watermark_continues_and_never_jumps_a_gap(self) -> None:
        first = self.pull(DOORS, "2024-12-30T00:00:00", "2024-12-31T00:00:00")
        self.assertEqual(first.watermark, "2024-12-31T00:00:00Z")
        cont = self.pull(DOORS)  # from the watermark to the API's clock
        self.assertEqual((cont.start, cont.end, cont.rows), ("2024-12-31T00:00:00Z", "2025-01-01T00:00:00Z", 39 * 24))
        self.assertEqual(cont.watermark, "2025-01-01T00:00:00Z")
        older = self.pull(DOORS, "2024-12-01T00:00:00", "2024-12-02T00:00:00")
        self.assertEqual(older.watermark, "2025-01-01T00:00:00Z", "a backfill never moves the watermark back")
        fresh = tempfile.TemporaryDirectory()
        self.addCleanup(fresh.cleanup)
        self.root = fresh.name
        self.pull(DOORS, "2024-12-01T00:00:00", "2024-12-02T00:00:00")
        gap = self.pull(DOORS, "2024-12-10T00:00:00", "2024-12-11T00:00:00")
        self.assertEqual(gap.watermark, "2024-12-02T00:00:00Z", "a gap never lets the watermark jump")

    def test_first_pull_starts_a_configurable_number_of_days_back(self) -> None:
        summary = self.pull(DOORS, first_pull_days=2.0)
        self.assertEqual((summary.start, summary.end), ("2024-12-30T00:00:00Z", "2025-01-01T00:00:00Z"))
        self.assertEqual(lake_table(self.root, DOORS).num_rows, 39 * 48)

    def test_a_faulty_api_still_gives_every_reading_exactly_once(self) -> None:
        start, end = "2024-06-01T00:00:00", "2024-06-11T00:00:00"
        with FaultyProxy(self.server.base, fail_rate=0.3, stall_seconds=2.0) as proxy:
            for data in (DOORS, ROBOTS):
                self.pull(data, start, end, api_url=proxy.base, page_rows=40_000, read_timeout=1.0, retries=12)
        self.assertGreaterEqual(proxy.counts["500"] + proxy.counts["stall"] + proxy.counts["cut"], 6, proxy.counts)
        self.assertTrue(all(proxy.counts[k] > 0 for k in ("500", "stall", "cut")), proxy.counts)
        for data in (DOORS, ROBOTS):
            self.assertTrue(lake_table(self.root, data).equals(api_table(self.server, data, start + "Z", end + "Z")))

    def test_retries_run_out_cleanly(self) -> None:
        proxy = FaultyProxy(self.server.base, fail_rate=1.0, stall_seconds=0.1)
        with proxy, self.assertRaisesRegex(ApiError, "failed after 3 attempts"):
            self.pull(DOORS, "2024-06-01T00:00:00", "2024-06-02T00:00:00", api_url=proxy.base, retries=2,
                      read_timeout=0.05)  # fmt: skip
        self.assertEqual(list(Path(self.root).glob("raw/**/*.parquet")), [])
        self.assertIsNone(Lake(self.root).read_state("doors").get("watermark"))
        self.assertTrue(Lake(self.root).read_state("doors")["runs"][0]["status"].startswith("failed"))

    def test_a_4xx_is_a_clear_error_and_not_retried(self) -> None:
        client = ApiClient(self.settings, log=self.fail)
        with self.assertRaisesRegex(ApiError, "answered 422: start .* must be before end"):
            client.readings(DOORS, at("2024-06-02T00:00:00"), at("2024-06-01T00:00:00"))
        self.assertEqual(client.retries_used, 0)
        client.close()

    def test_cli_pull_status_and_errors(self) -> None:
        api = self.server.base
        done = run_cli("pull", "--api", api, "--lake", self.root, "--start", "2024-12-30", "--end", "2024-12-31")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"pull doors: 936 rows, 1 partitions, 0 quarantined, 0 retries, [\d.]+ s")
        self.assertRegex(done.stdout, r"pull robots: 34,560 rows, 1 partitions")
        status = run_cli("status", "--lake", self.root)
        self.assertIn("doors   watermark 2024-12-31T00:00:00Z | 936 rows in 1 partitions", status.stdout)
        for args, code, message in [
            (["pull", "--api", "http://127.0.0.1:9", "--lake", self.root], 1, "error: GET /health failed after"),
            (["pull", "--api", api, "--lake", self.root, "--start", "2024-13-01"], 2, "--start: '2024-13-01' is not"),
            (["pull", "--api", api, "--lake", self.root, "--start", "2024-02-01", "--end", "2024-01-01"], 2,
             "must be before --end"),
            (["pull", "--kind", "cats"], 2, "invalid choice: 'cats'"),
        ]:  # fmt: skip
            with self.subTest(args=args):
                result = run_cli(*args, env={"ETL_RETRIES": "1", "ETL_BACKOFF_SECONDS": "0.01"})
                self.assertEqual(result.returncode, code, result.stderr)
                self.assertIn(message, result.stderr.strip().splitlines()[-1], "the last line says why")
        for command in ("pull", "status", "import-csv"):
            self.assertEqual(run_cli(command, "--help").returncode, 0)

    def test_a_second_pull_waits_for_the_lock_or_says_who_holds_it(self) -> None:
        lake = Lake(self.root)
        with lake.lock(timeout=1):
            busy = subprocess.run(
                [sys.executable, "-m", "etl", "pull", "--api", self.server.base, "--lake", self.root],
                cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "ETL_LOCK_TIMEOUT": "0.5"},
            )  # fmt: skip
        self.assertEqual(busy.returncode, 1)
        self.assertIn(f"is locked by pid {os.getpid()}", busy.stderr)
        self.assertEqual(list(Path(self.root).glob("raw/**/*.parquet")), [])

    def test_sigkill_during_a_write_leaves_a_readable_lake_and_the_rerun_completes(self) -> None:
        start, end = "2024-05-01T00:00:00", "2024-05-21T00:00:00"
        args = [
            "pull",
            "--api",
            self.server.base,
            "--lake",
            self.root,
            "--kind",
            "robots",
            "--start",
            start,
            "--end",
            end,
        ]
        env = {**os.environ, "ETL_PAGE_ROWS": "40000"}
        kills = 0
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-m", "etl", *args], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if any(".tmp-" in p.name for p in Path(self.root).rglob("*")):
                    proc.send_signal(signal.SIGKILL)  # mid-write: a temporary file exists
                    kills += 1
                    break
                time.sleep(0.001)
            proc.wait(timeout=60)
            readable = lake_table(self.root, ROBOTS)  # every visible file reads whole
            keys = readable.select(["ts", "robot_id"]).to_pandas()
            self.assertFalse(keys.duplicated().any())
        self.assertGreater(kills, 0, "the test never caught a write in progress")
        rerun = run_cli(*args)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        self.assertEqual(list(p for p in Path(self.root).rglob("*") if ".tmp-" in p.name), [])
        self.assertTrue(lake_table(self.root, ROBOTS).equals(api_table(self.server, ROBOTS, start + "Z", end + "Z")))

    def test_pulls_of_both_kinds_and_a_transform_side_by_side_never_fail_each_other(self) -> None:
        # Each pull's start-up removed every *.tmp-* in the lake, other writers' files too: a
        # doors pull started beside a robots pull failed it (`No such file: data.parquet.tmp-`).
        # Doors pulls follow each other while the robots pull runs: each start-up is a chance.
        start, end = "2024-05-01T00:00:00", "2024-07-01T00:00:00"  # robots: about 2 s of writes
        for trial in range(3):
            root = Path(self.root, f"trial-{trial}")
            common = ["--api", self.server.base, "--lake", str(root), "--start", start, "--end", end]
            robots = self.etl("pull", *common, "--kind", "robots")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not Path(root, "raw", "robots").exists():
                time.sleep(0.005)  # the others start while the robots pull writes
            runs = [(robots, "robots pull"), (self.etl("transform", "--lake", str(root)), "transform")]
            while robots.poll() is None or len(runs) < 3:
                doors = self.etl("pull", *common, "--kind", "doors")
                doors.wait(timeout=120)
                runs.append((doors, "doors pull"))
            for proc, what in runs:
                _out, err = proc.communicate(timeout=300)
                self.assertEqual(proc.returncode, 0, f"trial {trial}, {what}: {err}")
            self.assertEqual([p for p in root.rglob("*") if ".tmp-" in p.name], [])
            for data in (DOORS, ROBOTS):
                self.assertTrue(lake_table(root, data).equals(api_table(self.server, data, start + "Z", end + "Z")))
            self.assertTrue(list(root.glob("marts/robot_fits/*/data.parquet")), "the transform ran after the pulls")

    def etl(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "etl", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip


class CountingClient(ApiClient):
    """An ApiClient that records the rows of every page it fetched."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.page_rows: list[int] = []

    def readings(self, data, start, end):
        page = super().readings(data, start, end)
        self.page_rows.append(page.table.num_rows)
        return page


class WideFleetPullTest(unittest.TestCase):
    """A fleet of ten times the doors: pages sized by rows from the memory budget, not by days."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.fleet_dir = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.fleet_dir.cleanup)
        fleet = write_widened(10, Path(cls.fleet_dir.name, "fleet-10x.toml"))
        cls.server = cls.enterClassContext(ApiServer(FLEET_FILE=str(fleet)))

    def pull(self, root: str, **overrides) -> CountingClient:
        settings = EtlSettings(api_url=self.server.base, lake=root, **overrides)
        client = CountingClient(settings, log=lambda line: None)
        try:
            pull(client, Lake(root), DOORS, settings, at("2024-03-04T05:00:00"), at("2024-03-07T00:00:00"))
        finally:
            client.close()
        return client

    def test_a_small_budget_pages_by_rows_and_loads_the_same_lake(self) -> None:
        small, default = tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()
        self.addCleanup(small.cleanup)
        self.addCleanup(default.cleanup)
        budget = BASE_MB + 1  # 1 MB for pages: 4,096 door rows, ten hours of 390 doors
        limit = page_rows(DOORS, EtlSettings(memory_budget_mb=budget))
        self.assertLess(limit, 390 * 24, "the budget must cut pages inside a day for this test to mean anything")
        paged = self.pull(small.name, memory_budget_mb=budget)
        whole = self.pull(default.name)
        self.assertEqual(whole.page_rows, [390 * 67], "the default budget takes the 67 hours in one page")
        self.assertGreater(len(paged.page_rows), 6)
        self.assertLessEqual(max(paged.page_rows), limit)
        self.assertEqual(sum(paged.page_rows), 390 * 67)
        self.assertTrue(lake_table(small.name, DOORS).equals(lake_table(default.name, DOORS)))
        self.assertEqual(len(list(Path(small.name, "raw", "doors").glob("*/*.parquet"))), 3)

    def test_pages_cut_a_day_at_whole_hours_and_never_cross_midnight(self) -> None:
        cuts = pages(at("2024-01-01T03:30:00"), at("2024-01-03T05:00:00"), 7)
        self.assertEqual(cuts[:2], [(at("2024-01-01T03:30:00"), at("2024-01-01T07:00:00")),
                                    (at("2024-01-01T07:00:00"), at("2024-01-01T14:00:00"))])  # fmt: skip
        self.assertIn((at("2024-01-01T21:00:00"), at("2024-01-02T00:00:00")), cuts)
        self.assertEqual(cuts[-1], (at("2024-01-03T00:00:00"), at("2024-01-03T05:00:00")))
        self.assertTrue(all(a < b and (b - a) <= dt.timedelta(hours=7) for a, b in cuts))
        self.assertEqual(pages(at("2024-01-01T03:00:00"), at("2024-01-05T00:00:00"), 50),
                         [(at("2024-01-01T03:00:00"), at("2024-01-03T00:00:00")),
                          (at("2024-01-03T00:00:00"), at("2024-01-05T00:00:00"))])  # fmt: skip


class PageSizeTest(unittest.TestCase):
    def test_rows_per_hour_come_from_the_registrys_width_and_page_rows_from_the_budget(self) -> None:
        sites = {"stores": [{"doors": 200}, {"doors": 190}], "robots": [{"sample_seconds": 10}, {"sample_seconds": 60}]}
        self.assertEqual(rows_per_hour(DOORS, sites), 390)
        self.assertEqual(rows_per_hour(ROBOTS, sites), 360 + 60)
        self.assertEqual(rows_per_hour(DOORS, None), 39, "no registry: the default fleet")
        self.assertEqual(page_rows(DOORS, EtlSettings(page_rows=1000)), 1000, "ETL_PAGE_ROWS stays the cap")
        small, large = (page_rows(ROBOTS, EtlSettings(memory_budget_mb=mb, page_rows=10**9)) for mb in (512, 2048))
        self.assertGreater(large, small)
        self.assertEqual(page_rows(DOORS, EtlSettings(memory_budget_mb=64)), 1, "below the base: one hour a page")


if __name__ == "__main__":
    unittest.main()
