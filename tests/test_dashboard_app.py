"""The dashboard in Streamlit's AppTest: every tab and the main widgets, on a real lake and on the
snapshot alone, and the edge cases (one day, one hour, no data) that used to crash it."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
from streamlit.testing.v1 import AppTest

from dashboard import door_tabs, queries, source
from dashboard.config import DashboardSettings
from tests.dashboard_support import built_lake, built_snapshot, tiny_lake

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
TABS = ["Traffic", "Trends", "Tables", "Robots", "Sensor health", "Pipeline"]


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
        self.assertEqual((last - first).days, 27, "the last four weeks")

    def test_every_tab_renders_from_the_url(self) -> None:
        expected = {"Traffic": 1, "Trends": 2, "Tables": 0, "Robots": 2, "Sensor health": 2, "Pipeline": 0}
        for tab in TABS:
            with self.subTest(tab=tab):
                at = app(self.lake, tab=tab)
                self.assert_clean(at)
                self.assertEqual(at.header[0].value, tab)
                self.assertEqual(len(self.charts(at)), expected[tab])

    def test_the_traffic_tab_marks_anomalies(self) -> None:
        at = app(self.lake, res="Hourly", level="Door", dates=["2024-11-01", "2024-12-10"])
        self.assert_clean(at)
        flagged = [s.value for s in at.subheader if s.value.startswith("Anomalies")]
        self.assertNotEqual(flagged, ["Anomalies (0)"], "six weeks of the simulator hold flagged hours")
        spec = self.charts(at)[0].proto.spec
        self.assertIn('"anomaly"', spec, "the anomaly layer is drawn")

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
        # Four Mondays and four Tuesdays, but the last Tuesday (10 December) ends at 01:00 local.
        self.assertEqual(one_door, 7 * 10, "seven days x 10 hours")
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
