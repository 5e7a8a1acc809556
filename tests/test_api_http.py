"""The API over HTTP: real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import unittest
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from contract.schemas import DOOR_READINGS, EVENTS, ROBOT_READINGS
from etl.wire import FORMATS, decode
from tests.support import ApiServer

DAY_SPAN = {"start": "2024-07-01T00:00:00Z", "end": "2024-07-04T00:00:00Z"}


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer())

    def table(self, path: str, schema: pa.Schema, fmt: str = "arrow", **params) -> pa.Table:
        r = self.server.get(path, format=fmt, **params)
        self.assertEqual(r.status_code, 200, r.text[:300])
        table = decode(r.content, fmt, schema)
        self.assertEqual(int(r.headers["X-Row-Count"]), table.num_rows)
        return table

    def test_every_format_carries_the_same_readings(self) -> None:
        cases = [
            ("/v1/readings/doors", DOOR_READINGS, DAY_SPAN),
            ("/v1/readings/robots", ROBOT_READINGS, {"start": "2024-07-01T00:00:00Z", "end": "2024-07-01T02:00:00Z"}),
            ("/v1/events", EVENTS, {"kind": "doors", "start": "2024-06-01T00:00:00Z", "end": "2024-08-01T00:00:00Z"}),
            ("/v1/events", EVENTS, {"kind": "robots", "start": "2024-06-01T00:00:00Z", "end": "2024-06-08T00:00:00Z"}),
        ]
        for path, schema, params in cases:
            reference = self.table(path, schema, "arrow", **params)
            self.assertGreater(reference.num_rows, 0, path)
            for fmt in FORMATS:
                with self.subTest(path=path, fmt=fmt):
                    self.assertTrue(self.table(path, schema, fmt, **params).equals(reference))

    def test_text_formats_write_iso_utc_timestamps(self) -> None:
        r = self.server.get("/v1/readings/doors", format="csv", store="Roma", sensor_id=1, **DAY_SPAN)
        self.assertEqual(r.headers["content-type"], "text/csv; charset=utf-8")
        self.assertIn('"2024-07-01T08:00:00Z"', r.text.splitlines()[9])
        first = self.server.get("/v1/readings/doors", store="Roma", sensor_id=1, **DAY_SPAN).json()[0]
        self.assertEqual(first, {"ts": "2024-07-01T00:00:00Z", "store": "Roma", "sensor_id": 1, "count": 0})

    def test_legacy_route_equals_bulk_in_local_time(self) -> None:
        bulk = self.table("/v1/readings/doors", DOOR_READINGS, start="2024-01-01T00:00:00Z", end="2025-01-01T00:00:00Z")
        frame = bulk.to_pandas()
        rng = np.random.default_rng(11)
        for i in rng.choice(len(frame), 80, replace=False):
            row = frame.iloc[i]
            tz = ZoneInfo(next(s["timezone"] for s in self.fleet()["stores"] if s["name"] == row.store))
            local = row.ts.tz_convert(tz)
            params = dict(store_name=row.store, year=local.year, month=local.month, day=local.day, hour=local.hour)
            if local.fold or local.tz_localize(None).tz_localize(tz, ambiguous=True) != local:
                continue  # the repeated autumn hour: the route answers its first occurrence
            single = self.server.get("/", sensor_id=int(row.sensor_id), **params)
            self.assertEqual(single.status_code, 200, single.text)
            expected = None if np.isnan(row["count"]) else int(row["count"])
            self.assertEqual(single.json(), expected, f"{params} sensor {row.sensor_id}")
            total = self.server.get("/", **params)
            doors = frame[(frame.store == row.store) & (frame.ts == row.ts)]
            if doors["count"].isna().any():
                self.assertIsNone(total.json())
                failed = doors[doors["count"].isna()].sensor_id.astype(str).tolist()
                self.assertEqual(total.headers["X-Failed-Doors"].split(","), failed)
            else:
                self.assertEqual(total.json(), int(doors["count"].sum()))

    def test_store_total_with_a_failed_door_is_null_and_says_which(self) -> None:
        events = self.table(
            "/v1/events", EVENTS, kind="doors", start="2024-07-01T00:00:00Z", end="2024-09-01T00:00:00Z"
        )
        failure = next(
            e for e in events.to_pylist() if e["type"] == "failure" and e["end"] - e["start"] > dt.timedelta(hours=3)
        )
        at = (failure["start"] + dt.timedelta(hours=1)).astimezone(ZoneInfo("UTC"))
        tz = ZoneInfo(next(s["timezone"] for s in self.fleet()["stores"] if s["name"] == failure["store"]))
        local = at.astimezone(tz)
        params = dict(store_name=failure["store"], year=local.year, month=local.month, day=local.day, hour=local.hour)
        total = self.server.get("/", **params)
        self.assertEqual(total.status_code, 200)
        self.assertIsNone(total.json())
        self.assertIn(str(failure["sensor_id"]), total.headers["X-Failed-Doors"].split(","))
        self.assertIsNone(self.server.get("/", sensor_id=failure["sensor_id"], **params).json())

    def fleet(self) -> dict:
        return self.server.get("/v1/fleet").json()

    def test_fleet(self) -> None:
        fleet = self.fleet()
        stores = {s["name"]: (s["doors"], s["opened"], s["timezone"]) for s in fleet["stores"]}
        self.assertEqual(stores["Paris"], (20, "2018-01-01", "Europe/Paris"))
        self.assertEqual(stores["Madrid"], (1, "2024-01-01", "Europe/Madrid"))
        self.assertEqual(sum(d for d, _, _ in stores.values()), 39)
        self.assertEqual(len(fleet["robots"]), 4)
        self.assertEqual([a["name"] for a in fleet["robots"][0]["axes"]], [f"axis{i}" for i in range(1, 9)])
        self.assertEqual(fleet["now"], "2025-01-01T00:00:00Z")

    def test_times_with_offsets_and_unaligned_starts(self) -> None:
        offset = self.table("/v1/readings/doors", DOOR_READINGS, start="2024-07-01T10:00:00+02:00",
                            end="2024-07-01T11:00:00+02:00")  # fmt: skip
        utc = self.table("/v1/readings/doors", DOOR_READINGS, start="2024-07-01T08:00:00Z", end="2024-07-01T09:00:00Z")
        self.assertTrue(offset.equals(utc))
        unaligned = self.table("/v1/readings/doors", DOOR_READINGS, start="2024-07-01T07:30:00Z",
                               end="2024-07-01T09:00:00Z")  # fmt: skip
        self.assertTrue(unaligned.equals(utc))

    def test_bad_input_is_a_4xx_naming_the_parameter(self) -> None:
        legacy = dict(store_name="Paris", year=2024, month=7, day=30, hour=12)
        span = dict(start="2024-07-01T00:00:00Z", end="2024-07-02T00:00:00Z")
        cases = [
            ("/", {**legacy, "hour": 25}, 422, "hour"),
            ("/", {**legacy, "hour": 24}, 422, "hour"),
            ("/", {**legacy, "month": 13}, 422, "month"),
            ("/", {**legacy, "month": 2, "day": 30}, 422, "day: 2024-02 has days 1-29"),
            ("/", {**legacy, "month": 2, "day": 30, "year": 2023}, 422, "day: 2023-02 has days 1-28"),
            ("/", {**legacy, "sensor_id": 20}, 422, "sensor_id: Paris has doors 0-19"),
            ("/", {**legacy, "sensor_id": -1}, 422, "sensor_id"),
            ("/", {**legacy, "store_name": "Lyon"}, 422, "store_name: unknown store 'Lyon'"),
            ("/", {**legacy, "year": "twenty"}, 422, "year"),
            ("/", {k: v for k, v in legacy.items() if k != "hour"}, 422, "hour: Field required"),
            ("/", {**legacy, "month": 3, "day": 31, "hour": 2}, 422, "hour: 02:00 does not exist"),
            ("/", {**legacy, "store_name": "Madrid", "year": 2023}, 404, "Madrid opened on 2024-01-01"),
            ("/", {**legacy, "year": 2026}, 404, "not available yet"),
            ("/v1/readings/doors", {**span, "store": "Lyon"}, 422, "store: unknown store"),
            ("/v1/readings/doors", {**span, "sensor_id": 3}, 422, "sensor_id: needs store"),
            ("/v1/readings/doors", {**span, "store": "Roma", "sensor_id": 4}, 422, "sensor_id: Roma has doors 0-3"),
            ("/v1/readings/doors", {**span, "start": "2024-02-30T00:00:00Z"}, 422, "start: '2024-02-30T00:00:00Z'"),
            ("/v1/readings/doors", {**span, "end": "yesterday"}, 422, "end: 'yesterday' is not an ISO 8601"),
            ("/v1/readings/doors", {**span, "end": span["start"]}, 422, "must be before end"),
            ("/v1/readings/doors", {"start": span["start"]}, 422, "end: Field required"),
            ("/v1/readings/doors", {**span, "format": "xml"}, 422, "format: Input should be 'json'"),
            ("/v1/readings/robots", {**span, "robot_id": "robot-9"}, 422, "robot_id: unknown robot 'robot-9'"),
            ("/v1/readings/robots", {"start": "2023-01-01", "end": "2025-01-01"}, 413, "over the cap"),
            ("/v1/events", {**span, "kind": "cats"}, 422, "kind: Input should be 'doors' or 'robots'"),
            ("/v1/events", {**span, "kind": "doors", "start": "soon"}, 422, "start: 'soon'"),
        ]
        for path, params, status, message in cases:
            with self.subTest(path=path, params=params):
                r = self.server.get(path, **params)
                self.assertEqual(r.status_code, status, r.text)
                self.assertIn(message, r.json()["detail"])

    def test_before_opening_gives_no_rows_in_bulk(self) -> None:
        t = self.table(
            "/v1/readings/doors", DOOR_READINGS, store="Madrid", start="2023-06-01", end="2023-12-31T23:00:00Z"
        )
        self.assertEqual(t.num_rows, 0)

    def test_openapi_documents_every_route_with_examples(self) -> None:
        spec = self.server.get("/openapi.json").json()
        for path, item in spec["paths"].items():
            op = item["get"]
            params = op.get("parameters", [])
            examples = [p for p in params if "examples" in p.get("schema", {}) or "examples" in p or "example" in p]
            content = op["responses"]["200"].get("content", {}).get("application/json", {})
            self.assertTrue(examples or "example" in content or path == "/health" or "$ref" in str(content), path)
            self.assertTrue(op.get("summary"), path)
        self.assertEqual(self.server.get("/docs").status_code, 200)


class ClockTest(unittest.TestCase):
    """A clock pinned mid-hour and a small row cap."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer(SIM_NOW="2025-01-01T10:30:00Z", API_MAX_ROWS="5000"))

    def test_the_unfinished_hour_is_not_served_and_the_end_is_clipped(self) -> None:
        r = self.server.get(
            "/v1/readings/doors", format="arrow", start="2025-01-01T00:00:00Z", end="2025-02-01T00:00:00Z"
        )
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers["X-Data-Until"], "2025-01-01T10:00:00Z")
        table = decode(r.content, "arrow", DOOR_READINGS)
        self.assertEqual(table.num_rows, 39 * 10)
        self.assertEqual(max(table.column("ts").to_pylist()).isoformat(), "2025-01-01T09:00:00+00:00")

    def test_robots_run_up_to_now(self) -> None:
        r = self.server.get("/v1/readings/robots", format="arrow", start="2025-01-01T10:00:00Z", end="2025-01-02")
        self.assertEqual(r.headers["X-Data-Until"], "2025-01-01T10:30:00Z")
        table = decode(r.content, "arrow", ROBOT_READINGS)
        self.assertEqual(table.num_rows, 4 * 180)
        self.assertEqual(max(table.column("ts").to_pylist()).isoformat(), "2025-01-01T10:29:50+00:00")

    def test_future_spans_are_empty_and_the_legacy_route_says_not_yet(self) -> None:
        r = self.server.get("/v1/readings/doors", format="json", start="2025-06-01", end="2025-06-02")
        self.assertEqual((r.status_code, r.json(), r.headers["X-Data-Until"]), (200, [], "2025-06-01T00:00:00Z"))
        london = dict(store_name="London", year=2025, month=1, day=1)
        self.assertEqual(self.server.get("/", hour=9, **london).status_code, 200)
        late = self.server.get("/", hour=10, **london)
        self.assertEqual(late.status_code, 404)
        self.assertIn("2025-01-01T10:00:00Z", late.json()["detail"])

    def test_the_row_cap_counts_rows_not_time(self) -> None:
        ok = self.server.get("/v1/readings/doors", store="Madrid", start="2024-06-01", end="2024-12-01", format="arrow")
        self.assertEqual(ok.status_code, 200)
        too_many = self.server.get("/v1/readings/doors", start="2024-06-01", end="2024-12-01")
        self.assertEqual(too_many.status_code, 413)
        self.assertIn("API_MAX_ROWS", too_many.json()["detail"])


class TwoProcessesTest(unittest.TestCase):
    def test_two_server_processes_answer_byte_for_byte_the_same(self) -> None:
        queries = [
            ("/v1/readings/doors", {"format": "json", **DAY_SPAN}),
            ("/v1/readings/doors", {"format": "parquet", **DAY_SPAN}),
            ("/v1/readings/robots", {"format": "arrow", "start": "2024-07-01", "end": "2024-07-01T06:00:00Z"}),
            ("/v1/events", {"kind": "doors", "start": "2024-01-01", "end": "2024-12-31"}),
            ("/v1/events", {"kind": "robots", "start": "2024-01-01", "end": "2024-03-01"}),
            ("/", {"store_name": "Paris", "year": 2024, "month": 7, "day": 30, "hour": 12, "sensor_id": 12}),
        ]
        with ApiServer() as first, ApiServer() as second:
            for path, params in queries:
                a, b = first.get(path, **params), second.get(path, **params)
                self.assertEqual(a.status_code, 200, a.text[:200])
                self.assertEqual(a.content, b.content, f"{path} {params}")


if __name__ == "__main__":
    unittest.main()
