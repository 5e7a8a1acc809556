"""The API's live streams and replays, against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import tempfile
import time
import unittest
from pathlib import Path

from tests.support import PINNED_NOW, ApiServer


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.iter_lines() if line]


def write_replays(folder: Path) -> None:
    """A PurpleAir-format snapshot, a SKAB-format CSV and a mapped CSV with a bad cell."""
    snapshot = {
        "data_time_stamp": 1712793665,
        "fields": ["sensor_index", "humidity", "pm1.0_cf_1"],
        "data": [[53, None, 1.5], [77, 40, 2.5], [81, 41, 900.0]],
    }
    (folder / "air.json").write_text(json.dumps(snapshot))
    rows = [f"2020-03-09 10:14:{s:02d};{0.02 + s / 1000};{1.3 + s / 100};0.0;0.0" for s in range(10)]
    (folder / "bench.csv").write_text("datetime;Accelerometer1RMS;Current;anomaly;changepoint\n" + "\n".join(rows))
    (folder / "plant.csv").write_text(
        "When,Who,Temp\n2025-01-01T00:00:00Z,a,1.5\n2025-01-01T00:00:02Z,b,oops\n2025-01-01T00:00:04Z,a,\nnever,a,3\n"
    )
    (folder / "plant.csv.map").write_text("When=ts,Who=sensor,Temp=temp")


class RobotStreamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.api = ApiServer(SIM_SPEED="300").__enter__()  # 30 robot samples per second

    @classmethod
    def tearDownClass(cls) -> None:
        cls.api.__exit__(None, None, None)

    def test_backlog_matches_the_bulk_route_and_ends_on_a_whole_instant(self) -> None:
        since = "2024-12-31T23:00:00Z"
        got = lines(self.api.get("/v1/stream/robots", since=since, limit=10))
        self.assertEqual(len(got), 12)  # 10 rounded up to 3 whole instants of 4 robots
        self.assertEqual(got[0]["ts"], "2024-12-31T23:00:10Z")  # since is exclusive
        bulk = lines(self.api.get("/v1/readings/robots", start="2024-12-31T23:00:10Z", end="2024-12-31T23:00:40Z",
                                  format="ndjson"))  # fmt: skip
        self.assertEqual(got, bulk)

    def test_live_lines_follow_the_clock_and_the_stream_ends_when_asked(self) -> None:
        began = time.monotonic()
        with self.api.session.get(self.api.base + "/v1/stream/robots", params={"max_seconds": 1.5}, stream=True,
                                  timeout=30) as response:  # fmt: skip
            self.assertEqual(response.headers["content-type"], "application/x-ndjson")
            got = lines(response)
        elapsed = time.monotonic() - began
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertLess(elapsed, 5)
        instants = sorted({r["ts"] for r in got})
        self.assertGreaterEqual(len(instants), 20)  # about 45 at 30 a second
        self.assertEqual([r["ts"] for r in got], sorted(r["ts"] for r in got))
        now = self.api.get("/health").json()["now"]
        self.assertLess(instants[-1], now)

    def test_a_consumer_that_reconnects_with_its_cursor_misses_nothing(self) -> None:
        since, seen = "2025-01-01T00:00:00Z", []
        for _ in range(4):  # four connections, each dropped after a few lines, mid-instant
            with self.api.session.get(self.api.base + "/v1/stream/robots", params={"since": since}, stream=True,
                                      timeout=30) as response:  # fmt: skip
                batch = []
                for line in response.iter_lines():
                    batch.append(json.loads(line))
                    if len(batch) == 23:
                        break
            complete = [r for r in batch if r["ts"] < batch[-1]["ts"]]  # the last instant may be partial
            seen += complete
            since = complete[-1]["ts"]
        bulk = lines(self.api.get("/v1/readings/robots", start="2025-01-01T00:00:01Z", end=seen[-1]["ts"] + "",
                                  format="ndjson"))  # fmt: skip
        last = [r for r in seen if r["ts"] == seen[-1]["ts"]]
        self.assertEqual(seen, bulk + last)
        self.assertEqual(len(seen), len({(r["ts"], r["robot_id"]) for r in seen}))

    def test_bad_parameters_are_named(self) -> None:
        for params, word in (({"since": "yesterday"}, "since"), ({"robot_id": "r9"}, "robot_id"),
                             ({"limit": 0}, "limit")):  # fmt: skip
            response = self.api.get("/v1/stream/robots", **params)
            self.assertEqual(response.status_code, 422, params)
            self.assertIn(word, response.json()["detail"])


class DoorStreamTest(unittest.TestCase):
    def test_only_complete_hours_are_sent(self) -> None:
        with ApiServer() as api:  # the clock stands at PINNED_NOW
            got = lines(api.get("/v1/stream/doors", since="2024-12-31T21:30:00Z", store="Paris", max_seconds=0.5))
        self.assertEqual({r["ts"] for r in got}, {"2024-12-31T22:00:00Z", "2024-12-31T23:00:00Z"})
        self.assertTrue(all(r["ts"] < PINNED_NOW for r in got))


class ReplayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        folder = Path(cls.tmp.name)
        write_replays(folder)
        cls.api = ApiServer(API_REPLAY_PATHS=f"{folder / 'air.json'}:{folder}").__enter__()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.api.__exit__(None, None, None)
        cls.tmp.cleanup()

    def test_the_listing_names_format_rows_columns_and_span(self) -> None:
        listing = {r["name"]: r for r in self.api.get("/v1/replays").json()}
        folder = Path(self.tmp.name).name
        self.assertEqual(sorted(listing), ["air", *(f"{folder}-{n}" for n in ("air", "bench", "plant"))])
        air = listing["air"]
        self.assertEqual((air["format"], air["rows"], air["columns"]), ("airquality", 3, ["humidity", "pm1.0_cf_1"]))
        self.assertEqual(air["start"], "2024-04-11T00:01:05Z")
        bench = next(r for n, r in listing.items() if n.endswith("-bench"))
        self.assertEqual((bench["format"], bench["rows"]), ("skab", 10))
        self.assertEqual(bench["columns"], ["Accelerometer1RMS", "Current"])  # labels are not served
        self.assertEqual((bench["start"], bench["end"]), ("2020-03-09T10:14:00Z", "2020-03-09T10:14:09Z"))
        plant = next(r for n, r in listing.items() if n.endswith("-plant"))
        self.assertEqual((plant["format"], plant["rows"], plant["skipped_rows"], plant["key"]), ("csv", 3, 1, "sensor"))

    def test_a_replay_is_paced_at_its_speed_and_resumes_from_a_cursor(self) -> None:
        name = next(r["name"] for r in self.api.get("/v1/replays").json() if r["name"].endswith("-bench"))
        began = time.monotonic()
        got = lines(self.api.get(f"/v1/stream/replay/{name}", speed=20))  # 9 s of data in 0.45 s
        elapsed = time.monotonic() - began
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 3)
        self.assertEqual([r["ts"][-3:] for r in got], [f"{s:02d}Z" for s in range(10)])
        self.assertEqual(got[3], {"ts": "2020-03-09T10:14:03Z", "sensor": name, "Accelerometer1RMS": 0.023,
                                  "Current": 1.33})  # fmt: skip
        rest = lines(self.api.get(f"/v1/stream/replay/{name}", speed=1000, since=got[5]["ts"]))
        self.assertEqual(rest, got[6:])
        limited = lines(self.api.get(f"/v1/stream/replay/{name}", speed=1000, limit=4))
        self.assertEqual(limited, got[:4])

    def test_cells_are_served_as_recorded(self) -> None:
        name = next(r["name"] for r in self.api.get("/v1/replays").json() if r["name"].endswith("-plant"))
        got = lines(self.api.get(f"/v1/stream/replay/{name}", speed=1000))
        self.assertEqual([r["temp"] for r in got], [1.5, "oops", None])
        self.assertEqual([r["sensor"] for r in got], ["a", "b", "a"])
        air = lines(self.api.get("/v1/stream/replay/air", speed=1000))
        self.assertEqual([(r["sensor"], r["humidity"]) for r in air], [("53", None), ("77", 40), ("81", 41)])

    def test_an_unknown_replay_is_a_404_naming_the_known_ones(self) -> None:
        response = self.api.get("/v1/stream/replay/nope")
        self.assertEqual(response.status_code, 404)
        self.assertIn("air", response.json()["detail"])


if __name__ == "__main__":
    unittest.main()
