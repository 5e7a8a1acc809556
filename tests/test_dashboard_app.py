"""The dashboard in Streamlit's AppTest: every tab and the main widgets, on a real lake and on the
snapshot alone, and the edge cases (one day, one hour, no data) that used to crash it."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from streamlit.testing.v1 import AppTest

from dashboard import door_tabs, queries, source
from dashboard.config import DashboardSettings
from etl.datasets import DOORS
from etl.lake import Lake
from etl.transform import TransformParams, transform
from tests.dashboard_support import built_lake, built_snapshot, tiny_lake

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TABS = ["Traffic", "Trends", "Tables", "Robots", "Live", "Sensor health", "Alarms", "Model quality", "Pipeline"]


def app(lake: Path | None, snapshot: Path | None = None, **query: str | list[str]) -> AppTest:
    """The app, run once with this configuration and these URL parameters."""
    env = {"DASHBOARD_LAKE": str(lake) if lake else "", "DASHBOARD_SNAPSHOT": str(snapshot or "/nonexistent")}
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    with mock.patch.dict(os.environ, env):
        at.run()
    at.env = env  # the reruns below need the same configuration
    return at


def rerun(at: AppTest) -> AppTest:
    with mock.patch.dict(os.environ, at.env):
        return at.run()


class DashboardTestCase(unittest.TestCase):
    def assert_clean(self, at: AppTest) -> None:
        self.assertEqual([e.value for e in at.exception], [], "no exception")
        self.assertEqual([e.value for e in at.error], [], "no error message")

    def charts(self, at: AppTest) -> list:
        return at.get("vega_lite_chart")


class LakeTest(DashboardTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.lake = built_lake()

    def test_a_first_visit_shows_the_traffic_of_every_store(self) -> None:
        at = app(self.lake)
        self.assert_clean(at)
        self.assertEqual([h.value for h in at.header], ["Traffic"])
        self.assertEqual(len(self.charts(at)), 1)
        self.assertEqual(at.sidebar.radio(key="source").value, "lake")
        self.assertEqual(
            sorted(at.sidebar.multiselect(key="stores").value), ["Berlin", "London", "Madrid", "Paris", "Roma"]
        )
        first, last = at.sidebar.slider(key="dates").value
        self.assertEqual((last - first).days, 34, "the last five weeks: 28 whole days for the trend")

    def test_every_tab_renders_from_the_url(self) -> None:
        # the lake has no streaming job's scores, no operational database and no detector scores: those
        # tabs say so (assert_clean: no error, no exception)
        expected = {"Traffic": 1, "Trends": 2, "Tables": 0, "Robots": 2, "Live": 0, "Sensor health": 2, "Alarms": 0,
                    "Model quality": 0, "Pipeline": 0}  # fmt: skip
        for tab in TABS:
            with self.subTest(tab=tab):
                at = app(self.lake, tab=tab)
                self.assert_clean(at)
                self.assertEqual(at.header[0].value, tab)
                self.assertEqual(len(self.charts(at)), expected[tab])

    def test_the_traffic_tab_marks_anomalies_at_every_resolution_and_level(self) -> None:
        counts = {}
        for res, level in [("Daily", "Store"), ("Daily", "Door"), ("Hourly", "Store"), ("Hourly", "Door")]:
            with self.subTest(res=res, level=level):
                at = app(self.lake, res=res, level=level, dates=["2024-11-01", "2024-12-10"])
                self.assert_clean(at)
                heading = [s.value for s in at.subheader if s.value.startswith("Anomalies")]
                counts[res, level] = int(heading[0].removeprefix("Anomalies (").removesuffix(")"))
                self.assertGreater(counts[res, level], 0, "six weeks of the simulator hold flagged hours")
                self.assertIn('"anomalies"', self.charts(at)[0].proto.spec, "the anomaly layer is drawn")
        # Every flagged door-hour is one mark at hourly/door level; coarser points hold one or more.
        self.assertGreaterEqual(counts["Hourly", "Door"], counts["Daily", "Door"])
        self.assertGreaterEqual(counts["Hourly", "Store"], counts["Daily", "Store"])

    def test_flagged_series_are_drawn_even_when_not_among_the_busiest(self) -> None:
        src = source.scan(self.lake, False)
        f = queries.DoorFilters(("Berlin", "London", "Madrid", "Paris", "Roma"), None, "hour", "sensor",
                                tuple(range(1, 8)), dt.date(2024, 11, 1), dt.date(2024, 12, 10), (0, 23))  # fmt: skip
        marks = queries.anomalies(src, f)
        busiest = set(queries.traffic(src, f).series)
        self.assertEqual(len(busiest), queries.MAX_SERIES)
        self.assertTrue(set(marks.series) - busiest, "some flagged doors are not among the busiest")
        drawn = set(queries.traffic(src, f, list(marks.series.unique())).series)
        self.assertLessEqual(set(marks.series), drawn)

    def test_flags_past_the_drawn_series_are_still_counted_and_listed(self) -> None:
        # At 100x the doors hundreds of doors hold a flag: the chart draws the strongest few only.
        view = {"res": "Hourly", "level": "Door", "dates": ["2024-11-01", "2024-12-10"]}
        every = app(self.lake, **view)
        with mock.patch.object(queries, "MAX_FLAGGED_SERIES", 2):
            capped = app(self.lake, **view)
        self.assert_clean(capped)

        def heading(at: AppTest) -> str:
            return next(s.value for s in at.subheader if s.value.startswith("Anomalies"))

        def undrawn(at: AppTest) -> int:
            said = [c.value for c in at.caption if "series the chart does not draw" in c.value]
            return int(said[0].split(" of them")[0].replace(",", "")) if said else 0

        self.assertEqual(heading(capped), heading(every), "every flag is counted, drawn or not")
        self.assertGreater(undrawn(capped), undrawn(every), "fewer series drawn: more flags listed apart")

    def test_a_long_range_is_summed_into_at_most_max_points_a_line(self) -> None:
        src = source.scan(self.lake, False)
        f = queries.DoorFilters(("Berlin", "London", "Madrid", "Paris", "Roma"), None, "hour", "store",
                                tuple(range(1, 8)), dt.date(2024, 11, 1), dt.date(2024, 12, 10), (0, 23))  # fmt: skip
        hourly = queries.traffic(src, f)
        with mock.patch.object(queries, "MAX_POINTS", 100):
            self.assertGreater(f.bucket_hours(), 1)
            summed = queries.traffic(src, f)
        self.assertFalse(summed.duplicated(["series", "period"]).any(), "one point per bucket")
        self.assertLessEqual(summed.groupby("series").size().max(), 100)
        self.assertEqual(summed.visits.sum(), hourly.visits.sum())

    def test_a_store_day_names_its_flagged_doors_in_numeric_order(self) -> None:
        src = source.scan(self.lake, False)
        f = queries.DoorFilters(("Berlin", "London", "Madrid", "Paris", "Roma"), None, "day", "store",
                                tuple(range(1, 8)), dt.date(2024, 11, 1), dt.date(2024, 12, 10), (0, 23))  # fmt: skip
        rolled = queries.anomalies(src, f).what.str.extract(r"\(doors ([\d, ]+)\)")[0].dropna()
        self.assertGreater(len(rolled), 0, "some store-days hold flagged hours of several doors")
        for doors in rolled:
            numbers = [int(d) for d in doors.split(", ")]
            self.assertEqual(numbers, sorted(numbers), doors)

    def test_widgets_change_the_view(self) -> None:
        at = app(self.lake, tab="Tables")
        self.assertIn("`door_daily_store`", at.caption[0].value)
        at.sidebar.radio(key="res").set_value("hour")
        at.sidebar.radio(key="level").set_value("sensor")
        rerun(at)
        self.assertIn("`door_hourly_sensor`", at.caption[0].value)
        all_doors = int(at.caption[0].value.split(": ")[1].split(" rows")[0].replace(",", ""))
        at.sidebar.selectbox(key="door").set_value("Berlin/2")
        at.sidebar.multiselect(key="weekdays").set_value([1, 2])
        at.sidebar.slider(key="hours").set_value((8, 17))
        rerun(at)
        self.assert_clean(at)
        one_door = int(at.caption[0].value.split(": ")[1].split(" rows")[0].replace(",", ""))
        # Five Mondays and five Tuesdays, but the last Tuesday (10 December) ends at 01:00 local.
        self.assertEqual(one_door, 9 * 10, "nine days x 10 hours")
        self.assertLess(one_door, all_doors)
        self.assertEqual({r for r in at.dataframe[0].value.sensor_id}, {2})
        self.assertEqual(len(at.get("download_button")), 2)
        at.sidebar.multiselect(key="stores").set_value([])
        rerun(at)
        self.assert_clean(at)
        self.assertIn("Choose at least one store", at.info[0].value)

    def test_the_url_restores_a_shared_view(self) -> None:
        at = app(self.lake, res="Hourly", level="Door", stores=["Berlin"], door="Berlin · door 3",
                 weekdays=["Sat"], dates=["2024-11-20", "2024-12-05"], hours=["9", "12"])  # fmt: skip
        self.assert_clean(at)
        self.assertEqual(at.sidebar.radio(key="res").value, "hour")
        self.assertEqual(at.sidebar.selectbox(key="door").value, "Berlin/3")
        self.assertEqual(at.sidebar.multiselect(key="weekdays").value, [6])
        self.assertEqual(at.sidebar.slider(key="hours").value, (9, 12))
        self.assertEqual(str(at.sidebar.slider(key="dates").value[0]), "2024-11-20")

    def test_robot_widgets(self) -> None:
        at = app(self.lake, tab="Robots")
        self.assert_clean(at)
        at.selectbox(key="robot").set_value("robot-2")
        at.selectbox(key="axis").set_value("axis5")
        at.selectbox(key="window").set_value(1)
        rerun(at)
        self.assert_clean(at)
        self.assertIn("robot-2 axis5: signal and regression line", [s.value for s in at.subheader])
        signal = self.charts(at)[0].proto.spec
        self.assertIn('"trend"', signal)
        fidelity = at.dataframe[-1].value if len(at.dataframe) else None
        self.assertIsNotNone(fidelity)

    def test_downloads_hold_every_filtered_row(self) -> None:
        src = source.scan(self.lake, False)
        overview = queries.door_overview(src)
        f = queries.DoorFilters(("Paris",), None, "hour", "sensor", tuple(range(1, 8)),
                                overview["first"].min(), overview["last"].max(), (0, 23))  # fmt: skip
        total = queries.table_count(src, f)
        self.assertGreater(total, queries.TABLE_ROWS, "more rows than the page shows")
        table = pq.read_table(pa.BufferReader(door_tabs.parquet_bytes(src, f)))
        self.assertEqual(table.num_rows, total)
        csv = door_tabs.csv_bytes(src, f).decode()
        self.assertEqual(csv.count("\n"), total + 1)
        header, first = (line.split(",") for line in csv.splitlines()[:2])
        row = dict(zip(header, first, strict=True))
        for column in ("sensor_id", "visits", "local_hour", "weekday"):
            self.assertRegex(row[column], r"^\d+$", f"{column} is an integer, never '0.0'")


class TrendTest(DashboardTestCase):
    """The trend on a store whose every day has a failed door (as Paris with 20 doors)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.lake = growing_lake(Path(cls.tmp.name) / "lake", weeks=8, growth_per_day=0.01)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def filters(self, first: dt.date, last: dt.date) -> queries.DoorFilters:
        return queries.DoorFilters(("Grow",), None, "day", "store", tuple(range(1, 8)), first, last, (0, 23))

    def test_a_store_whose_days_are_all_incomplete_still_has_its_trend(self) -> None:
        src = source.scan(self.lake, False)
        daily = pq.read_table(self.lake / "marts" / "door_daily_store").to_pandas()
        self.assertTrue(daily.incomplete.all(), "one door fails an hour every day")
        slopes = queries.trend_slopes(src, self.filters(dt.date(2024, 6, 3), dt.date(2024, 7, 28)))
        row = slopes.set_index("store").loc["Grow"]
        self.assertEqual(row.days, 48, "8 weeks of 6 open days; Sundays are closed")
        # visits grow 1 % of the first day's a day: against the range's mean level (day 27.5), 30 days
        # are 30 / 1.275 = 23.5 % of it, whatever the weekday pattern.
        self.assertAlmostEqual(row.pct_per_30d, 100 * 30 * 0.01 / (1 + 0.01 * 27.5), delta=1.0)
        self.assertLess(row.stderr_pct, 1.0)

    def test_the_tab_says_when_the_range_is_too_short(self) -> None:
        at = app(self.lake, tab="Trends", dates=["2024-07-10", "2024-07-28"])
        self.assert_clean(at)
        self.assertTrue(any("the trend needs whole days over at least 28 days" in i.value for i in at.info))
        at = app(self.lake, tab="Trends", dates=["2024-06-20", "2024-07-28"])
        self.assertIn("Grow", at.table[0].value.index)


def growing_lake(root: Path, weeks: int, growth_per_day: float) -> Path:
    """One store of two doors from Monday 2024-06-03, open 8-20 h Monday to Saturday, busier on
    Saturdays, growing `growth_per_day` a day; door 0 fails at 05:00 every day."""
    lake = Lake(str(root))
    fleet = {"stores": [{"name": "Grow", "timezone": "UTC", "doors": 2}], "robots": []}
    lake.write_bytes(lake.path("reference", "fleet.json"), json.dumps(fleet).encode())
    ts = pd.date_range("2024-06-03T00:00:00Z", periods=weeks * 7 * 24, freq="h")
    day = np.asarray((ts - ts[0]).days)
    open_hours = (ts.hour >= 8) & (ts.hour < 20) & (ts.day_of_week < 6)
    weekday = np.where(ts.day_of_week == 5, 1.5, 1.0)
    count = np.where(open_hours, np.round(100 * weekday * (1 + growth_per_day * day)), 0).astype("int64")
    rows = pd.DataFrame({"ts": ts.repeat(2), "store": "Grow", "sensor_id": [0, 1] * len(ts),
                         "count": pd.array(count.repeat(2), dtype="Int64")})  # fmt: skip
    rows.loc[(rows.sensor_id == 0) & (rows.ts.dt.hour == 5), "count"] = pd.NA
    table = pa.Table.from_pandas(rows, schema=DOORS.schema, preserve_index=False)
    lake.replace_interval(DOORS, table, ts[0].to_pydatetime(), (ts[-1] + pd.Timedelta(hours=1)).to_pydatetime())
    transform(lake, TransformParams())
    return root


class SnapshotTest(DashboardTestCase):
    def test_the_snapshot_alone_serves_every_tab(self) -> None:
        for tab in TABS:
            with self.subTest(tab=tab):
                at = app(None, built_snapshot(), tab=tab)
                self.assert_clean(at)
                self.assertEqual(at.sidebar.radio(key="source").value, "snapshot")
                self.assertEqual(at.header[0].value, tab)
        self.assertIn("A snapshot made at", at.caption[0].value)


class EdgeCaseTest(DashboardTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def every_tab(self, lake: Path) -> list[AppTest]:
        runs = []
        for tab in TABS:
            with self.subTest(tab=tab):
                at = app(lake, tab=tab)
                self.assert_clean(at)
                runs.append(at)
        return runs

    def test_one_day_shows_the_day_without_a_date_slider(self) -> None:
        runs = self.every_tab(tiny_lake(self.root / "day", hours=10))
        self.assertEqual(len(runs[0].sidebar.slider), 1, "only the hour slider")
        self.assertTrue(any("the data covers one day" in c.value for c in runs[0].sidebar.caption))
        self.assertEqual(len(self.charts(runs[0])), 1)
        self.assertEqual(runs[0].sidebar.multiselect(key="stores").value, ["O'Hare"], "a quote in a name is bound")

    def test_one_hour(self) -> None:
        runs = self.every_tab(tiny_lake(self.root / "hour", hours=1))
        self.assertEqual(len(self.charts(runs[0])), 1)

    def test_a_lake_without_data_says_so(self) -> None:
        empty = self.root / "empty"
        empty.mkdir()
        runs = self.every_tab(empty)
        self.assertTrue(any("No door data yet" in i.value for i in runs[0].info))
        self.assertTrue(any("No robot data yet" in i.value for i in runs[3].info))

    def test_a_missing_folder_is_a_message(self) -> None:
        at = app(None, self.root / "nowhere")
        self.assertEqual(len(at.exception), 0)
        self.assertIn("No data folder at", at.error[0].value)

    def test_bad_configuration_is_a_message(self) -> None:
        with self.assertRaisesRegex(ValueError, "DASHBOARD_REFRESH_SECONDS"):
            DashboardSettings.from_env({"DASHBOARD_REFRESH_SECONDS": "soon"})


class SourceTest(unittest.TestCase):
    def test_the_version_changes_when_a_run_writes_its_state(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            lake = tiny_lake(Path(tmp) / "lake", hours=3)
            before = source.version(lake)
            self.assertEqual(source.version(lake), before, "stable while nothing changes")
            state = lake / "_state" / "doors.json"
            state.write_text('{"watermark": "2024-06-03T11:00:00Z"}')
            self.assertNotEqual(source.version(lake), before)

    def test_partitions_before_a_date_are_not_read(self) -> None:
        listing = source.Listing("/x", False, {"t": (("month=2024-05", "a"), ("month=2024-06", "b"))}, (), "v")
        self.assertEqual(listing.files("t", dt.date(2024, 6, 3)), ["b"])
        self.assertEqual(listing.files("t", dt.date(2024, 5, 31)), ["a", "b"])
        self.assertEqual(listing.span("t"), (dt.date(2024, 5, 1), dt.date(2024, 6, 30)))


if __name__ == "__main__":
    unittest.main()
