"""The pipeline's own steps: the audit of a pulled span (its notifications: tests/test_alarms_notify.py)."""

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
from etl.pipeline import audit_step, pull_step
from etl.settings import EtlSettings
from tests.support import ApiServer

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


if __name__ == "__main__":
    unittest.main()
