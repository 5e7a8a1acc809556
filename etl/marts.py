"""The marts' files: `LAKE/marts/<table>/month=YYYY-MM/data.parquet` (or `date=...`), written,
merged with their earlier rows, and read back.

A month file lists in its schema metadata (PART_DATES) how many rows each date has, in file
order, so an increment keeps the rows dated before its first day without recomputing them.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from etl.lake import Lake, Partition

WRITERS = 4  # mart files written at once
LABELS = {"month": "month=%Y-%m", "date": "date=%Y-%m-%d"}  # a partition folder's name, by partitioning


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
    label = Partition(first_day).date.strftime(LABELS["month"])
    for name in names:
        try:
            with lake.fs.open_input_file(lake.path("marts", name, label, "data.parquet")) as f:
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


def mart_partitions(lake: Lake, name: str, partition: str, days: range | None = None) -> set[str]:
    """The table's partitions (`date=...` or `month=...`): every one, or those holding `days`."""
    if days is None:
        return {path.rsplit("/", 2)[-2] for path in lake.files("marts", name)}
    label = LABELS[partition]
    parts = sorted({Partition(d).date.strftime(label) for d in days})
    infos = lake.fs.get_file_info([lake.path("marts", name, part, "data.parquet") for part in parts])
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
) -> tuple[int, set[str]]:
    """Replace the table's partitions (`month=YYYY-MM` or `date=YYYY-MM-DD`) for rows dated
    [first_day, until_day]; returns the rows and the partitions written. `existing` (the
    table's partitions) is kept up to date. With `keep`, a month file keeps its rows dated
    before first_day (an increment mid-month: merge_start made sure the file lists them in
    PART_DATES; or a rebuild's chunk that starts mid-month). A month file read for that is
    left in `read_back` (by path) for add_history.

    Door tables by month: a year of six of them is 72 files, not 2,190 (each fsynced)."""
    span = {"first": Partition(first_day).date, "until": Partition(until_day).date}
    # Sorted by partition, then by every column from the first (the key columns lead): files
    # compress well, read in order, and the same rows always make the same file (three key
    # columns left door_anomalies' ties in any order). Sorting by all of them cost nothing more.
    columns = ", ".join(f'"{c}"' for c in con.table(name).columns if c != "part_date")
    query = f"SELECT * FROM {name} WHERE part_date BETWEEN $first AND $until ORDER BY part_date, {columns}"
    table = con.sql(query, params=span).to_arrow_table()
    label = LABELS[partition]
    # Rows come sorted by date: label each distinct date (strftime on every row took 40 % of
    # the time of writing a month of robot_fits), then cut where the label changes.
    days = table.column("part_date").cast(pa.int32()).to_numpy()
    distinct, firsts = np.unique(days, return_index=True)
    counts = np.diff([*firsts.tolist(), table.num_rows])
    dates = [Partition(int(d)).date for d in distinct]
    labels = [d.strftime(label) for d in dates]
    cuts = [i for i in range(len(labels)) if i == 0 or labels[i] != labels[i - 1]]
    # per partition: (label, first row, end row, its dates' [[iso date, rows], ...])
    parts = [
        (
            labels[i],
            int(firsts[i]),
            int(firsts[j]) if j < len(firsts) else table.num_rows,
            list(zip(dates[i:j], counts[i:j], strict=True)),
        )
        for i, j in zip(cuts, [*cuts[1:], len(distinct)][: len(cuts)], strict=True)
    ]
    first_label, until_label = (Partition(d).date.strftime(label) for d in (first_day, until_day))
    kept = None  # the rows of first_label's month file dated before first_day, kept
    if keep and partition == "month" and first_day != month_start(first_day) and first_label in existing:
        path = lake.path("marts", name, first_label, "data.parquet")
        old = lake.read_table(path)
        if read_back is not None:
            read_back[path] = old
        kept, kept_dates = rows_before(old, first_day)
    files = []
    for part, lo, hi, part_dates in parts:
        rows = table.slice(lo, hi - lo).drop_columns(["part_date"])
        if kept is not None and part == first_label:
            rows, part_dates = pa.concat_tables([kept, rows]), kept_dates + part_dates
            kept = None
        files.append((part, rows, part_dates))
    if kept is not None and kept.num_rows:  # no new rows in first_label's month: its earlier ones stay
        files.insert(0, (first_label, kept, kept_dates))
    for stale in {m for m in existing if first_label <= m <= until_label} - {part for part, _, _ in files}:
        lake.delete(lake.path("marts", name, stale, "data.parquet"))
        existing.discard(stale)
    if partition == "month":
        files = [(part, with_part_dates(rows, part_dates), part_dates) for part, rows, part_dates in files]

    def write(file: tuple[str, pa.Table, list]) -> None:
        lake.write_table(lake.path("marts", name, file[0], "data.parquet"), file[1])

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, files))
    written = {part for part, _, _ in files}
    existing |= written
    return table.num_rows, written


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
    since, before = Partition(first_day - days).date, Partition(first_day).date
    earlier = []
    for part in sorted({Partition(d).date.strftime(LABELS["month"]) for d in range(first_day - days, first_day)}):
        path = lake.path("marts", name, part, "data.parquet")
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
