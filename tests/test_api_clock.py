"""Every route and format with the clock unpinned (the wall clock, with microseconds) and at a sub-second SIM_NOW.

An event still running at the clock ends there, so its `end` has a fraction: every format
must carry it exactly, and every body must decode to the X-Row-Count rows it announces.
"""

from __future__ import annotations

import datetime as dt
import json
import unittest
from zoneinfo import ZoneInfo

import pyarrow as pa

from api.encode import iso_strings
from contract.schemas import DOOR_READINGS, EVENTS, ROBOT_READINGS
from contract.times import parse_instant
from etl.wire import FORMATS, decode
from tests.support import ApiServer

SUB_SECOND_NOW = "2025-01-01T00:00:00.250Z"  # a robot drift is running at this instant


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class ClockCase:
    """The checks, run against one server (set by the subclasses)."""

    server: ApiServer

    def bulk_queries(self) -> list[tuple[str, pa.Schema, dict]]:
        health = self.server.get("/health").json()
        now, doors_until = parse_instant(health["now"]), parse_instant(health["doors_until"])
        end = iso(now + dt.timedelta(days=1))
        return [
            ("/v1/readings/doors", DOOR_READINGS, {"start": iso(doors_until - dt.timedelta(days=2)), "end": end}),
            ("/v1/readings/robots", ROBOT_READINGS, {"start": iso(now - dt.timedelta(hours=2)), "end": end}),
            ("/v1/events", EVENTS, {"kind": "doors", "start": iso(now - dt.timedelta(days=40)), "end": end}),
            ("/v1/events", EVENTS, {"kind": "robots", "start": iso(now - dt.timedelta(days=60)), "end": end}),
        ]

    def test_every_bulk_route_and_format_decodes_to_the_row_count(self) -> None:
        for path, schema, params in self.bulk_queries():
            for fmt in FORMATS:
                with self.subTest(path=path, params=params, fmt=fmt):
                    r = self.server.get(path, format=fmt, **params)
                    self.assertEqual(r.status_code, 200, r.text[:300])
                    table = decode(r.content, fmt, schema)
                    self.assertEqual(table.num_rows, int(r.headers["X-Row-Count"]))
                    self.assertGreater(table.num_rows, 0)
                    until = parse_instant(r.headers["X-Data-Until"])
                    if path == "/v1/events":
                        ongoing = table.filter(table["ongoing"])
                        # an event running at the clock ends exactly there, to the microsecond
                        self.assertTrue(all(end == until for end in ongoing["end"].to_pylist()))

    def test_single_reading_fleet_and_health(self) -> None:
        health = self.server.get("/health")
        self.assertEqual(health.status_code, 200)
        now = parse_instant(health.json()["now"])
        self.assertEqual(self.server.get("/v1/fleet").status_code, 200)
        last = parse_instant(health.json()["doors_until"]) - dt.timedelta(hours=1)
        local = last.astimezone(ZoneInfo("Europe/Paris"))
        q = dict(store_name="Paris", year=local.year, month=local.month, day=local.day, hour=local.hour)
        r = self.server.get("/", **q)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.json() is None or isinstance(r.json(), int))
        self.assertLess(now - last, dt.timedelta(hours=2))


class WallClockTest(ClockCase, unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer(SIM_NOW=""))

    def test_the_clock_runs_with_microseconds(self) -> None:
        now = parse_instant(self.server.get("/health").json()["now"])
        self.assertLess(abs(now - dt.datetime.now(dt.UTC)), dt.timedelta(seconds=30))

    def test_issue_11_robot_events_of_a_month_with_a_drift_at_the_clock(self) -> None:
        # The reported case: a 200 with X-Row-Count 80 and an empty body while a drift ran at the clock.
        params = {"kind": "robots", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                r = self.server.get("/v1/events", format=fmt, **params)
                self.assertEqual(r.status_code, 200)
                self.assertEqual(decode(r.content, fmt, EVENTS).num_rows, int(r.headers["X-Row-Count"]))


class SubSecondClockTest(ClockCase, unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer(SIM_NOW=SUB_SECOND_NOW))

    def test_the_clock_and_a_running_drift_keep_their_fraction_in_every_format(self) -> None:
        self.assertEqual(self.server.get("/health").json()["now"], "2025-01-01T00:00:00.250000Z")
        params = {"kind": "robots", "start": "2024-10-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}
        arrow = self.server.get("/v1/events", format="arrow", **params)
        self.assertEqual(arrow.headers["X-Data-Until"], "2025-01-01T00:00:00.250000Z")
        reference = decode(arrow.content, "arrow", EVENTS)
        ongoing = reference.filter(reference["ongoing"]).to_pylist()
        self.assertGreaterEqual(len(ongoing), 1)
        self.assertEqual(ongoing[0]["end"], dt.datetime(2025, 1, 1, 0, 0, 0, 250_000, tzinfo=dt.UTC))
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                r = self.server.get("/v1/events", format=fmt, **params)
                self.assertTrue(decode(r.content, fmt, EVENTS).equals(reference))
        csv = self.server.get("/v1/events", format="csv", **params).text
        self.assertIn('"2025-01-01T00:00:00.250000Z"', csv)
        self.assertIn('"2024-10-01T', csv)  # whole seconds keep the short form

    def test_robot_readings_stop_at_a_sample_time_not_at_the_fraction(self) -> None:
        r = self.server.get("/v1/readings/robots", format="arrow", start="2024-12-31T23:59:00Z", end="2025-01-02")
        self.assertEqual(r.headers["X-Data-Until"], "2025-01-01T00:00:10Z")
        table = decode(r.content, "arrow", ROBOT_READINGS)
        self.assertEqual(max(table["ts"].to_pylist()), dt.datetime(2025, 1, 1, tzinfo=dt.UTC))


class IsoStringsTest(unittest.TestCase):
    def test_whole_seconds_short_fractions_exact(self) -> None:
        values = [0, 1_250_000, -500_000, None, 1_719_820_800_123_456]
        col = pa.array(values, pa.timestamp("us", tz="UTC"))
        self.assertEqual(
            iso_strings(col).to_pylist(),
            ["1970-01-01T00:00:00Z", "1970-01-01T00:00:01.250000Z", "1969-12-31T23:59:59.500000Z", None,
             "2024-07-01T08:00:00.123456Z"],
        )  # fmt: skip

    def test_the_json_fallback_parses_both_forms(self) -> None:
        rows = [{"ts": "2024-07-01T08:00:00Z", "store": "Paris", "sensor_id": 1, "count": 3},
                {"ts": "2024-07-01T08:00:00.5Z", "store": "Paris", "sensor_id": 2, "count": None}]  # fmt: skip
        table = decode(json.dumps(rows).encode(), "json", DOOR_READINGS)  # one line: not the fast path
        self.assertEqual(table["ts"].to_pylist()[1], dt.datetime(2024, 7, 1, 8, 0, 0, 500_000, tzinfo=dt.UTC))


if __name__ == "__main__":
    unittest.main()
