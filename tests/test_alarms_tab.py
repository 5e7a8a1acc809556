"""The dashboard's alarms tab in Streamlit's AppTest, on a lake's SQLite operational database:
filters, acknowledge and silence buttons that write to it, and the snapshot without alarms."""

from __future__ import annotations

import datetime as dt
import tempfile
import unittest

from streamlit.testing.v1 import AppTest

from etl.alarms import actions
from etl.alarms.db import open_db, ops_url
from etl.alarms.engine import Condition, apply
from etl.alarms.rules import Rules

T0 = dt.datetime(2024, 6, 10, 8, tzinfo=dt.UTC)
SCRIPT = """
from dashboard.alarms_tab import alarms_tab
from dashboard.config import DashboardSettings
from dashboard.source import Listing

alarms_tab(Listing(root={root!r}, snapshot={snapshot}, marts={{}}, raw_robots=(), version="1"),
           DashboardSettings(lake=None, snapshot="unused", refresh_seconds=30))
"""


def tab(root: str, snapshot: bool = False) -> AppTest:
    at = AppTest.from_string(SCRIPT.format(root=root, snapshot=snapshot), default_timeout=60)
    return at.run()


class AlarmsTabTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.engine = open_db(ops_url("", self.tmp.name))
        self.addCleanup(self.engine.dispose)
        reports = [
            Condition("robot-1/axis3", "robot_incident", "CRITICAL", T0, True),
            Condition("robot-1/axis3", "robot_incident", "CRITICAL", T0 + dt.timedelta(minutes=2), True),
            Condition("Paris/2", "door_replacement", "MAJOR", T0, True),
            Condition("Roma/0", "door_underused", "WARNING", T0, True),
        ]
        apply(self.engine, reports, Rules(), T0 + dt.timedelta(minutes=2))

    def assert_clean(self, at: AppTest) -> None:
        self.assertEqual([e.value for e in at.exception], [])
        self.assertEqual([e.value for e in at.error], [])

    def test_filters_acknowledge_and_silence(self) -> None:
        at = tab(self.tmp.name)
        self.assert_clean(at)
        self.assertEqual(len(at.dataframe[0].value), 3)
        at.multiselect(key="alarms_severity").set_value(["CRITICAL", "MAJOR"]).run()
        self.assertEqual(sorted(at.dataframe[0].value["originator"]), ["Paris/2", "robot-1/axis3"])
        at.text_input(key="alarms_store").set_value("Paris").run()
        self.assertEqual(list(at.dataframe[0].value["originator"]), ["Paris/2"])

        at.text_input(key="alarms_ack_by").set_value("ana")
        at.button(key="alarms_ack").click().run()
        self.assert_clean(at)
        [paris] = actions.list_alarms(self.engine, actions.AlarmFilter(store="Paris"))
        self.assertEqual((paris["acknowledged_by"], paris["status"]), ("ana", "active, acknowledged"))

        at.selectbox(key="alarms_sil_originator").set_value("Paris/2")
        at.text_input(key="alarms_sil_reason").set_value("door being replaced")
        at.text_input(key="alarms_sil_by").set_value("bo")
        at.button(key="alarms_silence").click().run()
        self.assert_clean(at)
        [silence] = actions.list_silences(self.engine)
        self.assertEqual((silence["originator"], silence["type"], silence["created_by"]), ("Paris/2", None, "bo"))
        history = at.dataframe[-1].value
        self.assertEqual(list(history["what"]), ["opened", "acknowledged"])

    def test_a_silence_without_a_reason_is_refused_with_a_message(self) -> None:
        at = tab(self.tmp.name)
        at.selectbox(key="alarms_sil_type").set_value("robot_incident")
        at.button(key="alarms_silence").click().run()
        self.assertEqual([w.value for w in at.warning], ["a silence needs --reason and --by"])
        self.assertEqual(actions.list_silences(self.engine), [])

    def test_the_snapshot_has_no_alarms(self) -> None:
        at = tab(self.tmp.name, snapshot=True)
        self.assert_clean(at)
        self.assertIn("No operational database in the snapshot", at.info[0].value)


if __name__ == "__main__":
    unittest.main()
