"""The pipeline's notify step: hand-written marts fed to the alarms (SQLite in the lake), each
alarm change delivered once to a real webhook and SMTP server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import unittest

import pyarrow as pa

from etl.alarms import actions
from etl.alarms.db import open_db, ops_url
from etl.alarms.engine import Condition
from etl.alarms.sink import AlarmSink
from etl.lake import Lake
from etl.notify import notify
from etl.settings import EtlSettings
from tests.support import AlertReceivers

UTC = dt.UTC
NOW = dt.datetime(2024, 6, 10, 12, tzinfo=UTC)


def incident(robot: str, axis: str, start: dt.datetime, minutes: float = 20, level: str = "ERROR") -> dict:
    return {
        "robot_id": robot, "axis": axis, "start": start, "end": start + dt.timedelta(minutes=minutes),
        "flagged_readings": 40, "median_sigmas": 5.0, "peak_sigmas": 6.5, "level": level, "peak_level": level,
    }  # fmt: skip


def door_day(store: str, sensor: int, day: dt.date, warning: bool) -> dict:
    return {
        "store": store, "sensor_id": sensor, "local_date": day, "failure_rate_7d": 0.2,
        "failure_rate_30d": 0.08 if warning else 0.0, "failure_trend": 0.0, "replacement_warning": warning,
        "traffic_share": 0.3, "median_share": 0.3, "underused": False,
    }  # fmt: skip


class NotifyTest(unittest.TestCase):
    def setUp(self) -> None:
        self.root = tempfile.mkdtemp()
        self.lake = Lake(self.root)
        self.receivers = AlertReceivers().__enter__()
        self.settings = EtlSettings(
            lake=self.root, alert_webhook=self.receivers.webhook_url, smtp_host="127.0.0.1",
            smtp_port=self.receivers.smtp_port, smtp_to="maintenance@example.com",
        )  # fmt: skip
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

    def run_notify(self, now: dt.datetime = NOW) -> dict:
        return notify(self.lake, self.settings, now, log=self.lines.append)

    def sent(self) -> list[tuple[str, str, str]]:
        return [(a["detail"]["originator"], a["kind"], a["detail"]["change"])
                for post in self.receivers.posts for a in post["alerts"]]  # fmt: skip

    def test_the_marts_open_and_clear_alarms_and_each_change_goes_to_every_channel_once(self) -> None:
        self.write_marts(
            [
                incident("robot-1", "axis3", NOW - dt.timedelta(hours=3)),  # over: opened and cleared
                incident("robot-2", "axis5", NOW - dt.timedelta(days=5)),  # before the first feed's window
            ],
            [door_day("Paris", 2, dt.date(2024, 6, 9), False), door_day("Paris", 2, dt.date(2024, 6, 10), True)],
        )
        result = self.run_notify()
        self.assertEqual(result["alerts"], 3)
        self.assertEqual(result["channels"], ["webhook", "smtp"])
        self.assertEqual(self.sent(), [("Paris/2", "door_replacement", "opened"),
                                       ("robot-1/axis3", "robot_incident", "opened"),
                                       ("robot-1/axis3", "robot_incident", "cleared")])  # fmt: skip
        self.assertIn("[CRITICAL] alarm #2 robot-1/axis3 robot_incident opened CRITICAL (first seen 2024-06-10 09:00Z",
                      self.lines[1])  # fmt: skip
        [mail] = self.receivers.mails
        self.assertIn("Subject: Sensor pipeline: 3 alarm changes", mail)
        self.assertIn("To: maintenance@example.com", mail)

        again = self.run_notify()  # a re-run of the same hour
        self.assertEqual((again["alerts"], again["conditions"]), (0, 0))
        self.assertEqual((len(self.receivers.posts), len(self.receivers.mails)), (1, 1), "nothing sent twice")

    def test_an_incident_growing_over_hourly_runs_is_one_alarm_and_two_notifications(self) -> None:
        start = NOW - dt.timedelta(minutes=40)
        for hour, minutes in [(0, 38), (1, 99), (2, 99), (3, 99)]:  # it grows to its end 1 h 39 min in
            self.write_marts([incident("robot-1", "axis3", start, minutes)], [])
            self.run_notify(NOW + dt.timedelta(hours=hour))
        self.assertEqual(self.sent(), [("robot-1/axis3", "robot_incident", "opened"),
                                       ("robot-1/axis3", "robot_incident", "cleared")])  # fmt: skip
        engine = open_db(ops_url("", self.root))
        [alarm] = actions.list_alarms(engine)
        engine.dispose()
        self.assertEqual((alarm["first_seen"], alarm["last_seen"]), (start, start + dt.timedelta(minutes=99)))

    def test_a_door_warning_back_within_3_days_is_the_same_alarm_later_a_new_one(self) -> None:
        flags = dict(zip(range(8, 16), (True, False, True, False, False, False, False, True), strict=True))
        for day in flags:  # a run at noon every day, the mart up to that day
            rows = [door_day("Paris", 2, dt.date(2024, 6, d), flags[d]) for d in flags if d <= day]
            self.write_marts([], rows)
            self.run_notify(dt.datetime(2024, 6, day, 12, tzinfo=UTC))
        self.assertEqual([c for _, _, c in self.sent()], ["opened", "cleared", "opened"])
        engine = open_db(ops_url("", self.root))
        first = actions.list_alarms(engine)[-1]
        events = [e["what"] for e in actions.history(engine, first["id"])]
        engine.dispose()
        self.assertEqual(events, ["opened", "retriggered", "cleared"])
        self.assertEqual(first["cleared_at"], dt.datetime(2024, 6, 14, 12, tzinfo=UTC), "3 days after day 11's noon")

    def test_a_failing_webhook_fails_the_step_and_the_change_is_sent_on_the_retry(self) -> None:
        self.write_marts([incident("robot-3", "axis2", NOW - dt.timedelta(minutes=30), minutes=28)], [])
        self.receivers.webhook_status = 503
        with self.assertRaisesRegex(RuntimeError, "alert webhook .* answered 503"):
            self.run_notify()
        self.receivers.webhook_status = 200
        self.assertEqual(self.run_notify()["alerts"], 1, "not marked as sent before it was")
        self.assertEqual(self.sent(), [("robot-3/axis2", "robot_incident", "opened")])

    def test_without_channels_changes_are_logged_only(self) -> None:
        self.settings = EtlSettings(lake=self.root)
        self.write_marts([incident("robot-4", "axis8", NOW - dt.timedelta(minutes=30), minutes=28)], [])
        self.assertEqual(self.run_notify()["channels"], [])
        self.assertEqual(len(self.lines), 1)
        self.assertEqual((self.receivers.posts, self.receivers.mails), ([], []))

    def test_a_lake_without_marts_has_nothing_to_say(self) -> None:
        self.assertEqual(self.run_notify()["alerts"], 0)


class AlarmSinkTest(unittest.TestCase):
    """The stream job's way in: its own condition type, the same alarms and channels."""

    def test_a_stream_condition_opens_and_clears_an_alarm_with_one_notification_each(self) -> None:
        with tempfile.TemporaryDirectory() as root, AlertReceivers() as receivers:
            settings = EtlSettings(lake=root, alert_webhook=receivers.webhook_url)
            cleared = 0
            with AlarmSink(settings, log=lambda line: None) as sink:
                for minute in range(0, 50, 10):  # on for 30 minutes, then off
                    at = NOW + dt.timedelta(minutes=minute)
                    # an ERROR of the stream job (CRITICAL: its rule sends those; ALERTs, MAJOR, are recorded)
                    result = sink.report([Condition("robot-1/axis2", "stream_anomaly", "CRITICAL", at, minute < 30)],
                                         now=at)  # fmt: skip
                    cleared += result["changes"].get("cleared", 0)
                result = sink.report([], now=NOW + dt.timedelta(hours=2))  # the rule clears after 10 minutes
                cleared += result["changes"].get("cleared", 0)
            self.assertEqual(cleared, 1)
            changes = [a["detail"]["change"] for post in receivers.posts for a in post["alerts"]]
            self.assertEqual(changes, ["opened", "cleared"])


if __name__ == "__main__":
    unittest.main()
