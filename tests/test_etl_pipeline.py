"""The pipeline's own steps: the audit of a pulled span, and alerts sent once to every channel."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import unittest

import pyarrow as pa
import pyarrow.compute as pc

from etl.audit import AuditFailed, audit_span
from etl.datasets import DOORS, ROBOTS
from etl.lake import Lake, Partition, day_of
from etl.notify import notify
from etl.pipeline import audit_step, pull_step
from etl.settings import EtlSettings
from tests.support import AlertReceivers, ApiServer

UTC = dt.UTC
DAY_START = dt.datetime(2024, 12, 30, tzinfo=UTC)
DAY_END = DAY_START + dt.timedelta(days=1)


class AuditTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ApiServer().__enter__()
        cls.pulled = tempfile.mkdtemp()
        settings = EtlSettings(api_url=cls.server.base, lake=cls.pulled)
        cls.pulls = [pull_step(settings, kind, (DAY_START, DAY_END)) for kind in ("doors", "robots")]

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.__exit__(None, None, None)
        shutil.rmtree(cls.pulled)

    def setUp(self) -> None:
        self.root = tempfile.mkdtemp()
        shutil.copytree(self.pulled, self.root, dirs_exist_ok=True)
        self.lake = Lake(self.root)

    def tearDown(self) -> None:
        shutil.rmtree(self.root)

    def rewrite(self, data, edit) -> None:
        part = Partition(day_of(DAY_START))
        self.lake.write_table(self.lake.partition_file(data.kind, part), edit(self.lake.read_partition(data, part)))

    def test_a_complete_pull_passes_with_every_reading_counted(self) -> None:
        doors, robots = (audit_span(self.lake, d, DAY_START, DAY_END) for d in (DOORS, ROBOTS))
        self.assertTrue(doors.ok, doors.line())
        self.assertEqual((doors.rows, doors.expected), (39 * 24, 39 * 24))
        self.assertTrue(robots.ok, robots.line())
        self.assertEqual((robots.rows, robots.expected), (4 * 8640, 4 * 8640))
        self.assertEqual([a["ok"] for a in audit_step(EtlSettings(lake=self.root), self.pulls)], [True, True])

    def test_a_lost_reading_fails_the_audit_and_names_the_sensor(self) -> None:
        def drop_one(table: pa.Table) -> pa.Table:
            lost = pc.and_(pc.equal(table["store"], "Paris"), pc.equal(table["sensor_id"], 3))
            lost = pc.and_(lost, pc.equal(table["ts"], pa.scalar(DAY_START + dt.timedelta(hours=9), table["ts"].type)))
            return table.filter(pc.invert(lost))

        self.rewrite(DOORS, drop_one)
        audit = audit_span(self.lake, DOORS, DAY_START, DAY_END)
        self.assertFalse(audit.ok)
        self.assertEqual(audit.incomplete, ["Paris/3: 23 of 24"])
        with self.assertRaisesRegex(AuditFailed, r"audit doors .* FAILED, 935 of 936 readings.*Paris/3: 23 of 24"):
            audit_step(EtlSettings(lake=self.root), self.pulls)

    def test_a_doubled_reading_fails_the_audit(self) -> None:
        self.rewrite(ROBOTS, lambda table: pa.concat_tables([table, table.slice(100, 2)]))
        audit = audit_span(self.lake, ROBOTS, DAY_START, DAY_END)
        self.assertEqual((audit.ok, audit.duplicates), (False, 2))
        self.assertIn("2 duplicates", audit.line())

    def test_the_audit_covers_only_its_span(self) -> None:
        hour = audit_span(self.lake, DOORS, DAY_START + dt.timedelta(hours=5), DAY_START + dt.timedelta(hours=6))
        self.assertEqual((hour.ok, hour.rows), (True, 39))


def incident(robot: str, axis: str, start: dt.datetime, level: str = "ERROR") -> dict:
    return {
        "robot_id": robot, "axis": axis, "start": start, "end": start + dt.timedelta(minutes=20),
        "flagged_readings": 40, "median_sigmas": 5.0, "peak_sigmas": 6.5, "level": level, "peak_level": level,
    }  # fmt: skip


def door_day(store: str, sensor: int, day: dt.date, warning: bool) -> dict:
    return {
        "store": store, "sensor_id": sensor, "local_date": day, "failure_rate_7d": 0.2,
        "failure_rate_30d": 0.08 if warning else 0.0, "failure_trend": 0.0, "replacement_warning": warning,
        "traffic_share": 0.3, "median_share": 0.3, "underused": False,
    }  # fmt: skip


class NotifyTest(unittest.TestCase):
    """Alerts from hand-written marts, delivered to a real webhook and SMTP server on 127.0.0.1."""

    def setUp(self) -> None:
        self.root = tempfile.mkdtemp()
        self.lake = Lake(self.root)
        self.receivers = AlertReceivers().__enter__()
        self.settings = EtlSettings(
            lake=self.root, alert_webhook=self.receivers.webhook_url, smtp_host="127.0.0.1",
            smtp_port=self.receivers.smtp_port, smtp_to="maintenance@example.com",
        )  # fmt: skip
        self.now = dt.datetime(2024, 6, 10, 12, tzinfo=UTC)
        self.lines: list[str] = []

    def tearDown(self) -> None:
        self.receivers.__exit__(None, None, None)
        shutil.rmtree(self.root)

    def write_marts(self, incidents: list[dict], doors: list[dict]) -> None:
        """As the transform does: a partition per period with rows, none without."""
        for name, part, rows in [
            ("robot_incidents", "date=2024-06-10", incidents),
            ("door_health", "month=2024-06", doors),
        ]:
            path = self.lake.path("marts", name, part, "data.parquet")
            if rows:
                self.lake.write_table(path, pa.Table.from_pylist(rows))
            else:
                self.lake.delete(path)

    def run_notify(self) -> dict:
        return notify(self.lake, self.settings, self.now, log=self.lines.append)

    def test_new_errors_and_warnings_go_to_every_channel_once(self) -> None:
        today, yesterday = dt.date(2024, 6, 10), dt.date(2024, 6, 9)
        self.write_marts(
            [
                incident("robot-1", "axis3", self.now - dt.timedelta(hours=3)),
                incident("robot-2", "axis1", self.now - dt.timedelta(hours=2), level="ALERT"),  # not an ERROR
                incident("robot-2", "axis5", self.now - dt.timedelta(days=5)),  # outside the alert window
            ],
            [
                door_day("Paris", 2, yesterday, False), door_day("Paris", 2, today, True),
                door_day("Roma", 0, yesterday, True), door_day("Roma", 0, today, False),  # recovered
            ],
        )  # fmt: skip
        result = self.run_notify()
        self.assertEqual(result["alerts"], 2)
        self.assertEqual(result["channels"], ["webhook", "smtp"])
        self.assertEqual(len(self.lines), 2)
        self.assertIn("robot-1 axis3: ERROR incident from 2024-06-10T09:00:00Z", self.lines[0])
        self.assertIn("Paris door 2: replace the sensor, failed 8.0 % of hours", self.lines[1])
        [post] = self.receivers.posts
        self.assertEqual([a["kind"] for a in post["alerts"]], ["robot_error", "door_replacement"])
        [mail] = self.receivers.mails
        self.assertIn("Subject: Sensor pipeline: 2 new alerts", mail)
        self.assertIn("To: maintenance@example.com", mail)

        again = self.run_notify()  # a re-run of the same hour
        self.assertEqual(again["alerts"], 0)
        self.assertEqual((len(self.receivers.posts), len(self.receivers.mails)), (1, 1), "nothing sent twice")

    def test_a_door_that_recovers_and_fails_again_is_warned_again(self) -> None:
        days = [dt.date(2024, 6, d) for d in (8, 9, 10)]
        self.write_marts([], [door_day("Paris", 2, days[0], True)])
        self.assertEqual(self.run_notify()["alerts"], 1)
        self.write_marts([], [door_day("Paris", 2, days[0], True), door_day("Paris", 2, days[1], False)])
        self.assertEqual(self.run_notify()["alerts"], 0)
        self.write_marts([], [door_day("Paris", 2, days[1], False), door_day("Paris", 2, days[2], True)])
        self.assertEqual(self.run_notify()["alerts"], 1)

    def test_a_failing_webhook_fails_the_step_and_the_alert_is_sent_on_the_retry(self) -> None:
        self.write_marts([incident("robot-3", "axis2", self.now - dt.timedelta(hours=1))], [])
        self.receivers.webhook_status = 503
        with self.assertRaisesRegex(RuntimeError, "alert webhook .* answered 503"):
            self.run_notify()
        self.receivers.webhook_status = 200
        self.assertEqual(self.run_notify()["alerts"], 1, "not marked as sent before it was")
        self.assertEqual(len(self.receivers.posts), 1)

    def test_without_channels_alerts_are_logged_only(self) -> None:
        self.settings = EtlSettings(lake=self.root)
        self.write_marts([incident("robot-4", "axis8", self.now - dt.timedelta(hours=1))], [])
        self.assertEqual(self.run_notify()["channels"], [])
        self.assertEqual(len(self.lines), 1)
        self.assertEqual((self.receivers.posts, self.receivers.mails), ([], []))

    def test_a_lake_without_marts_has_nothing_to_say(self) -> None:
        self.assertEqual(self.run_notify()["alerts"], 0)


if __name__ == "__main__":
    unittest.main()
