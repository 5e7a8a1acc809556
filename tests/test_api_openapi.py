"""HEAD, the OpenAPI document against the answers, and bad settings at start-up (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest

from tests.support import ROOT, ApiServer, free_port

SPAN = {"start": "2024-07-01T00:00:00Z", "end": "2024-07-02T00:00:00Z"}
QUERIES = {
    "/": {"store_name": "Paris", "year": 2024, "month": 7, "day": 30, "hour": 12},
    "/v1/fleet": {},
    "/health": {},
    "/v1/readings/doors": SPAN,
    "/v1/readings/robots": SPAN,
    "/v1/events": {"kind": "robots", **SPAN},
    "/v1/stream/robots": {"since": "2024-12-31T23:58:00Z", "end": "2025-01-01T00:00:00Z"},
    "/v1/stream/doors": {"since": "2024-12-31T20:00:00Z", "end": "2025-01-01T00:00:00Z"},
    "/v1/replays": {},
}
TEMPLATED = {"/v1/stream/replay/{name}"}  # a replay's name: none is configured here
FORMATS = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
           "parquet": "application/vnd.apache.parquet", "arrow": "application/vnd.apache.arrow.stream"}  # fmt: skip


class OpenApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer())
        cls.doc = cls.server.get("/openapi.json").json()

    def test_the_document_lists_every_route_once_as_get(self) -> None:
        self.assertEqual(set(self.doc["paths"]), set(QUERIES) | TEMPLATED)
        for path, item in self.doc["paths"].items():
            self.assertEqual(list(item), ["get"], path)

    def test_head_answers_wherever_get_does_with_the_same_headers_and_no_body(self) -> None:
        for path in [*QUERIES, "/docs", "/redoc", "/openapi.json"]:
            with self.subTest(path=path):
                url, params = self.server.base + path, QUERIES.get(path, {})
                get = self.server.session.get(url, params=params, timeout=30)
                head = self.server.session.head(url, params=params, timeout=30)
                self.assertEqual((head.status_code, get.status_code), (200, 200))
                self.assertEqual(head.content, b"")
                self.assertEqual(head.headers["content-type"], get.headers["content-type"])
                for name in ("X-Row-Count", "X-Data-Until"):
                    self.assertEqual(head.headers.get(name), get.headers.get(name))
        bad = self.server.session.head(self.server.base + "/v1/readings/doors", params={"start": "x"}, timeout=30)
        self.assertEqual(bad.status_code, 422)

    def test_the_200_media_types_are_those_answered(self) -> None:
        for path, params in QUERIES.items():
            documented = set(self.doc["paths"][path]["get"]["responses"]["200"]["content"])
            if "format" in {p["name"] for p in self.doc["paths"][path]["get"].get("parameters", [])}:
                self.assertEqual(documented, set(FORMATS.values()), path)
                for fmt, media in FORMATS.items():
                    with self.subTest(path=path, fmt=fmt):
                        r = self.server.get(path, format=fmt, **params)
                        self.assertEqual((r.status_code, r.headers["content-type"]), (200, media))
            else:
                answered = self.server.get(path, **params).headers["content-type"]
                self.assertEqual(documented, {answered}, path)
                self.assertIn(answered, ("application/json", "application/x-ndjson"), path)

    def test_every_error_is_documented_with_the_body_it_has(self) -> None:
        error = self.doc["components"]["schemas"]["Error"]
        self.assertEqual((error["required"], error["properties"]["detail"]["type"]), (["detail"], "string"))
        self.assertNotIn("HTTPValidationError", self.doc["components"]["schemas"])
        cases = [
            ("/v1/readings/doors", {**SPAN, "start": "soon"}, 422),
            ("/v1/readings/doors", {**SPAN, "format": "xml"}, 422),
            ("/v1/readings/robots", {"start": "2023-01-01", "end": "2025-01-01"}, 413),
            ("/", {**QUERIES["/"], "year": 2026}, 404),
            ("/", {**QUERIES["/"], "hour": 99}, 422),
        ]
        for path, params, status in cases:
            with self.subTest(path=path, params=params):
                r = self.server.get(path, **params)
                self.assertEqual(r.status_code, status)
                self.assertIsInstance(r.json()["detail"], str)
                documented = self.doc["paths"][path]["get"]["responses"][str(status)]
                self.assertEqual(
                    documented["content"]["application/json"]["schema"], {"$ref": "#/components/schemas/Error"}
                )
        for path in ("/v1/readings/doors", "/v1/readings/robots", "/v1/events"):
            responses = self.doc["paths"][path]["get"]["responses"]
            self.assertLessEqual({"200", "413", "422", "503"}, set(responses), path)
            self.assertIn("Retry-After", responses["503"]["headers"])

    def test_time_parameters_are_date_times(self) -> None:
        for path in ("/v1/readings/doors", "/v1/readings/robots", "/v1/events"):
            params = {p["name"]: p["schema"] for p in self.doc["paths"][path]["get"]["parameters"]}
            self.assertEqual((params["start"]["format"], params["end"]["format"]), ("date-time", "date-time"), path)


class StartupTest(unittest.TestCase):
    def start(self, **env: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(free_port())]
        return subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)

    def test_a_bad_setting_is_one_line_and_exit_code_2(self) -> None:
        cases = [
            ({"SIM_NOW": "garbage"}, "error: SIM_NOW='garbage' is not an ISO 8601 time"),
            ({"API_MAX_ROWS": "-1"}, "error: API_MAX_ROWS='-1' must be a positive int"),
            ({"API_MAX_STREAMS": "many"}, "error: API_MAX_STREAMS='many' must be a positive int"),
            ({"FLEET_FILE": "/nonexistent/fleet.toml"}, "error: fleet file /nonexistent/fleet.toml"),
        ]
        for env, message in cases:
            with self.subTest(env=env):
                done = self.start(**env)
                self.assertEqual(done.returncode, 2, done.stderr)
                lines = done.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, done.stderr)
                self.assertTrue(lines[0].startswith(message), lines[0])
                self.assertNotIn("Traceback", done.stderr + done.stdout)


if __name__ == "__main__":
    unittest.main()
