"""Where the data comes from (a lake folder or the snapshot), its version, and cached DuckDB queries.

The version is a fingerprint of the state files that every pull, transform and snapshot
rewrites: every cached query is keyed to it, so a page never re-reads what has not changed and
shows new data as soon as it lands.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import streamlit as st

from etl.lake import Lake

SNAPSHOT_FILE = "snapshot.json"
# Integer columns with nulls (a failed door's visits) stay integers, never floats such as 0.0.
NULLABLE_INTS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                 pa.int64(): pd.Int64Dtype()}  # fmt: skip


@dataclass(frozen=True)
class Listing:
    """A source's files at one version: table -> ((partition label, path), ...) sorted by label."""

    root: str
    snapshot: bool
    marts: dict[str, tuple[tuple[str, str], ...]]
    raw_robots: tuple[tuple[str, str], ...]
    version: str

    def files(self, table: str, since: dt.date | None = None) -> list[str]:
        """The table's files, without the partitions wholly before `since` (month or date labels)."""
        parts = self.marts.get(table, ())
        if since is None:
            return [path for _, path in parts]
        return [path for label, path in parts if label_end(label) >= since]

    def span(self, table: str) -> tuple[dt.date, dt.date] | None:
        """First and last partition dates (labels), without reading any file."""
        parts = self.marts.get(table, ())
        return (label_start(parts[0][0]), label_end(parts[-1][0])) if parts else None


def version(root: Path) -> str:
    """A cheap fingerprint of what the source holds (a few stat calls, for the live check).

    Every pull and transform rewrites its `_state/*.json`, a snapshot its snapshot.json, and a new
    partition changes its table folder's time; hand-built lakes without state still get the last."""
    digest = hashlib.sha1(str(root).encode())
    watched = [root / SNAPSHOT_FILE, root / "raw" / "robots"]
    for folder in (root / "_state", root / "marts"):
        with contextlib.suppress(FileNotFoundError):
            watched += sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix == ".json")
    for path in watched:
        with contextlib.suppress(FileNotFoundError):
            info = path.stat()
            digest.update(f"{path}|{info.st_size}|{info.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def scan(root: Path, snapshot: bool) -> Listing:
    """The source's files at its current version."""
    return listing(str(root), snapshot, version(root))


@st.cache_data(max_entries=8, show_spinner=False)
def listing(root: str, snapshot: bool, version: str) -> Listing:
    """Every mart and raw robot file, listed once per version (thousands of files in a big lake)."""
    lake = Lake(root)
    marts: dict[str, list[tuple[str, str]]] = {}
    for path in lake.files("marts"):
        table, label = path.rsplit("/", 3)[-3:-1]
        marts.setdefault(table, []).append((label, path))
    raw = tuple(sorted((p.rsplit("/", 2)[-2], p) for p in lake.files("raw", "robots")))
    return Listing(root, snapshot, {t: tuple(sorted(p)) for t, p in marts.items()}, raw, version)


def label_start(label: str) -> dt.date:
    value = label.split("=", 1)[1]
    return dt.date.fromisoformat(value + "-01" if len(value) == 7 else value)


def label_end(label: str) -> dt.date:
    """The last date a partition can hold (a month's last day, or the date itself)."""
    start = label_start(label)
    if len(label.split("=", 1)[1]) == 10:
        return start
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


@st.cache_resource(show_spinner=False)
def connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for the process; each query runs on its own cursor (thread-safe)."""
    return duckdb.connect()


@st.cache_data(max_entries=2000, show_spinner=False)
def query(version: str, sql: str, params: dict) -> pd.DataFrame:
    """A parameterised query's result, cached per source version (the version is part of the key)."""
    cursor = connection().cursor()
    try:
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor.sql(sql, params=params).to_arrow_table().to_pandas(types_mapper=NULLABLE_INTS.get)
    finally:
        cursor.close()


def read_json(root: str, *parts: str) -> dict:
    path = Path(root, *parts)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def fleet_stores(src: Listing, seen: list[str]) -> list[str]:
    """Every store in the fleet reference's order, then any other store the data holds: the
    order behind the fixed store -> colour mapping, the same whatever the page selects."""
    names = [s["name"] for s in read_json(src.root, "reference", "fleet.json").get("stores", []) if "name" in s]
    return names + sorted(set(seen) - set(names))
