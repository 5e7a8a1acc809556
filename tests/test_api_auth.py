"""The optional API key (issue 16): API_KEY on the server, ETL_API_KEY on the ETL's side."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
import unittest
from pathlib import Path

import requests

from api.settings import Settings
from etl.client import ApiClient, ApiError
from etl.datasets import DOORS
from etl.lake import Lake
from etl.pull import pull
from etl.settings import EtlSettings
from tests.support import ApiServer

SPAN = {"start": "2024-07-01T00:00:00Z", "end": "2024-07-02T00:00:00Z"}
GUARDED = {
    "/": {"store_name": "Paris", "year": 2024, "month": 7, "day": 30, "hour": 12},
    "/v1/fleet": {},
    "/v1/readings/doors": SPAN,
    "/v1/readings/robots": SPAN,
    "/v1/events": {"kind": "doors", **SPAN},
}
OPEN = ["/health", "/docs", "/redoc", "/openapi.json", "/static-offline-docs/swagger-ui.css"]


class ApiKeyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.key = secrets.token_urlsafe(24)  # made per run: no key lives in the repository
        cls.server = cls.enterClassContext(ApiServer(API_KEY=cls.key))

    def call(self, method: str, path: str, key: str | None) -> requests.Response:
        headers = {} if key is None else {"X-API-Key": key}
        url = self.server.base + path
        return self.server.session.request(method, url, params=GUARDED.get(path), headers=headers, timeout=30)

    def test_without_or_with_a_wrong_key_every_route_is_a_401_with_a_message(self) -> None:
        wrong = self.key[:-1] + ("A" if self.key[-1] != "A" else "B")
        for path in GUARDED:
            for method in ("GET", "HEAD"):
                for key, reason in ((None, "missing header"), (wrong, "wrong key"), ("", "wrong key")):
                    with self.subTest(path=path, method=method, key=key):
                        r = self.call(method, path, key)
                        self.assertEqual(r.status_code, 401)
                        if method == "GET":
                            self.assertIn(f"X-API-Key: {reason}", r.json()["detail"])
                            self.assertNotIn(self.key, r.text)
                            if key:
                                self.assertNotIn(key, r.text)  # the message never repeats what was sent

    def test_with_the_key_every_route_answers(self) -> None:
        for path in GUARDED:
            with self.subTest(path=path):
                self.assertEqual(self.call("GET", path, self.key).status_code, 200)

    def test_health_and_the_docs_need_no_key(self) -> None:
        for path in OPEN:
            with self.subTest(path=path):
                self.assertEqual(self.call("GET", path, None).status_code, 200)

    def test_the_document_says_which_routes_need_the_key(self) -> None:
        doc = self.call("GET", "/openapi.json", None).json()
        scheme = doc["components"]["securitySchemes"]["ApiKey"]
        self.assertEqual((scheme["type"], scheme["in"], scheme["name"]), ("apiKey", "header", "X-API-Key"))
        for path in GUARDED:
            op = doc["paths"][path]["get"]
            self.assertEqual(op["security"], [{"ApiKey": []}], path)
            self.assertIn("401", op["responses"], path)
        self.assertNotIn("security", doc["paths"]["/health"]["get"])
        self.assertNotIn(self.key, json.dumps(doc))

    def test_the_etl_pulls_with_its_key_and_is_refused_without(self) -> None:
        start, end = dt.datetime(2024, 12, 1, tzinfo=dt.UTC), dt.datetime(2024, 12, 3, tzinfo=dt.UTC)
        with tempfile.TemporaryDirectory() as tmp:
            settings = EtlSettings.from_env({"ETL_API_URL": self.server.base, "ETL_API_KEY": self.key, "ETL_LAKE": tmp})
            client = ApiClient(settings, log=lambda line: None)
            summary = pull(client, Lake(tmp), DOORS, settings, start, end)
            client.close()
            self.assertEqual(summary.status, "ok")
            self.assertEqual(summary.rows, 39 * 48)
            files = "".join(p.read_text(errors="ignore") for p in Path(tmp).rglob("*") if p.suffix == ".json")
            self.assertNotIn(self.key, files)  # nor in the lake's run records and state
        keyless = ApiClient(EtlSettings(api_url=self.server.base, retries=0), log=lambda line: None)
        with self.assertRaisesRegex(ApiError, "answered 401: X-API-Key: missing header"):
            keyless.readings(DOORS, start, end)
        keyless.close()

    def test_no_setting_shows_the_key(self) -> None:
        self.assertNotIn(self.key, repr(Settings.from_env({"API_KEY": self.key})))
        self.assertNotIn(self.key, repr(EtlSettings.from_env({"ETL_API_KEY": self.key})))
        self.assertEqual(EtlSettings.from_env({"ETL_API_KEY": self.key}).api_key, self.key)


class NoKeyTest(unittest.TestCase):
    def test_without_api_key_no_route_asks_for_one(self) -> None:
        with ApiServer() as server:
            r = server.get("/v1/readings/doors", **SPAN)
            self.assertEqual(r.status_code, 200)
            doc = server.get("/openapi.json").json()
            self.assertNotIn("securitySchemes", doc["components"])
            self.assertNotIn("401", doc["paths"]["/v1/readings/doors"]["get"]["responses"])


if __name__ == "__main__":
    unittest.main()
