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
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from etl.datasets import DATASETS
from etl.lake import Lake, Partition, day_of
from etl.marts import add_history, mart_partitions, merge_start, next_month, write_mart
from etl.robot_sums import add_robot_bucket_sums
from etl.settings import EtlSettings

SQL_DIR = Path(__file__).with_name("sql")
HELPERS_DIR = SQL_DIR / "helpers"  # helper queries (no marts), such as the tables connect() makes
STATE_KIND = "transform"
# A door-week's tests: 168 hours x 2 tails. An hour's three windows (1, 2, 4 h) share their
# hours, so they count as one test: Bonferroni over all 1008 gave a third of the budget in false
# events on healthy gamma-Poisson counts, the simulator and NAB (docs/analytics.md).
DOOR_TESTS_PER_WEEK = 168 * 2
SMALL_RUN_DAYS = 3  # output days up to which DuckDB runs single-threaded (an increment)
ROBOT_MIN_CHUNK_DAYS = 4  # robot output days computed together: a calendar month, or up to 3 days more


@dataclass(frozen=True)
class TransformParams:
    """The analytics' knobs, bound into the SQL as $name parameters."""

    baseline_weeks: int = 4  # the running mean: this many previous same weekdays (and hours)
    anomaly_weeks: int = 8  # door baselines and dispersions over this many previous same weekdays (and hours)
    anomaly_min_periods: int = 2  # ... judged from this many weeks of history on (their error widens the test)
    anomaly_false_events_per_week: float = 1.0  # the false-alarm budget per door-week that sets anomaly_z
    anomaly_min_change: float = 0.25  # a flagged window and its hour moved at least this much from the baseline
    anomaly_min_visits: float = 5.0  # ... and the window by at least this many visits
    health_failure_rate: float = 0.05  # trailing 30-day share of failed hours that calls for replacement
    health_min_hours: int = 168  # ... judged only on at least a week of hours
    underused_ratio: float = 0.25  # a door under this share of its siblings' median share is underused
    incident_gap_seconds: float = 300.0  # flagged readings of an axis closer than this are one incident
    incident_min_readings: int = 3  # fewer flagged readings than this are noise, not an incident
    maintenance_days: int = 7  # the wear trend is fitted over this many days of bucket means
    maintenance_min_slope: float = 0.02  # sigmas per day: slower than this is no wear trend
    screen_sigmas: float = 3.0  # robot buckets whose mean moved this many standard errors are judged reading by reading

    @property
    def anomaly_z(self) -> float:
        """The score a door hour must exceed: Bonferroni over a door-week's tests (DOOR_TESTS_PER_WEEK),
        so that healthy counts give about the budget of false flags at most, and fewer false
        events (runs of flags)."""
        p = self.anomaly_false_events_per_week / DOOR_TESTS_PER_WEEK
        return NormalDist().inv_cdf(1.0 - p)

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
    unplaced: dict[str, int] = field(default_factory=dict)  # raw door rows of stores the registry lacks
    skipped: list[str] = field(default_factory=list)  # "kind date" of raw partitions outside the window
    window: str = ""  # the plausible window of data, when partitions were skipped

    def line(self) -> str:
        what = f"{len(self.dates)} dates" if self.dates else "nothing new"
        tables = ", ".join(f"{name} {rows:,}" for name, rows in self.tables.items())
        lost = "".join(
            f"\n  not placed: {rows:,} raw door readings of store {store!r}, which the site registry does not "
            "describe (python -m etl sites load, then transform --full)"
            for store, rows in self.unplaced.items()
        )
        skipped = ""
        if self.skipped:
            some = ", ".join(self.skipped[:3]) + (", ..." if len(self.skipped) > 3 else "")
            skipped = f"; skipped {len(self.skipped)} raw partitions outside the plausible window {self.window}: {some}"
        return (
            f"transform{' --full' if self.full else ''}: {what}; {tables or 'no tables written'}; "
            f"{self.seconds:.2f} s{skipped}{lost}"
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
    return {kind: lake.partition_versions(kind) for kind in DATASETS}


def within_window(
    versions: dict[str, dict[str, str]], window: tuple[dt.datetime, dt.datetime]
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The raw partitions dated inside the plausible window, and "kind date" of those outside
    (a row at 9999-12-31 imported by an older version made every transform fail; one at
    2200-01-01 made it compute 175 years of empty days)."""
    first, last = day_of(window[0]), day_of(window[1])
    inside, outside = {}, []
    for kind, dates in versions.items():
        inside[kind] = {d: v for d, v in dates.items() if first <= Partition.from_iso(d).day <= last}
        outside += [f"{kind} {d}" for d in sorted(dates) if d not in inside[kind]]
    return inside, outside


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


def transform(
    lake: Lake,
    params: TransformParams,
    full: bool = False,
    lock_timeout: float = 600.0,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> TransformSummary:
    """Compute the marts from the raw partitions inside `window` (default: EtlSettings'), those
    outside reported in the summary and skipped."""
    began = time.perf_counter()
    summary = TransformSummary(full=full)
    queries = load_queries()
    window = window or EtlSettings().time_window()
    with lake.lock(lock_timeout):
        lake.remove_stale_temporaries()  # every lock held: a killed run's files in what the locks own, others by age
        state = lake.read_state(STATE_KIND)
        versions, summary.skipped = within_window(raw_versions(lake), window)
        if summary.skipped:
            from etl.validate import window_text  # pandas: 0.15 s of start-up, for a message

            summary.window = window_text(window)
        # A new layout of the marts (robot tables went from date to month files) rebuilds them:
        # a rebuild deletes the partitions of the old layout, an increment would keep them.
        layout = {f.prefix: f.partition for f in FAMILIES}
        rebuild = full or state.get("params") != asdict(params) or state.get("layout") != layout
        changed = changed_days({} if rebuild else state.get("raw", {}), versions)
        summary.dates = [Partition(d).date.isoformat() for d in sorted(set().union(*changed.values()))]
        fleet = lake.read_fleet()
        families = [f for f in FAMILIES if changed.get(f.source)]
        # The families read different raw data and write different tables, and DuckDB and Parquet
        # writes release the GIL: side by side, the door tables take no time of their own.
        with ThreadPoolExecutor(max(1, len(families))) as pool:
            runs = [
                pool.submit(run_family, lake, f, queries, params, changed[f.source], versions, rebuild, fleet)
                for f in families
            ]
            for run in runs:  # in FAMILIES order, whichever finishes first
                tables, unplaced = run.result()
                summary.tables.update(tables)
                summary.unplaced.update(unplaced)
        lake.write_state(
            STATE_KIND,
            {"raw": versions, "params": asdict(params), "layout": layout, "last_run": summary.line(),
             "unplaced": summary.unplaced},
        )  # fmt: skip
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
) -> tuple[dict[str, int], dict[str, int]]:
    """Recompute a family's tables from its first changed partition on, chunk by chunk; returns
    the rows written per table, and the raw rows of the run's dates it could not place (door
    readings of a store the site registry lacks: no time zone, no local date)."""
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
    unplaced: dict[str, int] = {}
    # An hourly increment's queries are too small to share between threads, and the two
    # families already keep both cores busy: one thread each saved 10 % of its time.
    single_thread = last + 2 - first_day <= SMALL_RUN_DAYS
    # +2: a store's local date can run a day past the last UTC date
    for first, until in family.chunks(first_day, last + 2):
        from_day = first - family.lookback_days(params)
        paths = [lake.partition_file(family.source, Partition(d)) for d in days if from_day <= d <= until + 1]
        con = connect(lake, family.source, paths, fleet, single_thread)
        if family.source == "doors" and paths:
            for store, count in unplaced_doors(con, first, until).items():
                unplaced[store] = unplaced.get(store, 0) + count
        for name in names:
            if name in PREPARE:
                PREPARE[name](con)
            con.execute(f"CREATE TEMP TABLE {name} AS {queries[name]}", _bound(queries[name], params, first))
            # A month file keeps its rows dated before the chunk, but a rebuild's first chunk
            # replaces what it finds (stale); its later chunks add to the files it wrote.
            keep = not rebuild or first != first_day
            read_back: dict[str, pa.Table] = {}  # month files write_mart read, which add_history needs too
            count, parts = write_mart(lake, con, name, first, until, family.partition, existing[name], keep, read_back)
            add_history(lake, con, name, first, family.history_days(name, params), existing[name], read_back)
            rows[name] += count
            written[name] |= parts
        con.close()
    if rebuild:  # partitions whose rows are all gone
        for name in names:
            for part in existing[name] - written[name]:
                lake.delete(lake.mart_file(name, part))
            lake.remove_empty_folders("marts", name)
    return rows, unplaced


def unplaced_doors(con: duckdb.DuckDBPyConnection, first: int, until: int) -> dict[str, int]:
    """store -> raw readings dated [first, until] (UTC) that door_hourly_sensor cannot place."""
    found = con.execute(
        "SELECT store, count(*) FROM raw_doors WHERE store NOT IN (SELECT name FROM stores) "
        "AND CAST(ts AS DATE) BETWEEN $first AND $until GROUP BY store ORDER BY store",
        {"first": Partition(first).date, "until": Partition(until).date},
    ).fetchall()
    return dict(found)


PREPARE = {"robot_fits": add_robot_bucket_sums}  # helper tables registered before a table's query runs


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
        import pyarrow.dataset as ds  # a remote lake's only: its import is start-up time

        con.register(f"raw_{source}", ds.dataset(paths, schema=data.schema, filesystem=lake.fs, format="parquet"))
    con.execute(HELPERS_DIR.joinpath("stores.sql").read_text(), stores_columns(fleet))
    con.execute(HELPERS_DIR.joinpath("robot_axes.sql").read_text(), robot_axes_columns(fleet))
    return con


def stores_columns(fleet: dict) -> dict[str, list]:
    """The registry's stores as helpers/stores.sql's list parameters, column by column."""
    stores = fleet.get("stores", [])
    return {key: [s[key] for s in stores] for key in ("name", "timezone", "doors")}


def robot_axes_columns(fleet: dict) -> dict[str, list]:
    """Each robot axis's reference mean and std over whole days (the maker's figures), as
    helpers/robot_axes.sql's list parameters."""
    rows = [(r["id"], a["name"], a["mean"], a["std"]) for r in fleet.get("robots", []) for a in r["axes"]]
    names = ("robot_id", "axis", "reference_mean", "reference_std")
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def _bound(sql: str, params: TransformParams, first_day: int) -> dict:
    """The parameters this query names (DuckDB refuses unused ones)."""
    values = {**asdict(params), "anomaly_z": params.anomaly_z, "first_date": Partition(first_day).date}
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}
