"""The door marts on small hand-built data, against references computed here in pandas."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
import unittest
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl.datasets import DOORS
from etl.lake import US_PER_DAY, Lake, Partition
from etl.marts import DATED_BY_TS, KEY_COLUMNS, read_mart, write_mart
from etl.transform import TransformParams, _bound, load_queries, transform

UTC = dt.UTC
STORES = [
    {"name": "Paris", "timezone": "Europe/Paris", "doors": 3},
    {"name": "London", "timezone": "Europe/London", "doors": 1},
]
START = pd.Timestamp("2024-09-01T00:00:00Z")
END = pd.Timestamp("2024-11-16T00:00:00Z")
SPLIT = pd.Timestamp("2024-11-01T00:00:00Z")  # the incremental test loads up to here first
GAP = (pd.Timestamp("2024-10-10T00:00:00Z"), pd.Timestamp("2024-10-12T00:00:00Z"))  # London sends nothing
ANOMALY = ("Paris", 0, pd.Timestamp("2024-10-15T10:00:00Z"))  # 12:00 local, a Tuesday
FAILED = ("Paris", 1, pd.Timestamp("2024-10-20T00:00:00Z"), pd.Timestamp("2024-10-25T00:00:00Z"))


def hand_built_readings() -> pd.DataFrame:
    """Hourly counts: open 8-18 local Mon-Sat, 5 % noise, one anomaly, one failure, a gap."""
    rng = np.random.default_rng(1)
    frames = []
    hours = pd.date_range(START, END, freq="h", inclusive="left")
    for store in STORES:
        local = hours.tz_convert(store["timezone"])
        is_open = (local.day_of_week < 6) & (local.hour >= 8) & (local.hour < 18)
        for sensor in range(store["doors"]):
            weight = 0.05 if (store["name"], sensor) == ("Paris", 2) else 1.0
            level = 1000 * weight * (1 + 0.3 * (local.day_of_week == 5))
            visits = np.where(is_open, np.rint(level * rng.normal(1, 0.05, len(hours))), 0)
            frames.append(pd.DataFrame({"ts": hours, "store": store["name"], "sensor_id": sensor, "count": visits}))
    df = pd.concat(frames, ignore_index=True)
    df["count"] = df["count"].astype("Int64")
    store, sensor, ts = ANOMALY
    df.loc[(df.store == store) & (df.sensor_id == sensor) & (df.ts == ts), "count"] = 100
    store, sensor, t0, t1 = FAILED
    df.loc[(df.store == store) & (df.sensor_id == sensor) & (df.ts >= t0) & (df.ts < t1), "count"] = pd.NA
    gap = (df.store == "London") & (df.ts >= GAP[0]) & (df.ts < GAP[1])
    return df[~gap].reset_index(drop=True)


def write_lake(
    root: Path, df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, stores: list[dict] = STORES
) -> Lake:
    lake = Lake(str(root))
    lake.write_bytes(lake.path("reference", "fleet.json"), json.dumps({"stores": stores}).encode())
    part = df[(df.ts >= start) & (df.ts < end)].sort_values(["ts", "store", "sensor_id"])
    table = pa.Table.from_pandas(part, schema=DOORS.schema, preserve_index=False)
    lake.replace_interval(DOORS, table, start.to_pydatetime(), end.to_pydatetime())
    return lake


def doors_rows(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table({n: pa.array(c, DOORS.schema.field(n).type) for n, c in zip(DOORS.schema.names, cols, strict=True)})


def local_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.rename(columns={"count": "visits"}).copy()
    tz = out.store.map({s["name"]: s["timezone"] for s in STORES})
    out["local_ts"] = [t.tz_convert(z).tz_localize(None) for t, z in zip(out.ts, tz, strict=True)]
    out["local_date"] = out.local_ts.dt.date
    out["local_hour"] = out.local_ts.dt.hour
    out["weekday"] = out.local_ts.dt.day_of_week + 1
    return out


def previous_weeks_mean(df: pd.DataFrame, keys: list[str], value: str, weeks: int) -> pd.Series:
    """Mean of `value` over rows with the same keys dated 1..7*weeks days before, nulls skipped."""
    history: dict[tuple, list[tuple]] = {}
    for row in df[[*keys, "local_date", value]].itertuples(index=False):
        history.setdefault(tuple(row[:-2]), []).append((row[-2], row[-1]))
    means = []
    for row in df[[*keys, "local_date"]].itertuples(index=False):
        day = row[-1]
        values = [v for d, v in history[tuple(row[:-1])]
                  if day - dt.timedelta(days=7 * weeks) <= d < day and not pd.isna(v)]  # fmt: skip
        means.append(np.mean(values) if values else np.nan)
    return pd.Series(means, index=df.index)


class DoorMartsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.readings = hand_built_readings()
        cls.lake = write_lake(Path(cls.tmp.name, "lake"), cls.readings, START, END)
        cls.params = TransformParams()
        cls.summary = transform(cls.lake, cls.params)
        cls.local = local_frame(cls.readings)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def mart(self, name: str) -> pd.DataFrame:
        return read_mart(self.lake, name).to_pandas()

    def test_the_key_columns_the_files_sort_by_identify_a_row(self) -> None:
        # write_mart sorts by these alone: were two rows to share them, their order would be any.
        for name, count in KEY_COLUMNS.items():
            with self.subTest(name):
                frame = self.mart(name)
                key = list(frame.columns[:count])
                self.assertGreater(len(frame), 0)
                self.assertFalse(frame.duplicated(key).any(), f"{name}: {key} repeat")

    def test_files_sorted_by_ts_alone_are_sorted_by_date(self) -> None:
        # write_mart leaves part_date out of these tables' sort: each file must still hold its
        # month's rows in date order, which its part_dates count off (UTC dates of ts).
        for name in DATED_BY_TS:
            for path in self.lake.files("marts", name):
                with self.subTest(name=name, path=path):
                    table = self.lake.read_table(path)
                    self.assertEqual(table.column_names[0], "ts")
                    days = table.column("ts").cast(pa.int64()).to_numpy() // US_PER_DAY
                    listed = json.loads(table.schema.metadata[b"part_dates"])
                    expected = [Partition(int(d)).date.isoformat() for d in days]
                    counted = [date for date, rows in listed for _ in range(rows)]
                    self.assertEqual(expected, counted)

    def test_hourly_sensor_against_pandas(self) -> None:
        got = self.mart("door_hourly_sensor").sort_values(["store", "sensor_id", "ts"]).reset_index(drop=True)
        ref = self.local.sort_values(["store", "sensor_id", "ts"]).reset_index(drop=True)
        self.assertEqual(len(got), len(ref))
        np.testing.assert_array_equal(got.local_hour, ref.local_hour)
        np.testing.assert_array_equal(got.weekday, ref.weekday)
        self.assertEqual(got.failed_readings.sum(), int(ref.visits.isna().sum()))
        expected = previous_weeks_mean(ref, ["store", "sensor_id", "weekday", "local_hour"], "visits", 4)
        np.testing.assert_allclose(got.running_mean.astype(float), expected, rtol=1e-9)
        perc = 100 * (ref.visits.astype(float) - expected) / expected
        np.testing.assert_allclose(got.perc_diff.astype(float), perc.where(expected > 0), rtol=1e-9)

    def test_the_original_four_row_mean_is_reproduced_on_data_without_failures(self) -> None:
        got = self.mart("door_daily_store")
        clean = got[got.store == "London"].sort_values("local_date")
        ref = clean.groupby("weekday")["visits"].transform(lambda s: s.rolling(4, min_periods=1).mean())
        np.testing.assert_allclose(clean.avg_count_4days, ref, rtol=1e-12)
        hourly = self.mart("door_hourly_sensor")
        london = hourly[hourly.store == "London"].sort_values(["local_date", "ts"])
        london = london[~london.duplicated(["weekday", "local_hour", "local_date"], keep=False)]  # the DST hour
        ref = london.groupby(["weekday", "local_hour"])["visits"].transform(
            lambda s: s.rolling(4, min_periods=1).mean()
        )
        np.testing.assert_allclose(london.avg_count_4days, ref, rtol=1e-12)

    def test_daily_sensor_marks_partial_days_and_compares_only_whole_ones(self) -> None:
        got = self.mart("door_daily_sensor").set_index(["store", "sensor_id", "local_date"]).sort_index()
        d = dt.date
        self.assertTrue(got.loc[("Paris", 0, d(2024, 9, 1)), "partial"], "starts at 02:00 local")
        self.assertEqual(got.loc[("Paris", 0, d(2024, 10, 27)), "hours_in_day"], 25)
        self.assertFalse(got.loc[("Paris", 0, d(2024, 10, 27)), "partial"])
        self.assertTrue(got.loc[("London", 0, d(2024, 10, 10)), "partial"], "the gap leaves a partial day")
        self.assertTrue(np.isnan(got.loc[("London", 0, d(2024, 10, 10)), "perc_diff"]))
        self.assertTrue(got.loc[("Paris", 1, d(2024, 10, 21)), "incomplete"])
        daily = self.local.groupby(["store", "sensor_id", "local_date"]).agg(
            visits=("visits", lambda s: s.sum(min_count=1)), hours=("ts", "size"),
            failed=("visits", lambda s: s.isna().sum()), weekday=("weekday", "first"),
        ).reset_index()  # fmt: skip
        tz = daily.store.map({s["name"]: s["timezone"] for s in STORES})
        start = [pd.Timestamp(x).tz_localize(z) for x, z in zip(daily.local_date, tz, strict=True)]
        end = [pd.Timestamp(x + dt.timedelta(days=1)).tz_localize(z) for x, z in zip(daily.local_date, tz, strict=True)]
        length = [(b - a).total_seconds() / 3600 for a, b in zip(start, end, strict=True)]
        daily["whole"] = np.where((daily.hours == length) & (daily.failed == 0), daily.visits.astype(float), np.nan)
        daily["mean"] = previous_weeks_mean(daily, ["store", "sensor_id", "weekday"], "whole", 4)
        ref = daily.set_index(["store", "sensor_id", "local_date"]).sort_index()
        np.testing.assert_allclose(got.running_mean.astype(float), ref["mean"], rtol=1e-9)
        np.testing.assert_array_equal(got.visits, ref.visits)

    def test_store_totals_with_a_failed_door_are_incomplete_and_not_compared(self) -> None:
        got = self.mart("door_hourly_store")
        failing = got[(got.store == "Paris") & (got.ts >= FAILED[2]) & (got.ts < FAILED[3])]
        self.assertTrue(failing.incomplete.all())
        self.assertTrue(failing.perc_diff.isna().all())
        self.assertTrue((failing.failed_readings == 1).all())
        whole = got[(got.store == "Paris") & ~got.incomplete]
        ref = self.local[self.local.store == "Paris"].groupby("ts").visits.sum()
        np.testing.assert_array_equal(whole.set_index("ts").visits.sort_index(), ref.loc[whole.ts.sort_values()])

    def test_anomalies_find_the_injected_hour_and_nothing_else(self) -> None:
        got = self.mart("door_anomalies")
        hourly = got[(got.resolution == "hour") & (got.grain == "sensor")]
        self.assertEqual(hourly[["store", "sensor_id", "ts"]].values.tolist(), [[ANOMALY[0], ANOMALY[1], ANOMALY[2]]])
        row = hourly.iloc[0]
        self.assertEqual((row.direction, row.level), ("low", "critical"))
        self.assertLess(row.change, -0.8)

    def test_health_warns_about_the_failing_door_and_the_underused_one(self) -> None:
        got = self.mart("door_health").set_index(["store", "sensor_id", "local_date"]).sort_index()
        row = got.loc[("Paris", 1, dt.date(2024, 10, 24))]
        self.assertAlmostEqual(row.failure_rate_7d, (24 * 4 + 22) / (24 * 7), places=2)  # 20 Oct 02:00 local on
        self.assertTrue(row.replacement_warning)
        self.assertGreater(row.failure_trend, 0.5)
        self.assertFalse(got.loc[("Paris", 0, dt.date(2024, 10, 24)), "replacement_warning"])
        self.assertTrue(got.loc[("Paris", 2, dt.date(2024, 10, 24)), "underused"])
        self.assertFalse(got.loc[("Paris", 0, dt.date(2024, 10, 24)), "underused"])
        self.assertFalse(got.loc[("London", 0, dt.date(2024, 10, 24)), "underused"], "a lone door has no siblings")

    def test_health_gives_no_warning_on_less_than_a_week_of_history(self) -> None:
        first_days = self.readings[self.readings.ts < START + pd.Timedelta(days=3)].copy()
        failing = (
            (first_days.store == "Paris")
            & (first_days.sensor_id == 0)
            & (first_days.ts < START + pd.Timedelta(hours=12))
        )
        first_days.loc[failing, "count"] = pd.NA
        lake = write_lake(Path(self.tmp.name, "young"), first_days, START, START + pd.Timedelta(days=3))
        transform(lake, self.params)
        got = read_mart(lake, "door_health").to_pandas().set_index(["store", "sensor_id", "local_date"]).sort_index()
        young = got.loc[("Paris", 0)]
        self.assertGreater(young.failure_rate_30d.max(), self.params.health_failure_rate, "the rate is shown ...")
        self.assertTrue((young.hours_30d < self.params.health_min_hours).all())
        self.assertFalse(young.replacement_warning.any(), "... but a few days are no grounds for a replacement")

    def test_an_incremental_run_equals_a_full_rebuild(self) -> None:
        root = Path(self.tmp.name, "incremental")
        lake = write_lake(root, self.readings, START, SPLIT)
        transform(lake, self.params)
        write_lake(root, self.readings, SPLIT, END)
        second = transform(lake, self.params)
        self.assertEqual(second.dates[0], "2024-11-01", "only the new month is recomputed")
        again = transform(lake, self.params)
        self.assertEqual(again.dates, [], "nothing new, nothing done")
        full = Path(self.tmp.name, "full")
        shutil.copytree(root / "raw", full / "raw")
        shutil.copytree(root / "reference", full / "reference")
        rebuilt = transform(Lake(str(full)), self.params, full=True)
        self.assertGreater(len(rebuilt.dates), 70)
        for name in rebuilt.tables:
            with self.subTest(table=name):
                a = read_mart(lake, name).to_pandas().sort_values(list(read_mart(lake, name).column_names))
                b = read_mart(Lake(str(full)), name).to_pandas().sort_values(list(a.columns))
                pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True)

    def test_increments_mid_month_keep_the_months_earlier_rows(self) -> None:
        # Hour by hour into November's 10th and 11th: each run computes from its change (or the
        # day before, with a store west of UTC) and keeps the month file's earlier dates.
        west = [{**s, "timezone": "America/New_York"} if s["name"] == "London" else s for s in STORES]
        for label, stores in (("european stores", STORES), ("a store west of UTC", west)):
            with self.subTest(label):
                root = Path(self.tmp.name, f"mid-month-{len(label)}")
                mid = pd.Timestamp("2024-11-10T22:00:00Z")
                lake = write_lake(root, self.readings, START, mid, stores)
                transform(lake, self.params)
                for hour in range(3):
                    at = mid + pd.Timedelta(hours=hour)
                    write_lake(root, self.readings, at, at + pd.Timedelta(hours=1), stores)
                    self.assertEqual(len(transform(lake, self.params).dates), 1)
                write_lake(root, self.readings, mid + pd.Timedelta(hours=3), END, stores)
                transform(lake, self.params)
                full = Path(self.tmp.name, f"mid-month-full-{len(label)}")
                shutil.copytree(root / "raw", full / "raw")
                shutil.copytree(root / "reference", full / "reference")
                rebuilt = transform(Lake(str(full)), self.params, full=True)
                for name in rebuilt.tables:
                    a = read_mart(lake, name).to_pandas().sort_values(list(read_mart(lake, name).column_names))
                    b = read_mart(Lake(str(full)), name).to_pandas().sort_values(list(a.columns))
                    pd.testing.assert_frame_equal(
                        a.reset_index(drop=True), b.reset_index(drop=True), obj=name, check_exact=True
                    )


if __name__ == "__main__":
    unittest.main()


class MartFilesTest(unittest.TestCase):
    def test_the_same_rows_in_any_order_make_the_same_file(self) -> None:
        # door_anomalies' first three columns (resolution, grain, store) tie across doors and
        # hours: a file sorted by them alone came out in a different order from run to run.
        rows = [("hour", "sensor", "Paris", door, hour) for door in range(3) for hour in range(8, 18)]
        day = Partition.from_iso("2024-10-15").day
        files = []
        with tempfile.TemporaryDirectory() as tmp:
            for name, ordered in (("forward", rows), ("backward", rows[::-1])):
                con = duckdb.connect()
                con.execute(
                    "CREATE TABLE door_anomalies (resolution VARCHAR, grain VARCHAR, store VARCHAR,"
                    " sensor_id INTEGER, local_hour INTEGER, part_date DATE)"
                )
                con.executemany("INSERT INTO door_anomalies VALUES (?, ?, ?, ?, ?, DATE '2024-10-15')", ordered)
                lake = Lake(str(Path(tmp, name)))
                count, parts = write_mart(lake, con, "door_anomalies", day, day, "month", set())
                self.assertEqual((count, parts), (30, {"month=2024-10"}))
                files.append(Path(tmp, name, "marts", "door_anomalies", "month=2024-10", "data.parquet").read_bytes())
                con.close()
        self.assertEqual(files[0], files[1])


class RawChangesTest(unittest.TestCase):
    def test_a_raw_file_rewritten_in_place_by_hand_is_recomputed(self) -> None:
        # Not through the lake (no new file renamed into the folder): an operator's fix with
        # pandas or pyarrow. The transform stats each partition's file, not its folder.
        with tempfile.TemporaryDirectory() as tmp:
            start, end = pd.Timestamp("2024-10-01T00:00:00Z"), pd.Timestamp("2024-10-08T00:00:00Z")
            lake = write_lake(Path(tmp, "lake"), hand_built_readings(), start, end)
            transform(lake, TransformParams())
            path = Path(tmp, "lake", "raw", "doors", "date=2024-10-03", "data.parquet")
            table = pq.read_table(path)
            counts = table.column("count").to_pylist()
            counts[0] = 4321
            pq.write_table(table.set_column(3, "count", pa.array(counts, pa.int32())), path)
            self.assertEqual(transform(lake, TransformParams()).dates, ["2024-10-03"])
            hourly = read_mart(lake, "door_hourly_sensor").to_pandas()
            first = table.slice(0, 1).to_pylist()[0]
            row = hourly[(hourly.ts == first["ts"]) & (hourly.store == first["store"])]
            self.assertEqual(row[row.sensor_id == first["sensor_id"]].visits.tolist(), [4321])
            self.assertEqual(transform(lake, TransformParams()).dates, [], "seen once")

    def test_raw_partitions_outside_the_plausible_window_are_reported_and_skipped(self) -> None:
        # As an older import left them: a row at 9999-12-31 made every transform fail with an
        # OverflowError; one at 2200-01-01 made it compute 175 years of empty days.
        with tempfile.TemporaryDirectory() as tmp:
            start = pd.Timestamp("2024-10-01T00:00:00Z")
            lake = write_lake(Path(tmp, "lake"), hand_built_readings(), start, start + pd.Timedelta(days=2))
            clean = transform(lake, TransformParams())
            stray = [dt.datetime(y, m, d, 23, tzinfo=UTC) for y, m, d in ((1, 1, 1), (2200, 1, 1), (9999, 12, 31))]
            lake.upsert(DOORS, doors_rows([(t, "Paris", 0, 5) for t in stray]))
            began = time.monotonic()
            poisoned = transform(lake, TransformParams())
            self.assertLess(time.monotonic() - began, 30)
            self.assertEqual(poisoned.skipped, ["doors 0001-01-01", "doors 2200-01-01", "doors 9999-12-31"])
            self.assertIn(
                "skipped 3 raw partitions outside the plausible window 1970-01-01T00:00:00Z ..", poisoned.line()
            )
            self.assertEqual(poisoned.dates, [], "nothing inside the window changed")
            rebuilt = transform(lake, TransformParams(), full=True)
            self.assertEqual(rebuilt.tables, clean.tables)
            self.assertEqual(len(rebuilt.skipped), 3)

    def test_a_killed_transforms_temporary_files_go_with_the_next_transform(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            start = pd.Timestamp("2024-10-01T00:00:00Z")
            lake = write_lake(Path(tmp, "lake"), hand_built_readings(), start, start + pd.Timedelta(days=2))
            left = Path(tmp, "lake", "marts", "door_health", "month=2024-10", "data.parquet.tmp-0badf00d")
            left.parent.mkdir(parents=True)
            left.write_bytes(b"half a file")
            transform(lake, TransformParams())
            self.assertFalse(left.exists())


class QueryOrderTest(unittest.TestCase):
    """load_queries orders the .sql files so that a table comes after the tables it reads."""

    def queries(self, files: dict[str, str]) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            for name, sql in files.items():
                Path(tmp, f"{name}.sql").write_text(sql)
            return list(load_queries(Path(tmp)))

    def test_a_table_read_comes_first_and_one_named_in_a_comment_is_no_reference(self) -> None:
        order = self.queries({
            "a_daily": "-- sums a_hourly; b_health reads this\nSELECT * FROM a_hourly",
            "a_hourly": "-- b_health's 30 days need all of these rows\nSELECT 1 AS x",
            "b_health": "SELECT * FROM a_daily",
        })  # fmt: skip
        self.assertEqual(order, ["a_hourly", "a_daily", "b_health"])

    def test_a_parameter_named_only_in_a_comment_is_not_bound(self) -> None:
        # DuckDB refuses a parameter the query does not use: binding $baseline_weeks here failed it
        sql = "-- the mean over $baseline_weeks weeks\nSELECT $first_date AS first_date"
        bound = _bound(sql, TransformParams(), Partition.from_iso("2024-03-01").day)
        self.assertEqual(bound, {"first_date": dt.date(2024, 3, 1)})
        self.assertEqual(duckdb.connect().execute(sql, bound).fetchall(), [(dt.date(2024, 3, 1),)])

    def test_tables_that_read_each_other_are_refused_by_name(self) -> None:
        with self.assertRaisesRegex(ValueError, r"circular references among \['x', 'y'\]"):
            self.queries({"x": "SELECT * FROM y", "y": "SELECT * FROM x"})
