"""A small real lake for the dashboard's tests: the simulator API on 127.0.0.1, a pull, a transform.

Built once per test process (several test modules share it) and copied by tests that change it.
Also a stub of Airflow's two REST endpoints the Pipeline tab calls (AirflowStub).
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import json
import shutil
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pyarrow as pa

from etl.client import ApiClient
from etl.datasets import DOORS, ROBOTS
from etl.lake import Lake
from etl.pull import pull
from etl.settings import EtlSettings
from etl.snapshot import write_snapshot
from etl.transform import TransformParams, transform
from tests.support import ApiServer

UTC = dt.UTC
END = dt.datetime(2024, 12, 10, tzinfo=UTC)  # the API's clock in these tests
DOOR_START = END - dt.timedelta(days=42)  # six weeks: baselines and anomaly medians have history
ROBOT_START = END - dt.timedelta(days=2)


@functools.cache
def built_lake() -> Path:
    """Doors for six weeks and robots for two days to END, pulled over HTTP and transformed."""
    root = Path(tempfile.mkdtemp(prefix="dashboard-lake-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    lake = root / "lake"
    with ApiServer(SIM_NOW=END.isoformat().replace("+00:00", "Z")) as server:
        settings = EtlSettings(api_url=server.base, lake=str(lake))
        client = ApiClient(settings, log=lambda line: None)
        try:
            pull(client, Lake(str(lake)), DOORS, settings, DOOR_START, END)
            pull(client, Lake(str(lake)), ROBOTS, settings, ROBOT_START, END)
        finally:
            client.close()
    transform(Lake(str(lake)), TransformParams())
    return lake


@functools.cache
def built_snapshot() -> Path:
    snapshot = built_lake().parent / "snapshot"
    write_snapshot(Lake(str(built_lake())), snapshot)
    return snapshot


def copy_of(lake: Path, into: Path) -> Path:
    target = into / lake.name
    shutil.copytree(lake, target)
    return target


def tiny_lake(root: Path, hours: int, store: str = "O'Hare") -> Path:
    """A door lake of `hours` hours (from 2024-06-03 08:00 UTC) of one store with two doors, transformed.

    The store's name has a quote: every query must bind it, never format it into SQL."""
    lake = Lake(str(root))
    fleet = {"stores": [{"name": store, "timezone": "UTC", "doors": 2}], "robots": []}
    lake.write_bytes(lake.path("reference", "fleet.json"), json.dumps(fleet).encode())
    start = pd.Timestamp("2024-06-03T08:00:00Z")
    ts = pd.date_range(start, periods=hours, freq="h")
    rows = pd.DataFrame({"ts": ts.repeat(2), "store": store, "sensor_id": [0, 1] * hours, "count": 100})
    table = pa.Table.from_pandas(rows, schema=DOORS.schema, preserve_index=False)
    end = start + pd.Timedelta(hours=hours)
    lake.replace_interval(DOORS, table, start.to_pydatetime(), end.to_pydatetime())
    transform(lake, TransformParams())
    return root


# Two runs as Airflow 3.3's GET /api/v2/dags/{dag_id}/dagRuns returns them (DAGRunResponse fields
# the dashboard reads, and a few it does not), newest first.
STUB_RUNS = [
    {"dag_run_id": "scheduled__2024-12-10T01:00:00+00:00", "dag_id": "sensor_pipeline", "state": "failed",
     "run_type": "scheduled", "run_after": "2024-12-10T01:00:00Z", "logical_date": "2024-12-10T01:00:00Z",
     "start_date": "2024-12-10T01:00:02.123456Z", "end_date": "2024-12-10T01:03:40.5Z", "duration": 218.4,
     "conf": {}, "note": None},
    {"dag_run_id": "scheduled__2024-12-10T00:00:00+00:00", "dag_id": "sensor_pipeline", "state": "success",
     "run_type": "scheduled", "run_after": "2024-12-10T00:00:00Z", "logical_date": "2024-12-10T00:00:00Z",
     "start_date": "2024-12-10T00:00:01.5Z", "end_date": "2024-12-10T00:02:10Z", "duration": 128.5,
     "conf": {}, "note": None},
]  # fmt: skip


class AirflowStub:
    """A stub of the Airflow 3 api-server's two endpoints the dashboard calls, on 127.0.0.1.

    POST /auth/token (simple auth manager: JSON username/password -> 201 {"access_token": ...},
    401 otherwise) and GET /api/v2/dags/{dag_id}/dagRuns (Bearer token -> {"dag_runs": [...],
    "total_entries": n}; 401 without it; 404 for another DAG). A faithful stub, not Airflow: the
    real api-server runs in the DAG tests; here it keeps the dashboard's unit tests fast. `seen`
    records each request's path and query."""

    USER, PASSWORD, TOKEN = "viewer", "secret", "stub-jwt"

    def __init__(self, runs: list[dict] | None = None) -> None:
        self.runs = STUB_RUNS if runs is None else runs
        self.seen: list[tuple[str, str, dict]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.seen.append(("POST", url.path, {}))
                if url.path != "/auth/token":
                    return self.reply(404, {"detail": "Not Found"})
                if body.get("username") == stub.USER and body.get("password") == stub.PASSWORD:
                    return self.reply(201, {"access_token": stub.TOKEN})
                return self.reply(401, {"detail": "Invalid credentials"})

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                stub.seen.append(("GET", url.path, urllib.parse.parse_qs(url.query)))
                if self.headers.get("Authorization") != f"Bearer {stub.TOKEN}":
                    return self.reply(401, {"detail": "Not authenticated"})
                if url.path != "/api/v2/dags/sensor_pipeline/dagRuns":
                    return self.reply(404, {"detail": "The Dag with ID: `other` was not found"})
                self.reply(200, {"dag_runs": stub.runs, "total_entries": len(stub.runs)})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> AirflowStub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
