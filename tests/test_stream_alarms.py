"""The stream job's alerts as alarms (`python -m etl stream --alarms`): one alarm per sensor and type,
ERROR alerts notified once, through the operational database the DAG's notify also writes."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from etl.alarms.actions import list_alarms
from etl.alarms.db import open_db, ops_url
from etl.settings import EtlSettings
from etl.stream.sinks import LakeSinkPartition, SinkConfig
from tests.support import AlertReceivers

MINUTE_US = 60_000_000
T0 = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z


def alert(sensor: str, level: str, start: int, end: int | None, updated: int) -> tuple[str, dict]:
    row = {"key": f"{sensor}/{start}/{level}", "sensor": sensor, "level": level, "start": start, "end": end,
           "peak_score": 0.9, "readings": 3, "updated": updated}  # fmt: skip
    return "alert", row


class StreamAlarmsTest(unittest.TestCase):
    def test_stream_alerts_open_and_clear_one_alarm_and_notify_an_error_once(self) -> None:
        with tempfile.TemporaryDirectory() as lake, AlertReceivers() as receivers:
            settings = EtlSettings(lake=lake, alert_webhook=receivers.webhook_url)
            config = SinkConfig(lake, parts=1, echo=False, flush_seconds=0.0, alarms=settings)
            sink = LakeSinkPartition("0", config, None)
            # an ERROR episode of robot-2: opened, still open a minute later, then over
            sink.write_batch([alert("robot-2", "ALERT", T0, None, T0), alert("robot-2", "ERROR", T0, None, T0)])
            sink.write_batch([alert("robot-2", "ERROR", T0, None, T0 + MINUTE_US)])
            sink.write_batch([alert("robot-2", "ALERT", T0, T0 + 2 * MINUTE_US, T0 + 2 * MINUTE_US),
                              alert("robot-2", "ERROR", T0, T0 + 2 * MINUTE_US, T0 + 2 * MINUTE_US)])  # fmt: skip
            # the same batch again (a restart replays what followed its last snapshot): nothing new
            sink.write_batch([alert("robot-2", "ERROR", T0, T0 + 2 * MINUTE_US, T0 + 2 * MINUTE_US)])
            # an hour later the job reports on another sensor: robot-2's clear period (10 min) has passed
            sink.write_batch([alert("robot-3", "ALERT", T0 + 60 * MINUTE_US, None, T0 + 60 * MINUTE_US)])
            sink.close()
            alarms = list_alarms(open_db(ops_url("", lake)))
            robot2 = [a for a in alarms if a["originator"] == "robot-2"]
            self.assertEqual(len(robot2), 1, "one alarm per sensor and type, however many alert rows")
            self.assertEqual((robot2[0]["type"], robot2[0]["severity"]), ("stream_anomaly", "CRITICAL"))
            self.assertIn("cleared", robot2[0]["status"])
            sent = [a for post in receivers.posts for a in post["alerts"]]
            subjects = [a["subject"] for a in sent if "robot-2" in a["subject"]]
            self.assertEqual(len(subjects), 2, f"opened and cleared, each once: {subjects}")
            self.assertFalse(any("robot-3" in a["subject"] for a in sent), "an ALERT is recorded, not sent")
            self.assertEqual(sink.counts["alarm_failures"], 0)
            self.assertTrue(Path(lake, "_ops", "ops.sqlite").exists())


if __name__ == "__main__":
    unittest.main()
