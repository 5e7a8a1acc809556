"""A failure after the first byte never looks like success (issue 11).

The chunk generator of a real app fails mid-stream (a fault injected into the door
simulator), served by a real uvicorn on 127.0.0.1: every format's answer must break
for the client, and the ETL's client must retry and never load a partial page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unittest

import requests

from api.app import create_app
from api.settings import Clock, Settings
from api.simulate.doors import DoorSimulator
from etl.client import ApiClient, ApiError
from etl.datasets import DOORS
from etl.settings import EtlSettings
from etl.wire import FORMATS
from tests.api_support import InProcessServer

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
WEEK = (dt.datetime(2024, 7, 1, tzinfo=dt.UTC), dt.datetime(2024, 7, 8, tzinfo=dt.UTC))
SPAN = {"start": "2024-07-01T00:00:00Z", "end": "2024-07-08T00:00:00Z"}  # 7 days: 6,552 rows, 7 chunks


class FaultyDoors(DoorSimulator):
    """Door readings whose chunk generator raises after `good_chunks` chunks, for the first `failures` requests."""

    def __init__(self, fleet, failures: int, good_chunks: int = 2) -> None:
        super().__init__(fleet)
        self.faults_left = failures
        self.good_chunks = good_chunks

    def reading_chunks(self, h0, h1, selection, chunk_rows):
        fail, self.faults_left = self.faults_left > 0, self.faults_left - 1
        for i, chunk in enumerate(super().reading_chunks(h0, h1, selection, chunk_rows)):
            if fail and i == self.good_chunks:
                raise RuntimeError("injected fault in the chunk generator")
            yield chunk


def faulty_app(failures: int, good_chunks: int = 2):
    app = create_app(Settings(clock=Clock(anchor=NOW), chunk_rows=1000))
    sim = app.state.simulation
    app.state.simulation = dataclasses.replace(sim, doors=FaultyDoors(sim.fleet, failures, good_chunks))
    return app


class MidStreamFailureTest(unittest.TestCase):
    def test_every_format_breaks_for_the_client(self) -> None:
        for good_chunks in (0, 2):
            with InProcessServer(faulty_app(failures=10**6, good_chunks=good_chunks)) as server:
                for fmt in FORMATS:
                    with self.subTest(fmt=fmt, good_chunks=good_chunks), self.assertLogs("api.stream", "ERROR") as logs:
                        with self.assertRaises(requests.exceptions.ChunkedEncodingError):
                            server.get("/v1/readings/doors", format=fmt, **SPAN)
                        self.assertIn("failed mid-stream", logs.output[0])

    def test_a_healthy_stream_still_ends_cleanly(self) -> None:
        with InProcessServer(faulty_app(failures=0)) as server:
            r = server.get("/v1/readings/doors", format="csv", **SPAN)
            self.assertEqual(r.status_code, 200)
            self.assertEqual(len(r.text.splitlines()) - 1, int(r.headers["X-Row-Count"]))


class ClientRetryTest(unittest.TestCase):
    def client(self, server: InProcessServer, log: list[str]) -> ApiClient:
        settings = EtlSettings(api_url=server.base, retries=3)
        return ApiClient(settings, sleep=lambda seconds: None, log=log.append)

    def test_the_etl_retries_and_loads_the_whole_page(self) -> None:
        log: list[str] = []
        with InProcessServer(faulty_app(failures=2)) as server, self.assertLogs("api.stream", "ERROR"):
            client = self.client(server, log)
            page = client.readings(DOORS, *WEEK)
        self.assertEqual(page.table.num_rows, 39 * 24 * 7)
        self.assertEqual(client.retries_used, 2)
        self.assertTrue(all("ChunkedEncodingError" in line for line in log), log)

    def test_the_etl_never_loads_a_partial_page(self) -> None:
        log: list[str] = []
        with InProcessServer(faulty_app(failures=10**6)) as server, self.assertLogs("api.stream", "ERROR"):
            client = self.client(server, log)
            with self.assertRaisesRegex(ApiError, "failed after 4 attempts: ChunkedEncodingError"):
                client.readings(DOORS, *WEEK)


if __name__ == "__main__":
    unittest.main()
