"""Run etl/sql/*.sql over the lake in DuckDB and write each result to LAKE/marts/<table>/.

Each .sql file is one SELECT named after the table it produces; a file that names
another table's file runs after it. Outputs are partitioned by month (of each row's `part_date`); a run
recomputes only the months whose raw partitions changed since the last run, reading
the raw data from `lookback_days` before them, so every output row sees exactly the
history it would see in a full rebuild (`--full`), which gives identical output.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from etl.datasets import DATASETS
from etl.lake import Lake, Partition

SQL_DIR = Path(__file__).with_name("sql")
STATE_KIND = "transform"


@dataclass(frozen=True)
class TransformParams:
    """The analytics' knobs, bound into the SQL as $name parameters."""

    baseline_weeks: int = 4  # the running mean: this many previous same weekdays (and hours)
    anomaly_weeks: int = 8  # median and MAD over this many previous same weekdays (and hours)
    anomaly_k: float = 3.0  # robust sigmas that make a reading anomalous; twice as many: critical
    anomaly_min_change: float = 0.6  # ... and at least this relative change from the median (noise is 15 %)
    health_failure_rate: float = 0.05  # trailing 30-day share of failed hours that calls for replacement
    underused_ratio: float = 0.25  # a door under this share of its siblings' median share is underused

    @property
    def lookback_days(self) -> int:
        """Raw history each output date needs: the longest window, plus a day for time zones."""
        return max(7 * max(self.baseline_weeks, self.anomaly_weeks), 30 + 7) + 2


@dataclass
class TransformSummary:
    tables: dict[str, int] = field(default_factory=dict)  # rows written per table
    dates: list[str] = field(default_factory=list)  # raw UTC dates recomputed
    full: bool = False
    seconds: float = 0.0

    def line(self) -> str:
        what = f"{len(self.dates)} dates" if self.dates else "nothing new"
        tables = ", ".join(f"{name} {rows:,}" for name, rows in self.tables.items())
        return (
            f"transform{' --full' if self.full else ''}: {what}; {tables or 'no tables written'}; {self.seconds:.2f} s"
        )


def load_queries(sql_dir: Path = SQL_DIR) -> dict[str, str]:
    """name -> SELECT, in an order where every table comes after the tables it reads."""
    queries = {p.stem: p.read_text() for p in sorted(sql_dir.glob("*.sql"))}
    needs = {n: {m for m in queries if m != n and re.search(rf"\b{m}\b", sql)} for n, sql in queries.items()}
    ordered: list[str] = []
    while len(ordered) < len(queries):
        ready = [n for n in queries if n not in ordered and needs[n] <= set(ordered)]
        if not ready:
            raise ValueError(f"etl/sql: circular references among {sorted(set(queries) - set(ordered))}")
        ordered.extend(ready)
    return {n: queries[n] for n in ordered}


def raw_versions(lake: Lake) -> dict[str, dict[str, str]]:
    """kind -> {date: size/mtime} of every raw partition: what a run has or has not seen."""
    versions = {}
    for kind in DATASETS:
        infos = lake.file_infos("raw", kind)
        versions[kind] = {i.path.rsplit("/", 2)[-2].removeprefix("date="): f"{i.size}/{i.mtime_ns}" for i in infos}
    return versions


def changed_days(old: dict, new: dict) -> set[int]:
    days = set()
    for kind, dates in new.items():
        seen = old.get(kind, {})
        for date in set(dates) | set(seen):
            if dates.get(date) != seen.get(date):
                days.add(Partition.from_iso(date).day)
    return days


def transform(lake: Lake, params: TransformParams, full: bool = False, lock_timeout: float = 600.0) -> TransformSummary:
    began = time.perf_counter()
    summary = TransformSummary(full=full)
    queries = load_queries()
    with lake.lock(lock_timeout):
        state = lake.read_state(STATE_KIND)
        versions = raw_versions(lake)
        days = changed_days({} if full or state.get("params") != asdict(params) else state.get("raw", {}), versions)
        if days:
            first = month_start(min(days))  # a month is written whole
            summary.dates = [Partition(d).date.isoformat() for d in sorted(days)]
            con = connect(lake, first - params.lookback_days, params)
            for name, sql in queries.items():
                con.execute(f"CREATE TEMP TABLE {name} AS {sql}", _bound(sql, params, first))
                summary.tables[name] = write_mart(lake, con, name, first, full)
            con.close()
        lake.write_state(STATE_KIND, {"raw": versions, "params": asdict(params), "last_run": summary.line()})
    summary.seconds = round(time.perf_counter() - began, 3)
    return summary


def connect(lake: Lake, from_day: int, params: TransformParams) -> duckdb.DuckDBPyConnection:
    """DuckDB with the views the SQL reads: raw_doors, raw_robots (from `from_day` on) and stores."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for kind, data in DATASETS.items():
        paths = [p for p in lake.files("raw", kind) if Partition.from_path(p).day >= from_day]
        source = ds.dataset(paths, schema=data.schema, filesystem=lake.fs, format="parquet")
        con.register(f"raw_{kind}", source)
    con.register("stores", stores_table(lake))
    return con


def stores_table(lake: Lake) -> pa.Table:
    raw = lake.read_bytes(lake.path("reference", "fleet.json"))
    stores = json.loads(raw)["stores"] if raw else []
    return pa.table(
        {
            "name": pa.array([s["name"] for s in stores], pa.string()),
            "timezone": pa.array([s["timezone"] for s in stores], pa.string()),
            "doors": pa.array([s["doors"] for s in stores], pa.int32()),
        }
    )


def _bound(sql: str, params: TransformParams, first_day: int) -> dict:
    """The parameters this query names (DuckDB refuses unused ones)."""
    values = {**asdict(params), "first_date": Partition(first_day).date}
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}


def month_start(day: int) -> int:
    date = Partition(day).date
    return Partition.from_iso(date.replace(day=1).isoformat()).day


def month_name(date: dt.date) -> str:
    return f"month={date:%Y-%m}"


def write_mart(lake: Lake, con: duckdb.DuckDBPyConnection, name: str, first_day: int, full: bool) -> int:
    """Replace the table's monthly partitions from first_day's month on (all of them on a full run).

    Months, not days: a year of six door tables is 72 files, not 2,190 (each fsynced)."""
    first = {"first": Partition(first_day).date}
    # Sorted by month, then by the leading (key) columns: files compress well and read in order.
    query = f"SELECT * FROM {name} WHERE part_date >= $first ORDER BY date_trunc('month', part_date), 1, 2, 3"
    table = con.sql(query, params=first).to_arrow_table()
    months = pc.strftime(table.column("part_date").cast(pa.timestamp("s")), format="month=%Y-%m").to_numpy(
        zero_copy_only=False
    )
    names, starts = np.unique(months, return_index=True) if len(months) else (np.array([]), np.array([]))
    existing = {p.rsplit("/", 2)[-2] for p in lake.files("marts", name)}
    for stale in {m for m in existing if full or m >= month_name(Partition(first_day).date)} - set(names):
        lake.delete(lake.path("marts", name, stale, "data.parquet"))
    bounds = [*sorted(starts.tolist()), table.num_rows]
    for month, lo, hi in zip(sorted(names.tolist()), bounds[:-1], bounds[1:], strict=True):
        rows = table.slice(lo, hi - lo).drop_columns(["part_date"])
        lake.write_table(lake.path("marts", name, month, "data.parquet"), rows)
    return table.num_rows


def read_mart(lake: Lake, name: str) -> pa.Table | None:
    """A whole mart table (the reader's view: every monthly file)."""
    tables = [lake.read_table(path) for path in lake.files("marts", name)]
    return pa.concat_tables(tables) if tables else None
