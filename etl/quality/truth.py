"""Ground truth: the simulator's injected events (/v1/events) beside the lake's marts, as points to score.

The door detector (door_anomalies) is scored per judged door-hour, the robot detectors
(robot_incidents, robot_alerts) per judged 10-minute bucket of an axis; sql/*_points.sql say
which points count and how each is labelled and alarmed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from contract.schemas import EVENTS
from etl.client import ApiClient
from etl.lake import Lake
from etl.transform import TransformParams

SQL = Path(__file__).with_name("sql")
ETL_SQL = Path(__file__).parent.parent / "sql"
EVENT_CHUNK = dt.timedelta(days=30)  # one /v1/events request per month: well inside the API's row cap
# what each lake detector's verdicts depend on: its SQL (and the marts it reads) and the transform's knobs
DETECTOR_SQL = {
    "door_anomalies": (
        "door_hourly_sensor.sql",
        "door_hourly_store.sql",
        "door_daily_sensor.sql",
        "door_anomalies.sql",
    ),
    "robot_alerts": ("robot_fits.sql", "robot_alerts.sql"),
    "robot_incidents": ("robot_fits.sql", "robot_alerts.sql", "robot_incidents.sql"),
}


def fetch_events(client: ApiClient, kind: str, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """Every event of a kind overlapping [start, end), fetched a month at a time, each once."""
    tables, at = [], start
    while at < end:
        tables.append(client.events(kind, at, min(end, at + EVENT_CHUNK), EVENTS))
        at += EVENT_CHUNK
    table = pa.concat_tables(tables) if tables else EVENTS.empty_table()
    frame = table.to_pandas().drop_duplicates(["kind", "id", "start", "type"])  # spans cut by a chunk edge
    return pa.Table.from_pandas(frame, schema=EVENTS, preserve_index=False)


def mart(lake: Lake, name: str) -> list[str]:
    files = lake.files("marts", name)
    if not files:
        raise ValueError(f"lake {lake.uri} has no mart {name}: run `python -m etl transform` first")
    return files


def _query(sql_file: str, tables: dict[str, object], params: dict) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, source in tables.items():
            con.register(name, con.read_parquet(source) if isinstance(source, list) else source)
        sql = (SQL / sql_file).read_text()
        return con.sql(sql, params=params).to_arrow_table().to_pandas()
    finally:
        con.close()


def door_points(lake: Lake, events: pa.Table, params: TransformParams) -> pd.DataFrame:
    tables = {"hours": mart(lake, "door_hourly_sensor"), "flags": mart(lake, "door_anomalies"), "events": events}
    knobs = {"anomaly_weeks": params.anomaly_weeks, "anomaly_min_periods": params.anomaly_min_periods}
    return _query("door_points.sql", tables, knobs)


def robot_points(lake: Lake, events: pa.Table) -> pd.DataFrame:
    tables = {
        "fits": mart(lake, "robot_fits"),
        "incidents": mart(lake, "robot_incidents"),
        "alerts": mart(lake, "robot_alerts"),
        "events": events,
    }
    return _query("robot_points.sql", tables, {})


def stream_points(lake: Lake, events: pa.Table) -> pd.DataFrame | None:
    """The streaming job's alerts (LAKE/alerts/stream) per robot bucket; None when it wrote none."""
    alerts = lake.files("alerts", "stream")
    if not alerts:
        return None
    return _query("stream_points.sql", {"fits": mart(lake, "robot_fits"), "stream": alerts, "events": events}, {})


def span(lake: Lake, name: str, column: str) -> tuple[dt.datetime, dt.datetime] | None:
    """First and last value of a mart's time column (None: no mart)."""
    files = lake.files("marts", name)
    if not files:
        return None
    con = duckdb.connect()
    try:
        # as microseconds: a time-zoned value fetched into Python needs pytz
        sql = f"SELECT epoch_us(min({column})), epoch_us(max({column})) FROM read_parquet($f)"
        low, high = con.execute(sql, {"f": files}).fetchone()
    finally:
        con.close()
    if low is None:
        return None
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + dt.timedelta(microseconds=low), epoch + dt.timedelta(microseconds=high)


# the streaming job's verdicts depend on its per-key step and its detectors (and their recipes)
# Every file whose change can change a stream alert: the step, the detectors it can run, their state.
STREAM_CODE = (
    "stream/step.py",
    "stream/detectors.py",
    "stream/hst.py",
    "detectors/hotelling.py",
    "detectors/features.py",
    "detectors/motion.py",
    "detectors/halfspace.py",
    "detectors/robust_z.py",
    "detectors/state.py",
)


def detector_version(name: str, params: TransformParams) -> str:
    """A hash of the detector's SQL (the stream job: its code) and the transform's knobs: it changes
    when its verdicts can."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(params), sort_keys=True, default=str).encode())
    files = (
        [ETL_SQL.parent / f for f in STREAM_CODE]
        if name == "stream_alerts"
        else [ETL_SQL / f for f in DETECTOR_SQL[name]]
    )
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def data_version(lake: Lake, events: list[pa.Table]) -> str:
    """A hash of the raw partitions' versions (size/mtime) and of the ground truth scored against."""
    digest = hashlib.sha256()
    for kind in ("doors", "robots"):
        digest.update(json.dumps(lake.partition_versions(kind), sort_keys=True).encode())
    for table in events:
        digest.update(pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:12]
