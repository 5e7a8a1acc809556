"""The alarms engine on SQLite and on a real PostgreSQL server on 127.0.0.1: pending periods,
one alarm and two notifications per episode, acknowledgements, silences, retries, two writers."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import sqlalchemy as sa

from etl.alarms import actions, schema
from etl.alarms.db import open_db, ops_url
from etl.alarms.engine import Condition, apply
from etl.alarms.migrations import MIGRATIONS, migrate
from etl.alarms.outbox import deliver_outbox
from etl.alarms.rules import Rule, Rules, load_rules
from etl.settings import EtlSettings
from tests.pg_support import PostgresServer
from tests.support import AlertReceivers

T0 = dt.datetime(2024, 6, 10, 8, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parent.parent
RULES = Rules({"robot_incident": Rule(pending_seconds=300, clear_seconds=1800)})


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def report(minutes: float, active: bool = True, severity: str = "CRITICAL", originator: str = "robot-1/axis3",
           kind: str = "robot_incident") -> Condition:  # fmt: skip
    return Condition(originator, kind, severity, at(minutes), active, {"minute": minutes})


def write_reports(url: str, rounds: int, keys: int, deliver: bool) -> None:
    """One writer of the two-process test: `rounds` reports of each key, each its own transaction;
    the DAG-like writer also sends the outbox every round."""
    engine = open_db(url)
    settings = EtlSettings(lake="unused")
    for i in range(rounds):
        conditions = [report(i / 60, originator=f"robot-{k}/axis1") for k in range(keys)]
        apply(engine, conditions, Rules({"robot_incident": Rule(pending_seconds=0)}), at(i / 60))
        if deliver:
            deliver_outbox(engine, settings, log=lambda line: None)
    engine.dispose()


class AlarmCases:
    """Run on both backends (the subclasses say which)."""

    def new_url(self) -> str:
        raise NotImplementedError

    def setUp(self) -> None:
        self.engine = open_db(self.new_url())
        self.receivers = AlertReceivers().__enter__()
        self.settings = EtlSettings(lake="unused", alert_webhook=self.receivers.webhook_url)
        self.lines: list[str] = []

    def tearDown(self) -> None:
        self.engine.dispose()
        self.receivers.__exit__(None, None, None)

    def run_apply(self, conditions: list[Condition], now_minutes: float) -> dict:
        result = apply(self.engine, conditions, RULES, at(now_minutes))
        deliver_outbox(self.engine, self.settings, log=self.lines.append)
        return result

    def sent(self) -> list[tuple[str, str, str]]:
        """(originator, change, severity) of every alert the webhook got."""
        return [(a["detail"]["originator"], a["detail"]["change"], a["level"])
                for post in self.receivers.posts for a in post["alerts"]]  # fmt: skip

    def test_the_migrated_schema_is_schema_py_and_migrating_again_does_nothing(self) -> None:
        inspector = sa.inspect(self.engine)
        self.assertEqual(set(inspector.get_table_names()), set(schema.metadata.tables))
        for name, table in schema.metadata.tables.items():
            self.assertEqual({c["name"] for c in inspector.get_columns(name)}, set(table.columns.keys()), name)
        self.assertEqual(migrate(self.engine), [])
        with self.engine.connect() as conn:
            versions = conn.execute(sa.select(schema.schema_version.c.version)).scalars().all()
        self.assertEqual(versions, [m.version for m in MIGRATIONS])

    def test_a_condition_flapping_inside_the_pending_period_opens_no_alarm(self) -> None:
        flapping = [report(m, active=m % 4 == 0) for m in range(0, 120, 2)]  # on 2 min, off 2 min, for 2 hours
        for hour in (0, 1):
            self.run_apply([c for c in flapping if hour * 60 <= (c.observed_at - T0).seconds / 60 < hour * 60 + 60],
                           hour * 60 + 60)  # fmt: skip
        self.assertEqual(actions.list_alarms(self.engine), [])
        self.assertEqual(self.receivers.posts, [])
        self.run_apply([report(m) for m in range(120, 130)], 130)  # 9 minutes on: past the 5-minute pending period
        [alarm] = actions.list_alarms(self.engine)
        self.assertEqual((alarm["first_seen"], alarm["status"]), (at(120), "active, unacknowledged"))

    def test_a_six_hour_robot_error_is_one_alarm_and_two_notifications(self) -> None:
        for hour in range(7):  # hourly runs, a report every 10 minutes while it lasts (6 hours)
            minutes = range(hour * 60, min(hour * 60 + 60, 360), 10)
            reports = [report(m) for m in minutes] + ([report(360, active=False)] if hour == 6 else [])
            self.run_apply(reports, hour * 60 + 60)
            self.run_apply(reports, hour * 60 + 60)  # a retried run changes nothing
        self.run_apply([], 7 * 60 + 60)
        [alarm] = actions.list_alarms(self.engine)
        self.assertEqual((alarm["first_seen"], alarm["last_seen"]), (at(0), at(350)))
        self.assertEqual(alarm["cleared_at"], at(360 + 30))
        self.assertEqual(
            self.sent(), [("robot-1/axis3", "opened", "CRITICAL"), ("robot-1/axis3", "cleared", "CRITICAL")]
        )
        self.assertEqual([e["what"] for e in actions.history(self.engine, alarm["id"])], ["opened", "cleared"])

    def test_an_acknowledged_alarm_that_retriggers_is_not_renotified_until_it_escalates(self) -> None:
        self.run_apply([report(0, severity="MINOR"), report(10, severity="MINOR")], 10)
        [alarm] = actions.list_alarms(self.engine)
        acked = actions.acknowledge(self.engine, alarm["id"], by="ana")
        self.assertEqual(acked["status"], "active, acknowledged")
        self.run_apply([report(15, active=False, severity="MINOR"), report(25, severity="MINOR")], 25)  # back
        self.run_apply([report(m, severity="MAJOR" if m < 40 else "MINOR") for m in (30, 35, 40)], 40)
        self.assertEqual(self.sent(), [("robot-1/axis3", "opened", "MINOR"), ("robot-1/axis3", "escalated", "MAJOR")])
        [alarm] = actions.list_alarms(self.engine)
        self.assertEqual((alarm["severity"], alarm["count"], alarm["status"]), ("MAJOR", 5, "active, unacknowledged"))
        events = [(e["what"], e["who"]) for e in actions.history(self.engine, alarm["id"])]
        self.assertEqual(events, [("opened", "engine"), ("acknowledged", "ana"), ("retriggered", "engine"),
                                  ("escalated", "engine")])  # fmt: skip

    def test_a_silence_suppresses_notifications_until_it_ends_and_the_alarm_is_recorded(self) -> None:
        silence = actions.silence(self.engine, None, "robot_incident", at(60), "axis 3 re-greased", "ana", now=at(0))
        self.run_apply([report(m) for m in range(0, 30, 10)] + [report(30, active=False)], 30)
        self.run_apply([], 61)  # cleared at minute 60: the silence ended
        self.run_apply([report(m, originator="robot-2/axis1") for m in (20, 40)], 61)  # opened inside it too
        self.assertEqual(self.sent(), [("robot-1/axis3", "cleared", "CRITICAL")], "the opening was silenced")
        first = actions.list_alarms(self.engine, actions.AlarmFilter(robot="robot-1"))[0]
        [opened, cleared] = actions.history(self.engine, first["id"])
        self.assertEqual((opened["notification"], cleared["notification"]), ("silenced", "sent"))
        self.assertIn(f"silence #{silence} by ana: axis 3 re-greased", opened["notification_note"])
        self.run_apply([report(m, originator="robot-3/axis1") for m in (70, 80)], 80)  # after the end: sent
        self.assertEqual(self.sent()[1:], [("robot-3/axis1", "opened", "CRITICAL")])
        self.assertEqual(len(actions.list_alarms(self.engine)), 3, "all recorded")

    def test_a_failed_delivery_is_retried_and_sends_only_what_was_not_sent(self) -> None:
        self.run_apply([report(0), report(10)], 10)
        self.receivers.webhook_status = 503
        apply(
            self.engine, [report(0, originator="robot-2/axis1"), report(10, originator="robot-2/axis1")], RULES, at(10)
        )
        with self.assertRaisesRegex(RuntimeError, "answered 503"):
            deliver_outbox(self.engine, self.settings, log=self.lines.append)
        self.receivers.webhook_status = 200
        self.assertEqual(deliver_outbox(self.engine, self.settings, log=self.lines.append)["alerts"], 1)
        self.assertEqual(deliver_outbox(self.engine, self.settings, log=self.lines.append)["alerts"], 0)
        self.assertEqual(
            self.sent(), [("robot-1/axis3", "opened", "CRITICAL"), ("robot-2/axis1", "opened", "CRITICAL")]
        )

    def test_two_writers_in_two_processes_lose_no_update(self) -> None:
        url, rounds, keys = self.engine.url.render_as_string(hide_password=False), 25, 8
        code = "import sys; from tests.test_alarms import write_reports as w; w(sys.argv[1], int(sys.argv[2]), " \
               "int(sys.argv[3]), sys.argv[4] == 'dag')"  # fmt: skip
        writers = [subprocess.Popen([sys.executable, "-c", code, url, str(rounds), str(keys), role], cwd=REPO,
                                    stderr=subprocess.PIPE, text=True) for role in ("dag", "stream")]  # fmt: skip
        for writer in writers:
            _, err = writer.communicate(timeout=300)
            self.assertEqual(writer.returncode, 0, err)
        alarms = actions.list_alarms(self.engine)
        self.assertEqual(len(alarms), keys, "one alarm per originator and type")
        self.assertEqual({a["count"] for a in alarms}, {2 * rounds}, "every report of both writers counted")
        with self.engine.connect() as conn:
            outbox = conn.execute(sa.select(schema.outbox.c.change, schema.outbox.c.status)).all()
        self.assertEqual(sorted(outbox), [("opened", "sent")] * keys, "each opening once, sent once")

    def test_list_filters_and_bad_input(self) -> None:
        self.run_apply([report(0, severity="MAJOR"), report(10, severity="MAJOR")], 10)
        self.run_apply([report(0, originator="Paris/2", kind="door_failure"),
                        report(200, originator="Paris/2", kind="door_failure")], 200)  # fmt: skip
        f = actions.AlarmFilter
        self.assertEqual([a["type"] for a in actions.list_alarms(self.engine, f(store="Paris"))], ["door_failure"])
        self.assertEqual(
            [a["type"] for a in actions.list_alarms(self.engine, f(severity=("MAJOR",)))], ["robot_incident"]
        )
        self.assertEqual(len(actions.list_alarms(self.engine, f(status=("active", "unacknowledged")))), 2)
        self.assertEqual(actions.list_alarms(self.engine, f(type=("door_anomaly",))), [])
        with self.assertRaisesRegex(ValueError, "--status 'open' is not one of"):
            f(status=("open",))
        with self.assertRaisesRegex(ValueError, "no alarm #999"):
            actions.acknowledge(self.engine, 999, by="ana")
        with self.assertRaisesRegex(ValueError, "must be a time with a zone, in the future"):
            actions.silence(self.engine, "Paris/2", None, at(0), "r", "ana", now=at(10))
        with self.assertRaisesRegex(ValueError, "severity 'ERROR' is not one of"):
            report(0, severity="ERROR")
        with self.assertRaisesRegex(ValueError, "robot-1/axis3 robot_incident: details are not JSON"):
            Condition("robot-1/axis3", "robot_incident", "MAJOR", T0, True, {"at": T0})


class SqliteAlarmsTest(AlarmCases, unittest.TestCase):
    def setUp(self) -> None:
        self.root = tempfile.mkdtemp()
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        shutil.rmtree(self.root)

    def new_url(self) -> str:
        return ops_url("", self.root)

    def test_the_default_database_is_in_the_lake_folder(self) -> None:
        self.assertTrue(os.path.exists(os.path.join(self.root, "_ops", "ops.sqlite")))
        with self.assertRaisesRegex(ValueError, "ETL_OPS_DB is not set and the lake s3://b/lake is not a local"):
            ops_url("", "s3://b/lake")
        with self.assertRaisesRegex(ValueError, "ETL_OPS_DB='nonsense' is not a database URL"):
            open_db("nonsense")


class PostgresAlarmsTest(AlarmCases, unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = PostgresServer().__enter__()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.__exit__(None, None, None)

    def new_url(self) -> str:
        return self.server.database()


class RulesFileTest(unittest.TestCase):
    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp())

    def tearDown(self) -> None:
        shutil.rmtree(self.root)

    def test_a_toml_file_overrides_the_defaults_per_type(self) -> None:
        path = self.root / "rules.toml"
        path.write_text('[robot_incident]\npending_seconds = 120\n[pump_vibration]\nnotify_min_severity = "MAJOR"\n')
        rules = load_rules(str(path))
        self.assertEqual((rules["robot_incident"].pending_seconds, rules["robot_incident"].clear_seconds), (120, 1800))
        self.assertEqual(rules["pump_vibration"].notify_min_severity, "MAJOR")
        self.assertEqual(rules["anything"], Rule())

    def test_the_dag_reads_a_relative_rules_file_from_the_repository(self) -> None:
        from etl.pipeline import resolve_paths

        self.assertEqual(resolve_paths(EtlSettings(alarm_rules="ops/rules.toml"), REPO).alarm_rules,
                         str(REPO / "ops" / "rules.toml"))  # fmt: skip
        self.assertEqual(resolve_paths(EtlSettings(), REPO).alarm_rules, "", "no file: the defaults")

    def test_a_bad_rules_file_is_named(self) -> None:
        for text, message in [
            ('{"robot_incident": {"pending": 1}}', "unknown setting"),
            ('{"robot_incident": {"clear_seconds": -1}}', "clear_seconds = -1 must be"),
            ("{", "rules.json"),
        ]:
            (self.root / "rules.json").write_text(text)
            with self.assertRaisesRegex(ValueError, message):
                load_rules(str(self.root / "rules.json"))


if __name__ == "__main__":
    unittest.main()
