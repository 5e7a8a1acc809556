"""The lake's parts: validation, CSV import with quarantine, object storage (S3 on 127.0.0.1), status."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import subprocess
import sys
import tempfile
import time
import unittest
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from contract.schemas import AXES
from etl.client import ApiClient
from etl.datasets import DOORS, ROBOTS
from etl.lake import Lake, LakeBusy
from etl.progress import Progress
from etl.pull import pull
from etl.settings import EtlSettings
from etl.status import lake_status
from etl.validate import validate
from tests.support import ROOT, ApiServer, free_port
from tests.test_etl_pull import api_table, at, lake_table, run_cli

UTC = dt.UTC


def doors_table(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table({n: pa.array(c, DOORS.schema.field(n).type) for n, c in zip(DOORS.schema.names, cols, strict=True)})


class ValidateTest(unittest.TestCase):
    def test_every_bad_row_gets_its_reason_and_failed_doors_stay(self) -> None:
        t = dt.datetime(2024, 7, 1, 8, tzinfo=UTC)
        table = doors_table([
            (t, "Paris", 0, 10),
            (t, "Paris", 1, None),  # a failed door: good
            (t, "Paris", 2, -5),
            (t, "Paris", 3, 5_000_000),
            (t + dt.timedelta(minutes=30), "Paris", 4, 1),
            (t - dt.timedelta(hours=1), "Paris", 5, 1),
            (t, "", 6, 1),
            (t, "Paris", 0, 11),  # the same key again
        ])  # fmt: skip
        checked = validate(table, DOORS, t - dt.timedelta(minutes=1), t + dt.timedelta(hours=1))
        self.assertEqual(checked.good.column("count").to_pylist(), [10, None])
        self.assertEqual(
            checked.bad.column("reason").to_pylist(),
            ["count negative", "count above the plausible cap of 1000000", "ts not on the hour",
             "ts outside the asked interval", "store missing", "duplicate key ts/store/sensor_id"],
        )  # fmt: skip
        self.assertEqual(checked.bad.column("count").type, pa.string())

    def test_robot_axes_must_be_finite(self) -> None:
        t = dt.datetime(2024, 7, 1, tzinfo=UTC)
        values = {a: [0.5, float("nan"), 1e9] for a in AXES}
        table = pa.table({"ts": pa.array([t, t + dt.timedelta(seconds=10), t + dt.timedelta(seconds=20)],
                                         ROBOTS.schema.field("ts").type),
                          "robot_id": ["r1"] * 3, **values})  # fmt: skip
        checked = validate(table, ROBOTS, None, None)
        self.assertEqual(checked.good.num_rows, 1)
        self.assertEqual(
            checked.bad.column("reason").to_pylist(), ["axis1 missing or not finite", "axis1 beyond +-1e+06"]
        )


class ImportCsvTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name, "lake")
        self.addCleanup(self.tmp.cleanup)

    def write_csv(self, lines: list[str]) -> Path:
        path = Path(self.tmp.name, "recorded.csv")
        path.write_text("\n".join(lines) + "\n")
        return path

    def test_a_recorded_robot_csv_loads_and_its_bad_rows_are_quarantined_with_reasons(self) -> None:
        header = "Time,Speed," + ",".join(f"Axis #{i}" for i in range(1, 9))
        good = [f"2022-10-17 12:{m:02d}:00,1.0," + ",".join(str(0.1 * i + m) for i in range(8)) for m in range(5)]
        bad = [
            "not a time,1," + ",".join(["1"] * 8),
            "2022-10-17 13:00:00,1,abc," + ",".join(["1"] * 7),
            "2022-10-17 13:01:00,1,inf," + ",".join(["1"] * 7),
            "2022-10-17 12:00:00,1," + ",".join(["9"] * 8),  # the same moment as the first good row
        ]
        path = self.write_csv([header, *good, *bad])
        mapping = "Time=ts," + ",".join(f"Axis #{i}=axis{i}" for i in range(1, 9))
        args = ["import-csv", "--kind", "robots", str(path), "--map", mapping, "--lake", str(self.root)]
        done = run_cli(*args, "--robot-id", "robot-7")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("import-csv robots: 5 rows, 1 partitions, 4 quarantined", done.stdout)
        table = lake_table(self.root, ROBOTS)
        self.assertEqual(table.column("robot_id").to_pylist(), ["robot-7"] * 5)
        self.assertEqual(table.column("axis2").to_pylist(), [0.1 + m for m in range(5)])
        self.assertEqual(table.column("ts")[0].as_py(), dt.datetime(2022, 10, 17, 12, tzinfo=UTC))
        quarantined = pq.read_table(next(self.root.glob("quarantine/robots/*.parquet"))).to_pylist()
        reasons = sorted(r["reason"] for r in quarantined)
        self.assertEqual(reasons, ["axis1 is not a number", "axis1 missing or not finite", "duplicate key ts/robot_id",
                                   "ts is not an ISO 8601 time"])  # fmt: skip
        self.assertIn("not a time", [r["ts"] for r in quarantined], "quarantine keeps what arrived")
        status = lake_status(Lake(str(self.root)))["robots"]
        self.assertEqual((status["rows"], status["quarantined_rows"]), (5, 4))
        again = run_cli(*args, "--robot-id", "robot-7")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(lake_table(self.root, ROBOTS).num_rows, 5, "a re-import replaces, never duplicates")

    def test_rows_outside_the_plausible_window_are_quarantined_with_the_reason(self) -> None:
        # They poisoned the lake: every transform after failed (9999-12-31) or took minutes (2200).
        times = ["9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z", "2200-01-01T00:00:00Z", "1969-12-31T23:00:00Z"]
        path = self.write_csv(["ts,store,sensor_id,count", "2024-07-01T08:00:00Z,Paris,0,5",
                               *(f"{t},Paris,0,5" for t in times)])  # fmt: skip
        sites = Path(self.tmp.name, "sites.json")  # the store must be in the site registry
        sites.write_text('{"stores": [{"name": "Paris", "timezone": "Europe/Paris", "doors": 20}]}')
        self.assertEqual(run_cli("sites", "load", str(sites), "--lake", str(self.root)).returncode, 0)
        done = run_cli("import-csv", "--kind", "doors", str(path), "--map", "ts=ts,store=store,sensor_id=sensor_id,"
                       "count=count", "--lake", str(self.root), env={"ETL_MAX_FUTURE_DAYS": "1"})  # fmt: skip
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("1 rows, 1 partitions, 4 quarantined", done.stdout)
        self.assertEqual([p.name for p in self.root.glob("raw/doors/*")], ["date=2024-07-01"])
        quarantined = pq.read_table(next(self.root.glob("quarantine/doors/*.parquet"))).to_pylist()
        self.assertEqual(len(quarantined), 4)
        for row in quarantined:
            window = r"1970-01-01T00:00:00Z \.\. \d{4}-\d\d-\d\dT[\d:]+Z \(ETL_MIN_TIME, ETL_MAX_FUTURE_DAYS\)"
            self.assertRegex(row["reason"], f"^ts outside the plausible window {window}$")

    def test_an_import_that_cannot_start_says_why(self) -> None:
        path = self.write_csv(["Time,Axis #1", "2022-10-17 12:00:00,1"])
        cases = [
            (["--map", "Time=ts,Axis #9=axis1", "--robot-id", "r"], "no column(s) Axis #9; the file has Time, Axis #1"),
            (["--map", "Time=ts,Axis #1=axis1", "--robot-id", "r"], "nothing maps to axis2"),
            (["--map", "Time=ts,Axis #1=count", "--kind", "doors"], "nothing maps to store, sensor_id"),
            (["--map", "Time"], "--map: 'Time' is not SOURCE=TARGET"),
        ]  # fmt: skip
        for extra, message in cases:
            with self.subTest(message=message):
                kind = [] if "--kind" in extra else ["--kind", "robots"]
                result = run_cli("import-csv", *kind, str(path), "--lake", str(self.root), *extra)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(message, result.stderr)
        missing = run_cli(
            "import-csv", "--kind", "robots", "/nonexistent.csv", "--map", "a=b", "--lake", str(self.root)
        )
        self.assertEqual(missing.returncode, 2)
        self.assertIn("/nonexistent.csv", missing.stderr)
        self.assertEqual(list(self.root.glob("raw/**/*.parquet")), [])


class LakeMechanicsTest(unittest.TestCase):
    def test_stale_temporaries_are_invisible_and_removed(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            lake = Lake(tmp)
            part = Path(tmp, "raw", "doors", "date=2024-07-01")
            part.mkdir(parents=True)
            (part / "data.parquet.tmp-deadbeef").write_bytes(b"half a file")
            self.assertEqual(lake.files("raw"), [])
            self.assertEqual(lake.remove_stale_temporaries(), 1)
            self.assertEqual(list(part.iterdir()), [])

    def test_a_writer_removes_only_the_temporaries_its_lock_owns_or_old_ones(self) -> None:
        # A doors pull's start-up removed the file a robots pull beside it was writing (and the
        # fleet file's temporary of the other pull): that pull failed on its rename.
        with tempfile.TemporaryDirectory() as tmp:
            lake = Lake(tmp)
            paths = {
                "doors": "raw/doors/date=2024-07-01/data.parquet.tmp-1",
                "doors quarantine": "quarantine/doors/run-1.parquet.tmp-2",
                "doors state": "_state/doors.json.tmp-3",
                "robots": "raw/robots/date=2024-07-01/data.parquet.tmp-4",
                "robots state": "_state/robots.json.tmp-5",
                "doors fleet": "reference/fleet.json.tmp-doors-6",
                "fleet": "reference/fleet.json.tmp-robots-7",
                "old fleet": "reference/fleet.json.tmp-8",
                "marts": "marts/robot_fits/month=2024-07/data.parquet.tmp-9",
                "transform state": "_state/transform.json.tmp-10",
                "something else": "reference/other.json.tmp-11",
                "stream state": "_state/stream.json.tmp-12",  # the streaming job holds no lake lock
                "stream alerts": "alerts/stream/date=2024-07-01/part-0.parquet.tmp-13",
            }
            for path in paths.values():
                Path(tmp, path).parent.mkdir(parents=True, exist_ok=True)
                Path(tmp, path).write_bytes(b"being written")
            two_hours_ago = time.time() - 7200
            os.utime(Path(tmp, paths["old fleet"]), (two_hours_ago, two_hours_ago))

            def left() -> set[str]:
                return {name for name, path in paths.items() if Path(tmp, path).exists()}

            self.assertEqual(lake.remove_stale_temporaries("doors"), 5, "its own, and an old one")
            unlocked = {"something else", "stream state", "stream alerts"}
            self.assertEqual(left(), {"robots", "robots state", "fleet", "marts", "transform state"} | unlocked)
            self.assertEqual(lake.remove_stale_temporaries("robots"), 3)
            self.assertEqual(left(), {"marts", "transform state"} | unlocked)
            self.assertEqual(lake.remove_stale_temporaries("marts"), 2)
            self.assertEqual(left(), unlocked)
            # every lock held (a transform): still not the files of writers outside the locks, until old
            self.assertEqual(lake.remove_stale_temporaries(), 0)
            for name in unlocked:
                os.utime(Path(tmp, paths[name]), (two_hours_ago, two_hours_ago))
            self.assertEqual(lake.remove_stale_temporaries(), 3)
            self.assertEqual(left(), set())

    def test_files_use_dictionaries_for_text_only(self) -> None:
        # Floats rarely repeat: a dictionary on them made raw robot files larger and slower.
        with tempfile.TemporaryDirectory() as tmp:
            lake = Lake(tmp)
            table = pa.table({"robot_id": ["robot-1"] * 500, "axis1": [i / 7 for i in range(500)]})
            lake.write_table(lake.path("raw", "robots", "date=2024-07-01", "data.parquet"), table)
            meta = pq.ParquetFile(Path(tmp, "raw", "robots", "date=2024-07-01", "data.parquet")).metadata
            encodings = {meta.schema.column(i).name: meta.row_group(0).column(i).encodings for i in range(2)}
            self.assertIn("RLE_DICTIONARY", encodings["robot_id"])
            self.assertNotIn("RLE_DICTIONARY", encodings["axis1"])

    @contextlib.contextmanager
    def lock_held_by_another_process(self, lake: str, *scopes: str) -> Iterator[subprocess.Popen]:
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from etl.lake import Lake\n"
             "with Lake(sys.argv[1]).lock(5, *sys.argv[2:]):\n    print('held', flush=True); time.sleep(30)",
             lake, *scopes],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            self.assertEqual(holder.stdout.readline().strip(), "held")
            yield holder
        finally:
            holder.kill()
            holder.wait(timeout=10)
            holder.stdout.close()

    def test_the_lock_times_out_with_the_holder(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            with self.lock_held_by_another_process(tmp) as holder:
                began = time.monotonic()
                with self.assertRaisesRegex(LakeBusy, f"locked by pid {holder.pid} since"), Lake(tmp).lock(0.3):
                    pass
                self.assertLess(time.monotonic() - began, 5)
            with Lake(tmp).lock(1):
                pass  # a dead holder's lock is released by the kernel

    def test_lock_scopes_let_the_two_pulls_run_side_by_side_but_not_a_transform(self) -> None:
        with tempfile.TemporaryDirectory() as tmp, self.lock_held_by_another_process(tmp, "doors"):
            with Lake(tmp).lock(0.3, "robots"), Lake(tmp).lock(0.3, "marts"):
                pass  # other scopes are free
            for scopes in [("doors",), ()]:  # the same scope, or the whole lake, waits
                busy = self.assertRaisesRegex(LakeBusy, r"\(doors\) is locked by pid")
                with self.subTest(scopes=scopes), busy, Lake(tmp).lock(0.3, *scopes):
                    pass
            with self.assertRaisesRegex(ValueError, "lock scope 'door' is not one of"), Lake(tmp).lock(1, "door"):
                pass

    def test_progress_shows_on_a_terminal_only(self) -> None:
        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        tty, pipe = Tty(), io.StringIO()
        for stream in (tty, pipe):
            bar = Progress(stream, width=10)
            bar.start("pull doors", 4)
            bar.update(2, 1234)
            bar.finish()
        self.assertIn("pull doors [#####.....] 2/4 pages, 1,234 rows", tty.getvalue())
        self.assertEqual(pipe.getvalue(), "")


class ObjectStorageTest(unittest.TestCase):
    """The same pull into s3://, against moto's S3-compatible server on 127.0.0.1."""

    def test_pull_into_s3(self) -> None:
        port = free_port()
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        moto_server = str(Path(sys.executable).with_name("moto_server"))
        moto = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            uri = f"s3://lake-bucket/prod?endpoint_override=127.0.0.1:{port}&scheme=http&allow_bucket_creation=true"
            lake = self.wait_for_s3(uri)
            with ApiServer() as server:
                settings = EtlSettings(api_url=server.base, lake=uri)
                client = ApiClient(settings, log=lambda line: None)
                for data in (DOORS, ROBOTS):
                    for _ in range(2):  # the second pull must change nothing
                        pull(client, lake, data, settings, at("2024-06-01T00:00:00"), at("2024-06-04T00:00:00"))
                    files = lake.files("raw", data.kind)
                    self.assertEqual(len(files), 3)
                    got = pa.concat_tables(lake.read_table(f) for f in files).cast(data.schema)
                    expected = api_table(server, data, "2024-06-01T00:00:00Z", "2024-06-04T00:00:00Z")
                    self.assertTrue(got.sort_by([(k, "ascending") for k in data.key]).equals(expected))
                    dates = ["2024-06-01", "2024-06-02", "2024-06-03"]
                    self.assertEqual(sorted(lake.partition_versions(data.kind)), dates)
                client.close()
                status = lake_status(lake)
                self.assertEqual(status["doors"]["watermark"], "2024-06-04T00:00:00Z")
                self.assertEqual(status["robots"]["rows"], 3 * 4 * 8640)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
            moto.terminate()
            moto.wait(timeout=10)

    def wait_for_s3(self, uri: str) -> Lake:
        deadline = time.monotonic() + 30
        while True:
            try:
                lake = Lake(uri)
                lake.fs.create_dir("lake-bucket")
                return lake
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


if __name__ == "__main__":
    unittest.main()
