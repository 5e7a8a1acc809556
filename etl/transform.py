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

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from etl.datasets import DATASETS
from etl.lake import Lake, Partition, day_of
from etl.marts import (
    MartWriter,
    add_history,
    mart_partitions,
    merge_start,
    next_month,
    partition_label,
    write_mart,
)
from etl.robot_sums import add_robot_bucket_sums
from etl.settings import EtlSettings
from etl.units import Share, Unit, cores, plan_units, share

SQL_DIR = Path(__file__).with_name("sql")
HELPERS_DIR = SQL_DIR / "helpers"  # helper queries (no marts), such as the tables connect() makes
STATE_KIND = "transform"
# A door-week's tests: 168 hours x 2 tails. An hour's three windows (1, 2, 4 h) share their
# hours, so they count as one test: Bonferroni over all 1008 gave a third of the budget in false
# events on healthy gamma-Poisson counts, the simulator and NAB (docs/analytics.md).
DOOR_TESTS_PER_WEEK = 168 * 2
SMALL_RUN_DAYS = 3  # output days up to which DuckDB runs single-threaded (an increment) ...
SMALL_RUN_ROWS = 200_000  # ... when its units read no more raw rows than this: the default fleet's
# increment reads 56,000 with its look-back; a 10x fleet's (560,000) took 1.8 s on one thread, 1.4 s on two
MIN_CHUNK_DAYS = 4  # output days of a month piece: a calendar month, or up to 3 days more
RUN_KIND = "transform-run"  # _state/transform-run.json: the plan of the run in progress, its claim on the lake
SPILL_ROOT = "_tmp/transform"  # DuckDB's spill folders on a local lake, one per unit


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
    # A table named in a comment is no reference (one comment made the door queries' order circular)
    code = {n: without_comments(sql) for n, sql in queries.items()}
    needs = {n: {m for m in queries if m != n and re.search(rf"\b{m}\b", code[n])} for n in queries}
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

    def lookback_days(self, params: TransformParams, history: bool = False) -> int:
        """Raw days before its first output date a chunk reads. Robot fits reach 6 hours back,
        incidents minutes; door windows 8 weeks. The maintenance trend's days of robot_fits come
        from the files already written (see history_days), or with `history` from raw data: a
        chunk whose earlier days another unit is writing computes them itself."""
        if self.source != "robots":
            return params.lookback_days
        return 2 + (params.maintenance_days if history else 0)

    def history_days(self, name: str, params: TransformParams) -> int:
        """Days of a table's earlier partitions that later queries of the run read back."""
        return params.maintenance_days if name == "robot_fits" else 0

    def chunks(self, first: int, end: int) -> list[tuple[int, int]]:
        """[first, end) in calendar months, as (first, until) inclusive: the pieces units are
        made of (etl/units.py), so that each month file is written by one unit. A piece of
        fewer than MIN_CHUNK_DAYS (a rebuild from 31 December, an increment across a month's
        end, the day after the last) goes with the month next to it."""
        cuts = [first]
        cut = next_month(first)
        while cut < end:
            if cut - cuts[-1] >= MIN_CHUNK_DAYS:
                cuts.append(cut)
            cut = next_month(cut)
        if len(cuts) > 1 and end - cuts[-1] < MIN_CHUNK_DAYS:
            cuts.pop()  # the days past the last month's end (+2 in family_span's caller) go with it
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
    settings: EtlSettings | None = None,
    at_once: int = 0,
) -> TransformSummary:
    """Compute the marts from the raw partitions inside `window` (default: the settings'), those
    outside reported in the summary and skipped: the run's units `at_once` at a time (0: one with
    every core, an increment's tiny units side by side), sharing the settings' memory budget and
    the cores, under one lock and one commit."""
    began = time.perf_counter()
    settings = settings or EtlSettings()
    window = window or settings.time_window()
    with lake.lock(lock_timeout):
        plan = start_run(lake, params, full, window, settings.memory_budget_mb, at_once, in_order=True)
        with ThreadPoolExecutor(plan["share"]["at_once"]) as pool:
            # DuckDB and Parquet writes release the GIL: threads, one process, one budget
            results = list(pool.map(lambda index: run_unit(lake, plan, index), range(len(plan["units"]))))
        summary = commit_run(lake, plan, results)
    summary.seconds = round(time.perf_counter() - began, 3)
    return summary


class RunSuperseded(RuntimeError):
    """A later plan claimed the lake: this run's units and commit must stop."""


def start_run(
    lake: Lake,
    params: TransformParams,
    full: bool,
    window: tuple[dt.datetime, dt.datetime],
    budget_mb: int,
    at_once: int = 0,
    in_order: bool = False,
) -> dict:
    """Plan a run (what changed, its units) and claim the lake for it in _state/transform-run.json,
    which supersedes any run planned before (its units and commit then stop). Call it holding
    every lock; the plan is JSON, for units run elsewhere (Airflow's mapped tasks). `in_order`:
    the caller runs the units one at a time in the plan's order (transform() with one at once),
    so a chunk may read its look-back from the files the chunks before it wrote."""
    lake.remove_stale_temporaries()  # every lock held: a killed run's files in what the locks own, others by age
    remove_spill_folders(lake)
    state = lake.read_state(STATE_KIND)
    versions, skipped = within_window(raw_versions(lake), window)
    # A new layout of the marts (robot tables went from date to month files) rebuilds them:
    # a rebuild deletes the partitions of the old layout, an increment would keep them.
    layout = {f.prefix: f.partition for f in FAMILIES}
    rebuild = full or state.get("params") != asdict(params) or state.get("layout") != layout
    changed = changed_days({} if rebuild else state.get("raw", {}), versions)
    fleet = lake.read_fleet()
    # By default one unit at a time with every core: units side by side each get a share of the
    # budget, so more and smaller units, each reading its look-back again (measured 1.2 - 2.2 x
    # slower on 2 cores: docs/benchmarks.md). An hourly increment's tiny units do go side by side.
    split = share(budget_mb, at_once or 1)
    families, units, reads = {}, [], {}
    for family in FAMILIES:
        if not changed.get(family.source):
            continue
        first_day, last, rows_read = family_span(lake, family, params, changed[family.source], versions, rebuild, fleet)
        families[family.source], reads[family.source] = {"first_day": first_day}, rows_read
        pieces = family.chunks(first_day, last + 2)
        units += plan_units(family.source, pieces, rows_read, split.unit_rows, family.lookback_days(params))
    small = [u.until - u.first < SMALL_RUN_DAYS and reads[u.source](u.first, u.until) <= SMALL_RUN_ROWS for u in units]
    if not at_once and units and all(small):
        split = Share(min(cores(), len(units)), 1, split.unit_mb)
    plan = {
        "run_id": uuid.uuid4().hex,
        "started": time.time(),  # the summary's seconds, when units ran elsewhere
        "full": full,
        "rebuild": rebuild,
        "params": asdict(params),
        "layout": layout,
        "versions": versions,
        "dates": [Partition(d).date.isoformat() for d in sorted(set().union(*changed.values()))],
        "skipped": skipped,
        "window": skipped_window_text(window) if skipped else "",
        "families": families,
        "share": asdict(split),
        "in_order": in_order and split.at_once == 1,
        "units": [u.as_dict() for u in units],
    }
    lake.write_state(RUN_KIND, plan)
    return plan


def family_span(
    lake: Lake, family: Family, params: TransformParams, changed: set[int], versions: dict, rebuild: bool, fleet: dict
) -> tuple[int, int, Callable[[int, int], int]]:
    """A family's first output date, its last raw date, and rows_read(first, until): the raw rows
    (Parquet footers, counted once) that computing those output dates reads."""
    days = sorted(Partition.from_iso(d).day for d in versions[family.source])
    last = days[-1] if days else 0
    first_day = family.first_day(changed, fleet)
    if family.partition == "month" and not rebuild:
        first_day = merge_start(lake, family_tables(family), first_day)
    counts: dict[int, int] = {}
    present = set(days)

    def rows_of(day: int) -> int:
        if day not in counts:
            counts[day] = lake.row_count(lake.partition_file(family.source, Partition(day))) if day in present else 0
        return counts[day]

    def rows_read(first: int, until: int) -> int:
        reach = family.lookback_days(params, history=first != first_day)
        return sum(rows_of(d) for d in range(first - reach, until + 2))

    return first_day, last, rows_read


def skipped_window_text(window: tuple[dt.datetime, dt.datetime]) -> str:
    from etl.validate import window_text  # pandas: 0.15 s of start-up, for a message

    return window_text(window)


def family_tables(family: Family) -> list[str]:
    return [n for n in load_queries() if n.startswith(family.prefix)]


def check_claim(lake: Lake, run_id: str) -> dict:
    """The run's plan, while no later plan has claimed the lake."""
    plan = lake.read_state(RUN_KIND)
    if plan.get("run_id") != run_id:
        holder = plan.get("run_id") or "none (committed or removed)"
        raise RunSuperseded(
            f"transform run {run_id} was superseded: the lake's claim is {holder}; nothing of it committed"
        )
    return plan


def run_unit(lake: Lake, plan: dict, index: int) -> dict:
    """Compute one unit of a plan: its family's tables for its output days, chunk by chunk;
    returns the rows and partitions written per table, and the raw door rows it could not place
    (readings of a store the site registry lacks: no time zone, no local date). Writes only the
    unit's own month files, so units run side by side; safe to repeat (a retried task)."""
    unit = Unit.from_dict(plan["units"][index])
    family = next(f for f in FAMILIES if f.source == unit.source)
    params = TransformParams(**plan["params"])
    queries = load_queries()
    names = family_tables(family)
    fleet = lake.read_fleet()
    run_first, rebuild = plan["families"][unit.source]["first_day"], plan["rebuild"]
    days = sorted(Partition.from_iso(d).day for d in plan["versions"][unit.source])
    history = max(family.history_days(n, params) for n in names)
    reach = range(unit.first - history, unit.until + 1)
    existing = {n: mart_partitions(lake, n, family.partition, reach) for n in names}
    result = {"run_id": plan["run_id"], "unit": index, "source": unit.source, "tables": dict.fromkeys(names, 0),
              "written": {n: [] for n in names}, "unplaced": {}}  # fmt: skip
    split = Share(**plan["share"])
    # An hourly increment's queries are too small to share between threads (one each saved 10 %):
    # start_run gives such a run's units one thread each, side by side
    threads = split.threads
    spill = spill_folder(lake, plan["run_id"], index)
    try:
        for first, until in unit.chunks:
            check_claim(lake, plan["run_id"])  # a later plan took over: stop before writing more
            # The run's first chunk swaps in its history from the files written before the run;
            # a later chunk computes it from raw data, as the files before it may be another
            # unit's, being rewritten right now.
            written_history = first == run_first
            from_day = first - family.lookback_days(params, history=not written_history)
            # The files before the chunk are final: the increment's (written by earlier runs), or,
            # when units run in order, the ones this run's earlier chunks wrote (a rebuild's first
            # chunk has no files before it that are this run's).
            final_before = (written_history and not rebuild) or (plan.get("in_order") and not written_history)
            doors = family.source == "doors"
            history = door_history(lake, days, from_day, first) if doors and final_before else None
            raw_from = first if history is not None else from_day
            paths = [lake.partition_file(family.source, Partition(d)) for d in days if raw_from <= d <= until + 1]
            con = connect(lake, family.source, paths, fleet, threads == 1,
                          threads=threads, memory_mb=split.duckdb_mb, spill_dir=spill)  # fmt: skip
            try:
                if doors:
                    add_door_history(con, history or [], from_day, first)
                # A chunk's files are all written before the next chunk, which may read them
                with MartWriter(lake) as writer:
                    for name in names:
                        count, parts = compute_table(
                            lake, con, family, name, queries[name], params, (first, until), existing[name],
                            keep=not rebuild or first != run_first, history=written_history, writer=writer,
                        )  # fmt: skip
                        result["tables"][name] += count
                        result["written"][name] = sorted(set(result["written"][name]) | parts)
                if doors and paths:
                    for store, count in unplaced_doors(con, first, until, raw_from).items():
                        result["unplaced"][store] = result["unplaced"].get(store, 0) + count
            finally:
                con.close()
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return result


def compute_table(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    family: Family,
    name: str,
    sql: str,
    params: TransformParams,
    days: tuple[int, int],
    existing: set[str],
    keep: bool,
    history: bool,
    writer: MartWriter | None = None,
) -> tuple[int, set[str]]:
    """Run one table's query for output days [first, until] and write its partitions; `keep`: a
    month file keeps its rows dated before the chunk (an increment, a later chunk); `history`:
    swap in the table's earlier days from the files written (see add_history); `writer`: the
    chunk's MartWriter, which may still be writing the files on return."""
    first, until = days
    if name in PREPARE:
        PREPARE[name](con)
    con.execute(f"CREATE TEMP TABLE {name} AS {sql}", _bound(sql, params, first))
    read_back: dict[str, pa.Table] = {}  # month files write_mart read, which add_history needs too
    count, parts = write_mart(lake, con, name, first, until, family.partition, existing, keep, read_back, writer)
    if history:
        if writer:
            writer.finish()  # add_history reads the table's month files
        add_history(lake, con, name, first, family.history_days(name, params), existing, read_back)
    return count, parts


def commit_run(lake: Lake, plan: dict, results: list[dict]) -> TransformSummary:
    """Commit a run whose every unit succeeded: delete what a rebuild no longer writes, record
    the raw versions seen (the state) and release the claim. Call it holding every lock."""
    check_claim(lake, plan["run_id"])
    done = sorted(r["unit"] for r in results if r["run_id"] == plan["run_id"])
    if done != list(range(len(plan["units"]))):
        raise RuntimeError(f"transform run {plan['run_id']}: units {done} of {len(plan['units'])} done; not committed")
    summary = TransformSummary(full=plan["full"], dates=plan["dates"], skipped=plan["skipped"], window=plan["window"])
    summary.seconds = round(time.time() - plan["started"], 3)
    for family in FAMILIES:
        if family.source not in plan["families"]:
            continue
        names = family_tables(family)
        written: dict[str, set[str]] = {n: set() for n in names}
        summary.tables.update(dict.fromkeys(names, 0))
        for result in (r for r in results if r["source"] == family.source):
            for name in names:
                summary.tables[name] += result["tables"][name]
                written[name] |= set(result["written"][name])
            for store, count in result["unplaced"].items():
                summary.unplaced[store] = summary.unplaced.get(store, 0) + count
        for name in names:
            if plan["rebuild"]:  # partitions whose rows are all gone
                for part in mart_partitions(lake, name, family.partition) - written[name]:
                    lake.delete(lake.mart_file(name, part))
                lake.remove_empty_folders("marts", name)
    lake.write_state(
        STATE_KIND,
        {"raw": plan["versions"], "params": plan["params"], "layout": plan["layout"], "last_run": summary.line(),
         "unplaced": summary.unplaced},
    )  # fmt: skip
    lake.delete(lake.state_path(RUN_KIND))
    remove_spill_folders(lake)
    return summary


def spill_folder(lake: Lake, run_id: str, index: int) -> str:
    """Where a unit's DuckDB spills past its memory_limit: under the lake's _tmp/transform/ on a
    local lake (a killed run's spills go with the next run's start), else the machine's temp."""
    if lake.local:
        folder = lake.path(SPILL_ROOT, f"{run_id}-{index}")
        os.makedirs(folder, exist_ok=True)
        return folder
    return tempfile.mkdtemp(prefix=f"transform-{run_id}-{index}-")


def remove_spill_folders(lake: Lake) -> None:
    """A killed or superseded run's spill folders (a new plan or a commit holds every lock)."""
    if lake.local:
        shutil.rmtree(lake.path(SPILL_ROOT), ignore_errors=True)
        with contextlib.suppress(OSError):  # other temporaries there
            os.rmdir(lake.path(SPILL_ROOT.split("/")[0]))


def door_history(lake: Lake, days: list[int], from_day: int, first: int) -> list[str] | None:
    """The door_hourly_sensor month files holding a chunk's look-back [from_day, first), or None
    when a month with raw readings in it has no file (then the look-back comes from raw).

    A chunk whose earlier files are final (run_unit says when) reads its 8 weeks of look-back as
    those files have it instead of from raw readings: the rows before its first date are the ones
    computed from the same raw data (an increment's changes are all from `first` on), and the
    files' local dates and hours spare the time-zone conversion of 58 days of readings (at 100 x
    the doors, 5.4 M of them)."""
    if not lake.local:  # DuckDB reads a local lake's files itself
        return None
    raw_days = [d for d in days if from_day <= d < first]
    months = {partition_label(d, "month") for d in raw_days}
    if mart_partitions(lake, "door_hourly_sensor", "month", raw_days) != months:
        return None
    return [lake.mart_file("door_hourly_sensor", month) for month in sorted(months)]


def add_door_history(con: duckdb.DuckDBPyConnection, files: list[str], from_day: int, first: int) -> None:
    """The view door_hourly_history that door_hourly_sensor.sql adds to its readings: the rows of
    `files` dated [from_day, first) (see door_history), or none."""
    span = {"from": Partition(from_day).date, "first": Partition(first).date}
    if files:
        view = con.read_parquet(files, hive_partitioning=False).filter(
            f"ts >= DATE '{span['from']}' AND ts < DATE '{span['first']}'"
        )
    else:
        view = con.sql(HISTORY_EMPTY)
    view.select("ts, store, sensor_id, visits, local_date, local_hour, weekday").create_view("door_hourly_history")


# door_hourly_history's shape when a chunk reads its look-back from raw readings
HISTORY_EMPTY = (
    "SELECT NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS store, NULL::INTEGER AS sensor_id, NULL::INTEGER AS visits, "
    "NULL::DATE AS local_date, NULL::BIGINT AS local_hour, NULL::BIGINT AS weekday WHERE false"
)


def unplaced_doors(con: duckdb.DuckDBPyConnection, first: int, until: int, raw_from: int) -> dict[str, int]:
    """store -> raw readings dated [first, until] (UTC) that door_hourly_sensor could not place
    (call it after that table): none when it holds a row for every raw reading the chunk read
    (those dated from raw_from, its look-back's rows being before), which the Parquet footers
    count without a second scan of the readings."""
    read = con.execute("SELECT count(*) FROM raw_doors").fetchall()[0][0]
    placed = con.execute(
        "SELECT count(*) FROM door_hourly_sensor WHERE ts >= $since", {"since": Partition(raw_from).date}
    ).fetchall()[0][0]
    if read == placed:
        return {}
    found = con.execute(
        "SELECT store, count(*) FROM raw_doors WHERE store NOT IN (SELECT name FROM stores) "
        "AND CAST(ts AS DATE) BETWEEN $first AND $until GROUP BY store ORDER BY store",
        {"first": Partition(first).date, "until": Partition(until).date},
    ).fetchall()
    return dict(found)


PREPARE = {"robot_fits": add_robot_bucket_sums}  # helper tables registered before a table's query runs


def connect(
    lake: Lake,
    source: str,
    paths: list[str],
    fleet: dict,
    single_thread: bool = False,
    threads: int = 0,
    memory_mb: int = 0,
    spill_dir: str = "",
) -> duckdb.DuckDBPyConnection:
    """DuckDB with the views a family's SQL reads: raw_<source> (the raw files `paths`), the
    stores, the robots' reference axes and the macro slot_history; `threads`, `memory_mb` (its
    memory_limit) and `spill_dir` (where it spills past it): a unit's share of the machine
    (etl/units.py)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # a long chunk would draw one into the logs
    if single_thread or threads:
        con.execute(f"SET threads = {1 if single_thread else int(threads)}")
    if memory_mb:
        con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
    if spill_dir:
        con.execute("SET temp_directory = '{}'".format(spill_dir.replace("'", "''")))
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
    con.execute(HELPERS_DIR.joinpath("slot_history.sql").read_text())
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
    """The parameters this query's code names (DuckDB refuses unused ones: one named only in a
    comment made the query fail)."""
    values = {**asdict(params), "anomaly_z": params.anomaly_z, "first_date": Partition(first_day).date}
    code = without_comments(sql)
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", code)}


def without_comments(sql: str) -> str:
    """The SQL less its -- comments, where a table's or parameter's name is no reference."""
    return re.sub(r"--[^\n]*", "", sql)
