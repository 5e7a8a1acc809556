"""Bounds (issue 16): a time window on every time parameter, row caps, stream caps, short messages."""

from __future__ import annotations

import datetime as dt
import threading
import time
import unittest

import psutil
import pyarrow as pa
import requests

from api.app import create_app
from api.settings import Clock, Settings
from tests.api_support import InProcessServer
from tests.support import ApiServer

LEGACY = dict(store_name="Paris", year=2024, month=7, day=30, hour=12)
SPAN = dict(start="2024-07-01T00:00:00Z", end="2024-07-02T00:00:00Z")
WINDOW = "outside the data window 1970-01-01T00:00:00Z (API_MIN_TIME) to 2035-01-09T00:00:00Z"


class TimeWindowTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer())  # SIM_NOW 2025-01-01: the window ends 3,660 days later

    def test_extreme_dates_and_offsets_are_a_422_with_a_message(self) -> None:
        extremes = [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59-14:00",
            "1969-12-31T23:59:59.999999Z",
            "2035-01-09T00:00:00.000001Z",
        ]
        routes = [("/v1/readings/doors", {}), ("/v1/readings/robots", {}), ("/v1/events", {"kind": "robots"})]
        for path, extra in routes:
            for value in extremes:
                for name in ("start", "end"):
                    params = {**SPAN, **extra, name: value}
                    if name == "start" and value >= "2025":
                        params["end"] = value  # keeps start < end out of the way: the window speaks first
                    with self.subTest(path=path, name=name, value=value):
                        r = self.server.get(path, **params)
                        self.assertEqual(r.status_code, 422, r.text)
                        self.assertIn(f"{name}: {value!r} is {WINDOW}", r.json()["detail"])

    def test_the_legacy_route_east_and_west_of_utc(self) -> None:
        # 0001-01-01 00:00 in Paris is before the first UTC instant there is: an OverflowError, a 500, before
        cases = [
            ({"store_name": "Paris", "year": 1, "month": 1, "day": 1, "hour": 0}, "0001-01-01 00:00 in Europe/Paris"),
            ({"store_name": "London", "year": 1, "month": 1, "day": 1, "hour": 0}, "0001-01-01 00:00 in Europe/London"),
            ({"store_name": "Roma", "year": 9999, "month": 12, "day": 31, "hour": 23}, "9999-12-31 23:00"),
            ({"store_name": "Berlin", "year": 1969, "month": 12, "day": 31, "hour": 23}, "1969-12-31 23:00"),
        ]
        for params, message in cases:
            with self.subTest(params=params):
                r = self.server.get("/", **params)
                self.assertEqual(r.status_code, 422, r.text)
                self.assertIn(f"year/month/day/hour: {message}", r.json()["detail"])
                self.assertIn("outside the data window", r.json()["detail"])
        self.assertEqual(self.server.get("/", **LEGACY).status_code, 200)

    def test_the_edges_of_the_window_are_inside(self) -> None:
        r = self.server.get(
            "/v1/readings/doors", start="1970-01-01T00:00:00Z", end="2035-01-09T00:00:00Z", store="Madrid"
        )
        self.assertEqual(r.status_code, 200, r.text[:300])

    def test_a_message_never_echoes_a_huge_parameter_whole(self) -> None:
        huge = "x" * 5000
        cases = [
            ("/v1/readings/doors", {**SPAN, "start": huge}),
            ("/v1/readings/doors", {**SPAN, "store": huge}),
            ("/v1/readings/robots", {**SPAN, "robot_id": huge}),
            ("/", {**LEGACY, "store_name": huge}),
            ("/", {**LEGACY, "year": huge}),
            ("/v1/events", {**SPAN, "kind": huge}),
        ]
        for path, params in cases:
            with self.subTest(path=path, param=next(k for k, v in params.items() if v is huge)):
                r = self.server.get(path, **params)
                self.assertEqual(r.status_code, 422)
                detail = r.json()["detail"]
                self.assertLess(len(r.content), 1000, detail)
                self.assertNotIn("x" * 100, detail)


class WindowSettingsTest(unittest.TestCase):
    def test_api_min_time_and_max_ahead_are_settings(self) -> None:
        with ApiServer(API_MIN_TIME="2020-01-01T00:00:00Z", API_MAX_AHEAD_DAYS="1") as server:
            early = server.get("/v1/readings/doors", start="2019-12-31T23:00:00Z", end="2020-01-02")
            self.assertEqual(early.status_code, 422)
            self.assertIn("2020-01-01T00:00:00Z (API_MIN_TIME) to 2025-01-02T00:00:00Z", early.json()["detail"])
            self.assertEqual(server.get("/v1/readings/doors", start="2024-12-31", end="2025-01-02").status_code, 200)
            self.assertEqual(server.get("/v1/readings/doors", start="2024-12-31", end="2025-01-03").status_code, 422)

    def test_bad_window_settings_name_the_variable(self) -> None:
        for env, message in [
            ({"API_MIN_TIME": "then"}, "API_MIN_TIME='then' is not an ISO 8601 time"),
            ({"API_MIN_TIME": "0001-01-01"}, "API_MIN_TIME='0001-01-01' is outside 1900-2200"),
            ({"API_MAX_AHEAD_DAYS": "-1"}, "API_MAX_AHEAD_DAYS='-1' must be a positive float"),
        ]:
            with self.subTest(env=env), self.assertRaisesRegex(ValueError, message):
                Settings.from_env(env)


HALF_YEAR_OF_ROBOTS = dict(start="2024-01-01", end="2024-07-01", format="csv")  # 6.3 million rows, ~700 MB of csv


def open_stream(base: str, session: requests.Session, **params) -> requests.Response:
    """A bulk answer whose first 1 MiB has been read, the rest still streaming."""
    response = session.get(base + "/v1/readings/robots", params=params, stream=True, timeout=60)
    if response.status_code == 200:
        # kept on the response: a closed iterator would close the connection (urllib3 does)
        response.pieces = response.iter_content(1 << 16)
        for _ in range(16):
            next(response.pieces)
    return response


def producers() -> int:
    return sum(t.name == "chunk-producer" for t in threading.enumerate())


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class RowCapTest(unittest.TestCase):
    def test_robot_events_have_the_row_cap_too(self) -> None:
        with ApiServer(API_MAX_ROWS="100") as server:
            r = server.get("/v1/events", kind="robots", start="2024-01-01", end="2025-01-01")
            self.assertEqual(r.status_code, 413, r.text[:300])
            self.assertIn("over the cap of 100 (API_MAX_ROWS)", r.json()["detail"])
            self.assertEqual(
                server.get("/v1/events", kind="robots", start="2024-07-01", end="2024-07-03").status_code, 200
            )

    def test_the_widest_robot_event_span_costs_little_memory(self) -> None:
        # 0001-01-01..9999-12-31 took the server from 264 MiB to 2.5 GiB; the window now stops it at
        # 1970..2035, and hour slots before a robot's installation are no longer hashed at all.
        with ApiServer() as server:
            process = psutil.Process(server.process.pid)
            before = process.memory_info().rss
            r = server.get("/v1/events", kind="robots", start="1970-01-01T00:00:00Z", end="2035-01-09T00:00:00Z")
            self.assertEqual(r.status_code, 200)
            self.assertGreater(int(r.headers["X-Row-Count"]), 1000)
            self.assertLess(process.memory_info().rss - before, 100 << 20)


class StreamCapTest(unittest.TestCase):
    def test_beyond_api_max_streams_a_503_with_retry_after_until_a_slot_frees(self) -> None:
        with ApiServer(API_MAX_STREAMS="2") as server:
            held = [open_stream(server.base, server.session, **HALF_YEAR_OF_ROBOTS) for _ in range(2)]
            self.assertEqual([r.status_code for r in held], [200, 200])
            other = requests.Session()
            other.trust_env = False
            busy = other.get(server.base + "/v1/readings/doors", params=SPAN, timeout=30)
            self.assertEqual(busy.status_code, 503)
            self.assertEqual(busy.headers["Retry-After"], "2")
            self.assertIn("2 bulk answers are streaming already (API_MAX_STREAMS)", busy.json()["detail"])
            self.assertEqual(other.get(server.base + "/health", timeout=30).status_code, 200)  # not a bulk answer
            self.assertEqual(other.get(server.base + "/", params=LEGACY, timeout=30).status_code, 200)
            for r in held:
                r.close()  # the client goes away mid-stream: its slot comes back
            self.assertTrue(
                wait_for(lambda: other.get(server.base + "/v1/readings/doors", params=SPAN, timeout=30).ok),
                "no slot came back after the clients disconnected",
            )
            other.close()


class SendTimeoutTest(unittest.TestCase):
    def test_a_client_that_stops_reading_loses_its_answer_and_its_slot_comes_back(self) -> None:
        with ApiServer(API_MAX_STREAMS="1", API_SEND_TIMEOUT_SECONDS="1") as server:
            stalled = open_stream(server.base, server.session, **HALF_YEAR_OF_ROBOTS)  # then never read again
            self.assertEqual(stalled.status_code, 200)
            other = requests.Session()
            other.trust_env = False
            self.assertEqual(other.get(server.base + "/v1/readings/doors", params=SPAN, timeout=30).status_code, 503)
            # within a few seconds of the client's stall (socket buffers fill first) the answer is cut
            self.assertTrue(
                wait_for(lambda: other.get(server.base + "/v1/readings/doors", params=SPAN, timeout=30).ok, 30),
                "a stalled client kept its slot",
            )
            with self.assertRaises(requests.exceptions.ChunkedEncodingError):  # cut, never quietly short
                for _ in stalled.pieces:
                    pass
            other.close()


class AbortedDownloadTest(unittest.TestCase):
    def test_an_aborted_download_stops_its_producer_and_frees_its_memory(self) -> None:
        app = create_app(Settings(clock=Clock(anchor=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)), chunk_rows=65_536))
        streams = app.state.simulation.streams
        with InProcessServer(app) as server:
            baseline = pa.total_allocated_bytes()
            for _ in range(6):
                response = open_stream(server.base, server.session, **HALF_YEAR_OF_ROBOTS)
                self.assertEqual(response.status_code, 200)
                # streaming: its slot is held (Arrow's allocations at this instant depend on where the
                # producer is: chunks can be queued as bytes with no table alive, as CI once saw)
                self.assertEqual(streams.active, 1)
                response.close()
                self.assertTrue(wait_for(lambda: streams.active == 0 and producers() == 0), "a producer kept running")
            self.assertTrue(wait_for(lambda: pa.total_allocated_bytes() <= baseline), pa.total_allocated_bytes())

    def test_server_memory_stays_bounded_over_many_aborted_downloads(self) -> None:
        with ApiServer(API_MAX_STREAMS="4", API_CHUNK_ROWS="65536") as server:
            process = psutil.Process(server.process.pid)

            def abort_some(n: int) -> int:
                for _ in range(n):
                    response = open_stream(server.base, server.session, **HALF_YEAR_OF_ROBOTS)
                    self.assertIn(response.status_code, (200, 503))
                    response.close()
                time.sleep(1.0)  # the last producer winds down
                return process.memory_info().rss

            first = abort_some(5)
            second = abort_some(10)
            self.assertLess(first, 1 << 30)
            self.assertLess(second - first, 150 << 20, "memory grew with every aborted download")


if __name__ == "__main__":
    unittest.main()
