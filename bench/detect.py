"""Run the door detector (etl/sql/door_anomalies.sql) on any hourly counts, in a temporary lake."""

from __future__ import annotations

import json
import tempfile

import pandas as pd
import pyarrow as pa

from etl.datasets import DOORS
from etl.lake import Lake
from etl.marts import read_mart
from etl.transform import TransformParams, transform


def detect(readings: pd.DataFrame, stores: list[dict], params: TransformParams | None = None) -> pd.DataFrame:
    """door_anomalies for readings (ts UTC hourly, store, sensor_id, count; null = failed)."""
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(tmp)
        lake.write_bytes(lake.path("reference", "fleet.json"), json.dumps({"stores": stores}).encode())
        rows = readings.sort_values(["ts", "store", "sensor_id"]).copy()
        rows["count"] = rows["count"].astype("Int32")
        table = pa.Table.from_pandas(rows[["ts", "store", "sensor_id", "count"]], schema=DOORS.schema,
                                     preserve_index=False)  # fmt: skip
        start, end = rows.ts.min(), rows.ts.max() + pd.Timedelta(hours=1)
        lake.replace_interval(DOORS, table, start.to_pydatetime(), end.to_pydatetime())
        transform(lake, params or TransformParams())
        return read_mart(lake, "door_anomalies").to_pandas()
