"""Run etl/sql/*.sql over the lake in DuckDB and write each result to LAKE/marts/<table>/.

Each .sql file is one SELECT named after the table it produces; a file that names
another table's file runs after it (sql/helpers/ holds helper queries, no tables). Tables
come in families by the raw data they read (`door_*`: doors; `robot_*`: robots), both in
month files. A run recomputes only the dates from the first changed raw date on (keeping a
month file's earlier rows), reading raw data from a look-back before them, so every output
row sees exactly the history it would see in a full rebuild (`--full`), which gives
identical output (tested).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from etl.datasets import DATASETS
from etl.lake import Lake, Partition

SQL_DIR = Path(__file__).with_name("sql")
STATE_KIND = "transform"
WRITERS = 4  # mart files written at once
SMALL_RUN_DAYS = 3  # output days up to which DuckDB runs single-threaded (an increment)
ROBOT_MIN_CHUNK_DAYS = 4  # robot output days computed together: a calendar month, or up to 3 days more


@dataclass(frozen=True)
class TransformParams:
    """The analytics' knobs, bound into the SQL as $name parameters."""

    baseline_weeks: int = 4  # the running mean: this many previous same weekdays (and hours)
    anomaly_weeks: int = 8  # median and MAD over this many previous same weekdays (and hours)
    anomaly_k: float = 3.0  # robust sigmas that make a reading anomalous; twice as many: critical
    anomaly_min_change: float = 0.6  # ... and at least this relative change from the median (noise is 15 %)
    health_failure_rate: float = 0.05  # trailing 30-day share of failed hours that calls for replacement
    health_min_hours: int = 168  # ... judged only on at least a week of hours
    underused_ratio: float = 0.25  # a door under this share of its siblings' median share is underused
    incident_gap_seconds: float = 300.0  # flagged readings of an axis closer than this are one incident
    incident_min_readings: int = 3  # fewer flagged readings than this are noise, not an incident
    maintenance_days: int = 7  # the wear trend is fitted over this many days of bucket means
    maintenance_min_slope: float = 0.02  # sigmas per day: slower than this is no wear trend
    screen_sigmas: float = 3.0  # robot buckets whose mean moved this many standard errors are judged reading by reading

    @property
    def lookback_days(self) -> int:
        """Raw history a door date needs: the longest window, plus a day for time zones."""
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


@dataclass(frozen=True)
class Family:
    """Tables that read one raw data set: how far back a change reaches, how outputs are cut."""

    source: str  # the raw data set its SQL reads, as raw_<source>
    prefix: str  # its tables' names start with this
    partition: str  # "month" (door tables: few files) or "date" (robot tables: small increments)

    def lookback_days(self, params: TransformParams) -> int:
        # Robot fits reach 6 hours back, incidents minutes (the maintenance trend's days come from
        # the robot_fits already written: see history_days); door windows 8 weeks.
        return 2 if self.source == "robots" else params.lookback_days

    def history_days(self, name: str, params: TransformParams) -> int:
        """Days of a table's earlier partitions that later queries of the run read back."""
        return params.maintenance_days if name == "robot_fits" else 0

    def chunks(self, first: int, end: int) -> list[tuple[int, int]]:
        """[first, end) in runs of output days computed together, as (first, until) inclusive.

        Door tables are small and go in one run; robot tables (35k samples a day) go a calendar
        month at a time, so that memory stays flat however much is rebuilt and each month file is
        written once (a chunk from mid-month would read the file back and write it again); a
        piece of fewer than ROBOT_MIN_CHUNK_DAYS (a rebuild from 31 December, an increment across
        a month's end, the day after the last) goes with the month next to it."""
        if self.source == "doors":
            return [(first, end - 1)] if end > first else []
        cuts = [first]
        cut = next_month(first)
        while cut < end:
            if cut - cuts[-1] >= ROBOT_MIN_CHUNK_DAYS:
                cuts.append(cut)
            cut = next_month(cut)
        if len(cuts) > 1 and end - cuts[-1] < ROBOT_MIN_CHUNK_DAYS:
            cuts.pop()  # the days past the last month's end (+2 in run_family) go with it
        return [(a, b - 1) for a, b in zip(cuts, [*cuts[1:], end], strict=True) if b > a]

    def first_day(self, changed: set[int], fleet: dict) -> int:
        """The first output date to rewrite: the earliest change, or the day before it when that
        day's rows look into the change: a robot day's last motions look a few samples ahead; a
        UTC date's hours fall on the day before's local date in a store west of UTC. Month
        partitions keep their rows dated before it (see write_mart), when their files say where
        those rows end (see merge_start). (Door windows look back only.)"""
        if self.source == "doors" and not west_of_utc(fleet):
            return min(changed)  # 1 January: December's files are left alone
        return min(changed) - 1


FAMILIES = (Family("doors", "door_", "month"), Family("robots", "robot_", "month"))


def west_of_utc(fleet: dict) -> bool:
    """Whether a store's local date can be the day before the UTC date (its clock behind UTC
    in winter or summer)."""
    zones = {store["timezone"] for store in fleet.get("stores", [])}
    days = (dt.datetime(2024, 1, 15), dt.datetime(2024, 7, 15))
    return any(ZoneInfo(zone).utcoffset(day) < dt.timedelta(0) for zone in zones for day in days)


def changed_days(old: dict, new: dict) -> dict[str, set[int]]:
    """kind -> the raw dates added, rewritten or removed since the versions in `old`."""
    changed = {}
    for kind, dates in new.items():
        seen = old.get(kind, {})
        changed[kind] = {Partition.from_iso(d).day for d in set(dates) | set(seen) if dates.get(d) != seen.get(d)}
    return changed


def transform(lake: Lake, params: TransformParams, full: bool = False, lock_timeout: float = 600.0) -> TransformSummary:
    began = time.perf_counter()
    summary = TransformSummary(full=full)
    queries = load_queries()
    with lake.lock(lock_timeout):
        state = lake.read_state(STATE_KIND)
        versions = raw_versions(lake)
        # A new layout of the marts (robot tables went from date to month files) rebuilds them:
        # a rebuild deletes the partitions of the old layout, an increment would keep them.
        layout = {f.prefix: f.partition for f in FAMILIES}
        rebuild = full or state.get("params") != asdict(params) or state.get("layout") != layout
        changed = changed_days({} if rebuild else state.get("raw", {}), versions)
        summary.dates = [Partition(d).date.isoformat() for d in sorted(set().union(*changed.values()))]
        fleet = json.loads(lake.read_bytes(lake.path("reference", "fleet.json")) or b"{}")
        families = [f for f in FAMILIES if changed.get(f.source)]
        # The families read different raw data and write different tables, and DuckDB and Parquet
        # writes release the GIL: side by side, the door tables take no time of their own.
        with ThreadPoolExecutor(max(1, len(families))) as pool:
            runs = [
                pool.submit(run_family, lake, f, queries, params, changed[f.source], versions, rebuild, fleet)
                for f in families
            ]
            for run in runs:  # in FAMILIES order, whichever finishes first
                summary.tables.update(run.result())
        lake.write_state(
            STATE_KIND, {"raw": versions, "params": asdict(params), "layout": layout, "last_run": summary.line()}
        )
    summary.seconds = round(time.perf_counter() - began, 3)
    return summary


def run_family(
    lake: Lake,
    family: Family,
    queries: dict[str, str],
    params: TransformParams,
    changed: set[int],
    versions: dict,
    rebuild: bool,
    fleet: dict,
) -> dict[str, int]:
    """Recompute a family's tables from its first changed partition on, chunk by chunk; returns
    the rows written per table."""
    days = sorted(Partition.from_iso(d).day for d in versions[family.source])
    last = days[-1] if days else 0
    names = [n for n in queries if n.startswith(family.prefix)]
    first_day = family.first_day(changed, fleet)
    if family.partition == "month" and not rebuild:
        first_day = merge_start(lake, names, first_day)
    # The partitions each table has: all of them for a rebuild (to delete the stale ones); for an
    # increment only those it may read or replace, one stat each (listing 3 years of daily
    # partitions took 15 ms a table, and would grow with the lake).
    reach = None if rebuild else range(first_day - max(family.history_days(n, params) for n in names), last + 2)
    existing = {n: mart_partitions(lake, n, family.partition, reach) for n in names}
    written: dict[str, set[str]] = {n: set() for n in names}
    rows: dict[str, int] = dict.fromkeys(names, 0)
    # An hourly increment's queries are too small to share between threads, and the two
    # families already keep both cores busy: one thread each saved 10 % of its time.
    single_thread = last + 2 - first_day <= SMALL_RUN_DAYS
    # +2: a store's local date can run a day past the last UTC date
    for first, until in family.chunks(first_day, last + 2):
        from_day = first - family.lookback_days(params)
        paths = [lake.partition_file(family.source, Partition(d)) for d in days if from_day <= d <= until + 1]
        con = connect(lake, family.source, paths, fleet, single_thread)
        for name in names:
            if name in PREPARE:
                PREPARE[name](con)
            con.execute(f"CREATE TEMP TABLE {name} AS {queries[name]}", _bound(queries[name], params, first))
            # A month file keeps its rows dated before the chunk, but a rebuild's first chunk
            # replaces what it finds (stale); its later chunks add to the files it wrote.
            keep = not rebuild or first != first_day
            count, parts = write_mart(lake, con, name, first, until, family.partition, existing[name], keep)
            add_history(lake, con, name, first, family.history_days(name, params), existing[name])
            rows[name] += count
            written[name] |= parts
        con.close()
    if rebuild:  # partitions whose rows are all gone
        for name in names:
            for part in existing[name] - written[name]:
                lake.delete(lake.path("marts", name, part, "data.parquet"))
    return rows


FIT_BUCKETS = 36  # the trend of a robot bucket: the 36 buckets (6 hours) before it
AXES = tuple(f"axis{i}" for i in range(1, 9))


def add_robot_bucket_sums(con: duckdb.DuckDBPyConnection) -> None:
    """Register `robot_bucket_sums`, which robot_fits.sql reads: the bucket aggregates of
    sql/helpers/robot_buckets.sql, one row per robot, axis and bucket with moving samples, with
    the sums over the 36 buckets before it in time of its fit's terms (see robot_fits.sql).

    In numpy because a trailing sum over a dense grid is a few shifted additions of whole
    arrays, where DuckDB's window sums (one core, a sort by robot, axis and bucket, 7 frames)
    took 90 % of robot_fits' time. The sums are exact for x and x² (whole numbers under 2^53),
    rounded like any sum for the others."""
    wide = con.sql((SQL_DIR / "helpers" / "robot_buckets.sql").read_text()).to_arrow_table()
    robots, robot_of = np.unique(wide.column("robot_id").to_numpy(zero_copy_only=False), return_inverse=True)
    bucket = wide.column("bucket_no").to_numpy()
    first = np.full(len(robots), np.iinfo(np.int64).max)
    last = np.full(len(robots), np.iinfo(np.int64).min)
    np.minimum.at(first, robot_of, bucket)
    np.maximum.at(last, robot_of, bucket)
    # A dense grid: each robot's buckets from its first to its last, after FIT_BUCKETS empty
    # rows, so that a row's FIT_BUCKETS predecessors are its 6 hours even across gaps in the
    # data, and never another robot's buckets.
    span = last - first + 1 + FIT_BUCKETS
    start = np.cumsum(span) - span + FIT_BUCKETS
    row = start[robot_of] + bucket - first[robot_of]
    n = np.stack([wide.column(f"n_{a}").to_numpy() for a in AXES], axis=1).astype(np.float64)
    mean = np.stack([wide.column(f"y_{a}").to_numpy(zero_copy_only=False) for a in AXES], axis=1)
    var = np.stack([wide.column(f"v_{a}").to_numpy(zero_copy_only=False) for a in AXES], axis=1)
    moving = n > 0
    x = np.where(moving, 2.0 * (bucket - 2629728)[:, None] + 1, 0.0)
    y = np.where(moving, mean, 0.0)
    at, axis = np.nonzero(moving)  # the output rows: (row of `wide`, axis)
    # the terms, (rows, axis) each, zero without moving samples: one at a time, to keep memory low
    terms = {
        "k": lambda: moving.astype(np.float64),
        "sx": lambda: x,
        "sxx": lambda: x * x,
        "sy": lambda: y,
        "sxy": lambda: x * y,
        "sm2": lambda: np.where(moving, n * var, 0.0),
        "sn": lambda: n,
    }
    sums = {}
    grid = np.zeros((int(span.sum()), len(AXES)))
    for name, term in terms.items():
        grid[row] = term()
        sums[name] = trailing_sums(grid, FIT_BUCKETS)[row][at, axis]
    columns = {
        "robot_id": wide.column("robot_id").take(pa.array(at)),
        "axis": pa.array(np.array(AXES)[axis]),
        "bucket_no": bucket[at],
        "samples": wide.column("samples").to_numpy()[at],
        "n": n[at, axis],
        "mean": mean[at, axis],
        "var": var[at, axis],
        "x": x[at, axis],
        **sums,
    }
    con.register("robot_bucket_sums", pa.table(columns))


def trailing_sums(values: np.ndarray, width: int) -> np.ndarray:
    """out[i] = values[i - width:i].sum(axis=0) (rows before the first count as zeros).

    Blocks of 1, 2, 4, ... rows ending at each row, each the sum of two of the one before:
    log2(width) additions of whole arrays, no cumulative sum (which would lose digits)."""
    out = np.zeros_like(values)
    block, spare = values.copy(), np.empty_like(values)  # block[j]: the sum of the `size` rows ending at j
    size, covered = 1, 0  # out[i] holds the `covered` rows before i
    while size <= width:
        if width & size:  # add the block ending just before what out already covers
            out[covered + 1 :] += block[: len(values) - covered - 1]
            covered += size
        spare[:size] = block[:size]
        np.add(block[size:], block[:-size], out=spare[size:])
        block, spare = spare, block
        size *= 2
    return out


PREPARE = {"robot_fits": add_robot_bucket_sums}  # helper tables registered before a table's query runs


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
    label = Partition(first_day).date.strftime("month=%Y-%m")
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
    label = "month=%Y-%m" if partition == "month" else "date=%Y-%m-%d"
    parts = sorted({Partition(d).date.strftime(label) for d in days})
    infos = lake.fs.get_file_info([lake.path("marts", name, part, "data.parquet") for part in parts])
    return {part for part, info in zip(parts, infos, strict=True) if info.type == pafs.FileType.File}


def connect(
    lake: Lake, source: str, paths: list[str], fleet: dict, single_thread: bool = False
) -> duckdb.DuckDBPyConnection:
    """DuckDB with the views a family's SQL reads: raw_<source> (the raw files `paths`), the
    stores and the robots' reference axes."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # a long chunk would draw one into the logs
    if single_thread:
        con.execute("SET threads = 1")
    data = DATASETS[source]
    if lake.local and paths:
        # DuckDB's own Parquet reader scans three times as fast as an Arrow dataset registered
        # in it; the paths carry date=..., which is no column of the data.
        con.read_parquet(paths, hive_partitioning=False).create_view(f"raw_{source}")
    else:
        con.register(f"raw_{source}", ds.dataset(paths, schema=data.schema, filesystem=lake.fs, format="parquet"))
    con.register("stores", stores_table(fleet))
    con.register("robot_axes", robot_axes_table(fleet))
    return con


def stores_table(fleet: dict) -> pa.Table:
    stores = fleet.get("stores", [])
    return pa.table(
        {
            "name": pa.array([s["name"] for s in stores], pa.string()),
            "timezone": pa.array([s["timezone"] for s in stores], pa.string()),
            "doors": pa.array([s["doors"] for s in stores], pa.int32()),
        }
    )


def robot_axes_table(fleet: dict) -> pa.Table:
    """Each robot axis's reference mean and std over whole days (the maker's figures)."""
    rows = [(r["id"], a["name"], a["mean"], a["std"]) for r in fleet.get("robots", []) for a in r["axes"]]
    names = ("robot_id", "axis", "reference_mean", "reference_std")
    types = (pa.string(), pa.string(), pa.float64(), pa.float64())
    return pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})


def _bound(sql: str, params: TransformParams, first_day: int) -> dict:
    """The parameters this query names (DuckDB refuses unused ones)."""
    values = {**asdict(params), "first_date": Partition(first_day).date}
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}


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
) -> tuple[int, set[str]]:
    """Replace the table's partitions (`month=YYYY-MM` or `date=YYYY-MM-DD`) for rows dated
    [first_day, until_day]; returns the rows and the partitions written. `existing` (the
    table's partitions) is kept up to date. With `keep`, a month file keeps its rows dated
    before first_day (an increment mid-month: merge_start made sure the file lists them in
    PART_DATES; or a rebuild's chunk that starts mid-month).

    Door tables by month: a year of six of them is 72 files, not 2,190 (each fsynced)."""
    span = {"first": Partition(first_day).date, "until": Partition(until_day).date}
    # Sorted by partition, then by the leading (key) columns: files compress well and read in order.
    query = f"SELECT * FROM {name} WHERE part_date BETWEEN $first AND $until ORDER BY part_date, 1, 2, 3"
    table = con.sql(query, params=span).to_arrow_table()
    label = "month=%Y-%m" if partition == "month" else "date=%Y-%m-%d"
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
        kept, kept_dates = rows_before(
            lake.read_table(lake.path("marts", name, first_label, "data.parquet")), first_day
        )
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
    # Dictionaries only for text: floats rarely repeat, and a dictionary tried on every float
    # column took most of a robot_fits file's encoding time (4.6 ms instead of 1.8 ms a day).
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]

    def write(file: tuple[str, pa.Table, list]) -> None:
        lake.write_table(lake.path("marts", name, file[0], "data.parquet"), file[1], use_dictionary=text)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, files))
    written = {part for part, _, _ in files}
    existing |= written
    return table.num_rows, written


def add_history(
    lake: Lake, con: duckdb.DuckDBPyConnection, name: str, first_day: int, days: int, existing: set[str]
) -> None:
    """Swap the run's own rows dated [first_day - days, first_day) for the written ones.

    The run computed those dates only from a short look-back (their first hours without
    history); the month files written earlier are complete, which is what a full run sees."""
    if days <= 0:
        return
    since, before = Partition(first_day - days).date, Partition(first_day).date
    earlier = []
    for part in sorted({Partition(d).date.strftime("month=%Y-%m") for d in range(first_day - days, first_day)}):
        table = lake.read_table(lake.path("marts", name, part, "data.parquet")) if part in existing else None
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
