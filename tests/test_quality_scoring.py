"""`python -m etl quality` on a small real lake against the simulator's /v1/events (a real API on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import tempfile
import unittest
from pathlib import Path

import duckdb
import pandas as pd

from tests.dashboard_support import END, built_lake, copy_of
from tests.support import ApiServer
from tests.test_etl_pull import run_cli


def read(lake: Path, table: str) -> pd.DataFrame:
    """Today's file: the DAG step's and the merge's tests write other days' (2024-12-10 and -11)."""
    files = sorted((lake / "marts" / table).rglob("*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in files if "date=2024-12-1" not in str(p)])


class QualityOnLakeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.lake = copy_of(built_lake(), Path(cls.tmp.name))
        cls.server = cls.enterClassContext(ApiServer(SIM_NOW=END.isoformat().replace("+00:00", "Z")))
        cls.first = run_cli("quality", "--lake", str(cls.lake), "--api", cls.server.base)
        cls.scores = read(cls.lake, "detector_scores")

    def test_one_row_per_detector_with_versions(self) -> None:
        self.assertEqual(self.first.returncode, 0, self.first.stderr)
        self.assertIn("door_anomalies: F1", self.first.stdout)
        scores = self.scores.set_index("detector")
        self.assertEqual(sorted(scores.index), ["door_anomalies", "robot_alerts", "robot_incidents"])
        self.assertTrue((scores["slice"] == "all").all())
        self.assertEqual(scores["data_version"].nunique(), 1)
        self.assertEqual(scores["detector_version"].str.len().tolist(), [12, 12, 12])
        # counts add up to the points and the metrics follow SKAB's formulas from them
        for name, r in scores.iterrows():
            with self.subTest(detector=name):
                self.assertEqual(r.tp + r.fp + r.tn + r.fn, r.points)
                self.assertGreater(r.positives, 0)
                self.assertAlmostEqual(r.f1, r.tp / (r.tp + (r.fp + r.fn) / 2))
                self.assertAlmostEqual(r.far, 100 * r.fp / (r.fp + r.tn))

    def test_door_alarms_are_exactly_the_hourly_sensor_flags(self) -> None:
        files = [str(p) for p in (self.lake / "marts" / "door_anomalies").rglob("*.parquet")]
        flags = duckdb.execute(
            "SELECT count(*) FROM read_parquet($f) WHERE resolution = 'hour' AND grain = 'sensor'", {"f": files}
        ).fetchone()[0]
        door = self.scores.set_index("detector").loc["door_anomalies"]
        self.assertEqual(door.tp + door.fp, flags)  # every flag is at a judged hour, none counted twice

    def test_labels_come_from_the_injected_events(self) -> None:
        events = pd.DataFrame(self.server.get("/v1/events", kind="doors", start="2024-10-29T00:00:00Z",
                                              end=END.isoformat().replace("+00:00", "Z")).json())  # fmt: skip
        anomalies = events[events.type == "anomaly"]
        door = self.scores.set_index("detector").loc["door_anomalies"]
        # each injected anomaly is one door-hour; those before the baseline has 3 weeks are not judged
        self.assertGreater(door.positives, 0)
        self.assertLessEqual(door.positives, len(anomalies) + 24 * 7 * 39 * (events.type == "surge").sum())

    def test_a_rerun_replaces_the_days_file(self) -> None:
        again = run_cli("quality", "--lake", str(self.lake), "--api", self.server.base)
        self.assertEqual(again.returncode, 0, again.stderr)
        files = list((self.lake / "marts" / "detector_scores").rglob("*.parquet"))
        self.assertEqual(len([f for f in files if "date=2024-12-1" not in str(f)]), 1)  # one a day
        rerun = read(self.lake, "detector_scores")
        self.assertEqual(rerun["data_version"].tolist(), self.scores["data_version"].tolist())
        self.assertEqual(rerun["tp"].tolist(), self.scores["tp"].tolist())
        self.assertFalse(list(self.lake.rglob("*.tmp-*")))

    def test_another_sources_rows_of_the_day_are_kept(self) -> None:
        from etl.lake import Lake
        from etl.quality.run import evaluate
        from tests.test_quality_slices import door_hours

        day = dt.datetime(2024, 12, 11, 2, tzinfo=dt.UTC)
        lake = Lake(str(self.lake))
        evaluate(lake, door_hours(seed=4), {"data": "d", "planted": "v"}, "csv-aaaa", day)
        evaluate(lake, door_hours(seed=5), {"data": "d", "planted": "v"}, "csv-bbbb", day)
        again = evaluate(lake, door_hours(seed=6), {"data": "d", "planted": "v"}, "csv-aaaa", day)
        day_file = pd.read_parquet(again.files[0])
        self.assertEqual(sorted(day_file.source), ["csv-aaaa", "csv-bbbb"])  # one row each, the rerun replaced
        self.assertEqual(day_file.set_index("source").loc["csv-aaaa", "tp"], again.scores.tp.iloc[0])
        slices_file = pd.read_parquet(again.files[1])
        self.assertEqual(set(slices_file.source), {"csv-aaaa", "csv-bbbb"})

    def test_the_daily_dag_step_scores_the_lake(self) -> None:
        from etl.quality.run import quality_step
        from etl.settings import EtlSettings

        settings = EtlSettings(api_url=self.server.base, lake=str(self.lake))
        summary = quality_step(settings, now=dt.datetime(2024, 12, 10, 1, tzinfo=dt.UTC))
        self.assertEqual(len(summary["files"]), 2)
        self.assertIn("date=2024-12-10", summary["files"][0])
        self.assertEqual(sorted(s["detector"] for s in summary["scores"]), sorted(self.scores.detector))

    def test_slices_are_written_beside(self) -> None:
        found = read(self.lake, "detector_slices")
        self.assertGreater(len(found), 0)
        self.assertTrue(found["q_value"].between(0, 1).all())
        self.assertTrue((found["q_value"] >= found["p_value"] - 1e-12).all())


class QualityErrorsTest(unittest.TestCase):
    def test_bad_input_and_unreachable_api(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            missing = run_cli("quality", "--lake", str(Path(tmp, "nowhere")), "--api", "http://127.0.0.1:9")
            self.assertEqual(missing.returncode, 2, missing.stderr)
            self.assertIn("error: --lake", missing.stderr)
            no_csv = run_cli("quality", "--lake", tmp, "--csv", str(Path(tmp, "x.csv")))
            self.assertEqual(no_csv.returncode, 2)
            self.assertIn("no such file", no_csv.stderr)
            bad = Path(tmp, "bad.csv")
            bad.write_text("datetime;x\n2020-01-01 00:00:00;1\n")
            unlabelled = run_cli("quality", "--lake", tmp, "--csv", str(bad))
            self.assertEqual(unlabelled.returncode, 2)
            self.assertIn("lacks the columns ['anomaly', 'changepoint']", unlabelled.stderr)
            lake = copy_of(built_lake(), Path(tmp))
            down = run_cli("quality", "--lake", str(lake), "--api", "http://127.0.0.1:9",
                           env={"ETL_RETRIES": "0"})  # fmt: skip
            self.assertEqual(down.returncode, 1, down.stderr)
            self.assertNotIn("Traceback", down.stderr)
            self.assertTrue(down.stderr.startswith("error: "), down.stderr)


if __name__ == "__main__":
    unittest.main()


class StreamAlertsQualityTest(unittest.TestCase):
    """The streaming job's alerts scored against /v1/events beside the lake's detectors."""

    def test_stream_alerts_are_scored_per_robot_bucket(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from etl.stream.sinks import ALERTS

        with tempfile.TemporaryDirectory() as tmp, ApiServer(SIM_NOW=END.isoformat().replace("+00:00", "Z")) as server:
            lake = copy_of(built_lake(), Path(tmp))
            start, end = (END - dt.timedelta(days=2)).isoformat(), END.isoformat()
            events = pd.DataFrame(server.get("/v1/events", kind="robots", start=start, end=end).json())
            block = events[events.type == "anomaly"].iloc[-1]  # late enough for a 2-hour trend
            hit_start = pd.Timestamp(block.start).value // 1000
            healthy = (END - dt.timedelta(hours=1, minutes=5)).timestamp() * 1e6  # between blocks, most likely
            rows = [
                {"key": f"{block.robot_id}/{hit_start}/ALERT", "sensor": block.robot_id, "level": "ALERT",
                 "start": hit_start, "end": hit_start + 60_000_000, "peak_score": 0.9, "readings": 6,
                 "updated": hit_start + 60_000_000},
                {"key": f"{block.robot_id}/{int(healthy)}/ALERT", "sensor": block.robot_id, "level": "ALERT",
                 "start": int(healthy), "end": None, "peak_score": 0.8, "readings": 2, "updated": int(healthy)},
            ]  # fmt: skip
            folder = lake / "alerts" / "stream" / f"date={END.date() - dt.timedelta(days=1)}"
            folder.mkdir(parents=True)
            pq.write_table(pa.Table.from_pylist(rows, ALERTS), folder / "part-0.parquet")
            done = run_cli("quality", "--lake", str(lake), "--api", server.base)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("stream_alerts: F1", done.stdout)
            scores = read(lake, "detector_scores").set_index("detector")
            stream = scores.loc["stream_alerts"]
            self.assertGreaterEqual(stream.tp, 1, "the alert on an injected block is a hit")
            self.assertGreaterEqual(stream.tp + stream.fp, 2, "each alert alarms its robot's buckets")
            self.assertEqual(len(stream.detector_version), 12)
            self.assertGreater(stream.positives, stream.tp, "blocks the job never alerted on are misses")
