"""The API client: one session, timeouts, retries with backoff, truncation checks, Arrow decoding."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import requests

from contract.times import parse_instant as parse_iso
from etl.datasets import Dataset
from etl.settings import EtlSettings
from etl.wire import decode

RETRY_STATUS = {429, 500, 502, 503, 504}
T = TypeVar("T")


class ApiError(RuntimeError):
    """The API refused the request (a 4xx) or stayed unreachable after every retry."""


@dataclass(frozen=True)
class Page:
    table: pa.Table
    until: dt.datetime  # the API's X-Data-Until: complete up to here


def iso(value: dt.datetime) -> str:
    # isoformat, not strftime("%Y"), which writes the year 1 as "1", not "0001"
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


class ApiClient:
    def __init__(
        self, settings: EtlSettings, sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = print
    ) -> None:
        self.settings = settings
        self.base = settings.api_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy look-up per request: the API is ours
        if settings.api_key:
            self.session.headers["X-API-Key"] = settings.api_key
        self.sleep = sleep
        self.log = log
        self.retries_used = 0

    def close(self) -> None:
        self.session.close()

    def get_json(self, path: str, **params) -> dict:
        def parse(body: bytes, headers: dict) -> dict:
            try:
                return json.loads(body)
            except ValueError as exc:
                raise _Retry(f"undecodable JSON ({len(body)} bytes)") from exc

        return self._get(path, params, parse)

    def data_clock(self) -> dict[str, dt.datetime]:
        """The API's clock: `now` (robots) and `doors_until` (complete door hours)."""
        health = self.get_json("/health")
        return {"now": parse_iso(health["now"]), "doors_until": parse_iso(health["doors_until"])}

    def readings(self, data: Dataset, start: dt.datetime, end: dt.datetime) -> Page:
        """All readings of a data set in [start, end), as one Arrow table of its schema."""

        def parse(body: bytes, headers: dict) -> Page:
            try:
                table = decode(body, "arrow", data.schema)
            except (pa.ArrowInvalid, ValueError, OSError) as exc:
                raise _Retry(f"undecodable body ({len(body)} bytes): {exc}") from exc
            expected = headers.get("X-Row-Count")
            if expected is None or "X-Data-Until" not in headers:
                raise _Retry("answer lacks X-Row-Count or X-Data-Until")
            if int(expected) != table.num_rows:
                raise _Retry(f"body cut short: {table.num_rows} rows of {expected}")
            return Page(table, parse_iso(headers["X-Data-Until"]))

        return self._get(data.route, {"start": iso(start), "end": iso(end), "format": "arrow"}, parse)

    def events(self, kind: str, start: dt.datetime, end: dt.datetime, schema: pa.Schema) -> pa.Table:
        """The simulator's injected events (ground truth) of a kind overlapping [start, end)."""

        def parse(body: bytes, headers: dict) -> pa.Table:
            try:
                return decode(body, "arrow", schema)
            except (pa.ArrowInvalid, ValueError, OSError) as exc:
                raise _Retry(f"undecodable body ({len(body)} bytes): {exc}") from exc

        params = {"kind": kind, "start": iso(start), "end": iso(end), "format": "arrow"}
        return self._get("/v1/events", params, parse)

    def _get(self, path: str, params: dict, parse: Callable[[bytes, dict], T]) -> T:
        """GET with retries on connection errors, timeouts, 429, 5xx and cut-short bodies."""
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(self.base + path, params, parse)
            except _Retry as retry:
                if attempt + 1 == attempts:
                    raise ApiError(f"GET {path} failed after {attempts} attempts: {retry.reason}") from None
                self.retries_used += 1
                delay = retry.wait if retry.wait is not None else self._backoff(attempt)
                self.log(f"retrying GET {path} in {delay:.1f} s: {retry.reason}")
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(self, url: str, params: dict, parse: Callable[[bytes, dict], T]) -> T:
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            with self.session.get(url, params=params, timeout=timeout, stream=True) as response:
                if response.status_code in RETRY_STATUS:
                    raise _Retry(f"HTTP {response.status_code}", _retry_after(response))
                if response.status_code >= 400:
                    raise ApiError(f"GET {url} answered {response.status_code}: {_detail(response)}")
                body = b"".join(response.iter_content(1 << 20))
                headers = response.headers  # case-insensitive, as HTTP header names are
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        return parse(body, headers)

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return min(s.backoff_max_seconds, s.backoff_seconds * 2**attempt) * random.uniform(0.5, 1.0)


class _Retry(Exception):
    """A failed attempt worth repeating, with the server's Retry-After when it gave one."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _retry_after(response: requests.Response) -> float | None:
    try:
        return min(60.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", response.text[:300]))
    except ValueError:
        return response.text[:300]
