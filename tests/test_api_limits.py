"""Bounds (issue 16): a time window on every time parameter, row caps, stream caps, short messages."""

from __future__ import annotations

import unittest

from api.settings import Settings
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


if __name__ == "__main__":
    unittest.main()
