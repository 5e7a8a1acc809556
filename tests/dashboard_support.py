"""A small real lake for the dashboard's tests: the simulator API on 127.0.0.1, a pull, a transform.

Built once per test process (several test modules share it) and copied by tests that change it.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import json
import shutil
import tempfile
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
