"""The marts' files: `LAKE/marts/<table>/month=YYYY-MM/data.parquet` (or `date=...`), written,
merged with their earlier rows, and read back.

A month file lists in its schema metadata (PART_DATES) how many rows each date has, in file
order, so an increment keeps the rows dated before its first day without recomputing them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from etl.lake import Lake, Partition

WRITERS = 4  # mart files written at once
# The marts' codec: lz4 encoded a year of the door marts in half zstd's time (0.056 s against
# 0.110 s of a full rebuild's 1.2 s), into 4.3 MB instead of 3.6 MB, and decodes faster for the
# dashboard; the raw readings, many times larger and written once, keep zstd.
MART_COMPRESSION = "lz4"
LABELS = {"month": "month=%Y-%m", "date": "date=%Y-%m-%d"}  # a partition folder's name, by partitioning


def partition_label(day: int, partition: str) -> str:
    """The folder of the partition (`month` or `date`) holding a day: `month=YYYY-MM`, ..."""
    return Partition(day).date.strftime(LABELS[partition])


PART_DATES = b"part_dates"  # a month file's schema metadata: [[date, rows], ...] in file order


def merge_start(lake: Lake, names: list[str], first_day: int) -> int:
    """The first date a run of month-partitioned tables computes: `first_day`, when the month
    files holding it can keep their rows dated before it (each lists its dates; a missing file
    has no rows to keep: runs delete files without rows); else the month's first day (files
    written before PART_DATES). A rebuild keeps nothing: it starts at its first change.

    An hourly increment mid-month then computes 2 output days, not up to 31."""
    start = month_start(first_day)
    if first_day == start:
        return start
    label = partition_label(first_day, "month")
    for name in names:
        try:
            with lake.fs.open_input_file(lake.mart_file(name, label)) as f:
                metadata = pq.read_schema(f).metadata or {}
        except FileNotFoundError:
            continue
        if PART_DATES not in metadata:
            return start
    return first_day


def rows_before(table: pa.Table, day: int) -> tuple[pa.Table, list[tuple[dt.date, int]]]:
    """A month file's rows dated before `day`, and their [(date, rows), ...] (files are sorted
    by date; PART_DATES counts them)."""
    counts = [(dt.date.fromisoformat(d), rows) for d, rows in json.loads(table.schema.metadata[PART_DATES])]
    kept = [(d, rows) for d, rows in counts if d < Partition(day).date]
    return table.slice(0, sum(rows for _, rows in kept)).replace_schema_metadata(None), kept


def with_part_dates(table: pa.Table, part_dates: list[tuple[dt.date, int]]) -> pa.Table:
    """The month file's rows with its PART_DATES: how many rows each date has, in file order."""
    listed = json.dumps([[d.isoformat(), int(rows)] for d, rows in part_dates])
    return table.replace_schema_metadata({**(table.schema.metadata or {}), PART_DATES: listed.encode()})


def mart_partitions(lake: Lake, name: str, partition: str, days: Iterable[int] | None = None) -> set[str]:
    """The table's partitions (`date=...` or `month=...`): every one, or those holding `days`."""
    if days is None:
        return {path.rsplit("/", 2)[-2] for path in lake.files("marts", name)}
    parts = sorted({partition_label(d, partition) for d in days})
    infos = lake.fs.get_file_info([lake.mart_file(name, part) for part in parts])
    return {part for part, info in zip(parts, infos, strict=True) if info.type == pafs.FileType.File}


def next_month(day: int) -> int:
    """The first day of the month after `day`'s."""
    return month_start(month_start(day) + 31)


def month_start(day: int) -> int:
    date = Partition(day).date
    return Partition.from_iso(date.replace(day=1).isoformat()).day


def write_mart(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    name: str,
    first_day: int,
    until_day: int,
    partition: str,
    existing: set[str],
    keep: bool = True,
    read_back: dict[str, pa.Table] | None = None,
    writer: MartWriter | None = None,
) -> tuple[int, set[str]]:
    """Replace the table's partitions (`month=YYYY-MM` or `date=YYYY-MM-DD`) for rows dated
    [first_day, until_day]; returns the rows and the partitions written. `existing` (the
    table's partitions) is kept up to date. With `keep`, a month file keeps its rows dated
    before first_day (an increment mid-month: merge_start made sure the file lists them in
    PART_DATES; or a rebuild's chunk that starts mid-month). A month file read for that is
    left in `read_back` (by path) for add_history. The files are written by `writer`, which may
    still be writing the last of them on return (its finish() waits); without one, they are
    all written on return.

    Door tables by month: a year of six of them is 72 files, not 2,190 (each fsynced)."""
    span = {"first": Partition(first_day).date, "until": Partition(until_day).date}
    # How many rows each date has, and the rows themselves sorted by date (one query and one
    # sort for the whole span, streamed: 72 queries for a year of door tables, each filtering
    # and sorting its month, took a quarter of a full rebuild).
    dates = con.execute(
        f"SELECT part_date, count(*) FROM {name} WHERE part_date BETWEEN $first AND $until GROUP BY ALL ORDER BY 1",
        span,
    ).fetchall()
    reader = RowReader(con.sql(sorted_rows_query(con, name), params=span).to_arrow_reader(BATCH_ROWS))
    total, written = 0, set()
    with contextlib.nullcontext(writer) if writer else MartWriter(lake) as files:
        # One partition held at a time: a year of door_hourly_sensor held at once was the peak of
        # a full rebuild's memory.
        for part, lo, hi in partition_spans(first_day, until_day, partition):
            since, until = Partition(lo).date, Partition(hi).date
            part_dates = [(d, n) for d, n in dates if since <= d <= until]
            rows = reader.take(sum(n for _, n in part_dates)).drop_columns(["part_date"])
            total += rows.num_rows
            mid_month = lo == first_day and first_day != month_start(first_day)
            if keep and partition == "month" and mid_month and part in existing:
                path = lake.mart_file(name, part)
                old = lake.read_table(path)
                if read_back is not None:
                    read_back[path] = old
                kept, kept_dates = rows_before(old, first_day)
                rows, part_dates = pa.concat_tables([kept, rows]), kept_dates + part_dates
            if not rows.num_rows:  # every row of the partition is gone
                lake.delete(lake.mart_file(name, part))
                existing.discard(part)
                continue
            if partition == "month":
                rows = with_part_dates(rows, part_dates)
            files.submit(lake.mart_file(name, part), rows)
            written.add(part)
    reader.close()
    existing |= written
    return total, written


# Tables whose part_date is the UTC date of their first key column, ts: sorted by their key, they
# are sorted by date (one sort key fewer: a year of door_hourly_sensor sorted in 0.052 s, not 0.075)
DATED_BY_TS = {"door_hourly_sensor", "door_hourly_store"}
WORKING = "_"  # a query's working columns, which later queries of the run read and no file holds


class MartWriter:
    """Writes mart files WRITERS at a time on threads while the caller goes on (the next table's
    query runs while the last files of the one before are encoded): no more tables held than
    files being written. finish() waits for every file, raising a write's error; leaving the
    `with` block finishes (or, on an error, waits for the writes under way and drops the rest)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.pool = ThreadPoolExecutor(WRITERS)
        self.pending: deque[Future] = deque()

    def submit(self, path: str, rows: pa.Table) -> None:
        self.pending.append(self.pool.submit(self.lake.write_table, path, rows, MART_COMPRESSION))
        while len(self.pending) >= WRITERS:
            self.pending.popleft().result()

    def finish(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def __enter__(self) -> MartWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None:
                self.finish()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


BATCH_ROWS = 65_536  # rows per Arrow batch a sorted table streams in
# The leading columns that identify a row of a table (tested unique): its files sort by them
# alone, which is the order sorting by every column gives, in a third of the time (a sort key
# of 13 columns). Other tables sort by every column.
KEY_COLUMNS = {
    "door_hourly_sensor": 3,  # ts, store, sensor_id
    "door_hourly_store": 2,  # ts, store
    "door_daily_sensor": 3,  # store, sensor_id, local_date
    "door_daily_store": 2,  # store, local_date
    "door_health": 3,  # store, sensor_id, local_date
    "door_anomalies": 5,  # resolution, grain, store, sensor_id, ts
}


def sorted_rows_query(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The table's rows dated [$first, $until], sorted by date, then by the columns from the first
    (the key columns lead): files compress well, read in order, and the same rows always make
    the same file (three key columns left door_anomalies' ties in any order)."""
    columns = [f'"{c}"' for c in con.table(name).columns if c != "part_date" and not c.startswith(WORKING)]
    order = ", ".join(columns[: KEY_COLUMNS.get(name, len(columns))])
    by_date = "" if name in DATED_BY_TS else "part_date, "
    where = "part_date BETWEEN $first AND $until"
    return f"SELECT {', '.join(columns)}, part_date FROM {name} WHERE {where} ORDER BY {by_date}{order}"


class RowReader:
    """Takes a sorted stream of record batches a given number of rows at a time."""

    def __init__(self, batches: pa.RecordBatchReader) -> None:
        self.batches = batches
        self.rest: pa.RecordBatch | None = None  # a batch's rows not yet taken

    def take(self, rows: int) -> pa.Table:
        parts, wanted = [], rows
        while wanted > 0:
            batch = self.rest if self.rest is not None else self.batches.read_next_batch()
            parts.append(batch.slice(0, wanted))
            self.rest = batch.slice(wanted) if batch.num_rows > wanted else None
            wanted -= parts[-1].num_rows
        return pa.Table.from_batches(parts, self.batches.schema)

    def close(self) -> None:
        """End the stream: DuckDB fails the connection's next query (an internal error) while a
        result is still streaming."""
        for _ in self.batches:
            pass
        self.batches.close()


def partition_spans(first_day: int, until_day: int, partition: str) -> list[tuple[str, int, int]]:
    """(label, first day, last day) of each partition [first_day, until_day] touches."""
    spans = []
    lo = first_day
    while lo <= until_day:
        hi = min(until_day, next_month(lo) - 1) if partition == "month" else lo
        spans.append((partition_label(lo, partition), lo, hi))
        lo = hi + 1
    return spans


def add_history(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    name: str,
    first_day: int,
    days: int,
    existing: set[str],
    read_back: dict[str, pa.Table] | None = None,
) -> None:
    """Swap the run's own rows dated [first_day - days, first_day) for the written ones.

    The run computed those dates only from a short look-back (their first hours without
    history); the month files written earlier are complete, which is what a full run sees.
    A file write_mart already read (`read_back`) is not read again: it has just been
    rewritten, but with the same rows dated before first_day, the only ones taken here."""
    if days <= 0:
        return
    import pyarrow.compute as pc  # robot tables' only: 20 ms of every command's start-up

    since, before = Partition(first_day - days).date, Partition(first_day).date
    earlier = []
    for part in sorted({partition_label(d, "month") for d in range(first_day - days, first_day)}):
        path = lake.mart_file(name, part)
        table = (read_back or {}).get(path)
        if table is None and part in existing:
            table = lake.read_table(path)
        if table is not None:
            # each row's date, from the file's rows per date (PART_DATES; files sorted by date)
            counts = json.loads(table.schema.metadata[PART_DATES])
            dates = pa.array(np.repeat([dt.date.fromisoformat(d) for d, _ in counts], [n for _, n in counts]))
            table = table.replace_schema_metadata(None).append_column("part_date", dates.cast(pa.date32()))
            dates = table.column("part_date")
            earlier.append(table.filter(pc.and_(pc.greater_equal(dates, since), pc.less(dates, before))))
    history = pa.concat_tables(earlier) if earlier else None
    if history is None or not history.num_rows:
        return
    con.register("history_rows", history)
    con.execute(f"DELETE FROM {name} WHERE part_date IN (SELECT DISTINCT part_date FROM history_rows)")
    con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM history_rows")
    con.unregister("history_rows")


def read_mart(lake: Lake, name: str) -> pa.Table | None:
    """A whole mart table (the reader's view: every monthly file)."""
    tables = [lake.read_table(path) for path in lake.files("marts", name)]
    return pa.concat_tables(tables) if tables else None
