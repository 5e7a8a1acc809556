"""Incremental extract-load: API pages -> validated rows -> date partitions, exactly once.

The watermark of a data set is the instant up to which the lake holds every reading.
It moves only after the pages below it are durable, and only forward from where it
stands (a backfill of older data never moves it, a gap never lets it jump).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from etl.client import ApiClient, Page, iso, parse_iso
from etl.datasets import Dataset
from etl.lake import Lake
from etl.progress import Progress
from etl.settings import EtlSettings
from etl.sites import normalise, register
from etl.validate import validate, window_text

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
RECENT_RUNS = 20
MB = 1 << 20
# Page sizing (page_rows), measured: a doors pull at 10x the doors (8 months of 2024, whole process)
# peaked at about 175 MB plus 190 bytes a page row (6 x row_bytes) for pages of 50,000 - 2,000,000 rows.
# The constants keep a margin: with the default 1 GB a page could hold 3.1 M door rows (about 730 MB).
BASE_MB = 256
PAGE_COPIES = 8
TEXT_BYTES = 12  # a store's or robot's name


@dataclass
class RunSummary:
    kind: str
    command: str
    start: str | None = None
    end: str | None = None
    rows: int = 0
    partitions: list[str] = field(default_factory=list)
    quarantined: int = 0
    retries: int = 0
    seconds: float = 0.0
    watermark: str | None = None
    status: str = "running"
    finished_at: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined rows per reason
    notes: list[str] = field(default_factory=list)  # what a user should know of what was loaded

    def line(self) -> str:
        span = f" {self.start} .. {self.end}" if self.start else ""
        why = "".join(f"\n  quarantined {n:,}: {reason}" for reason, n in self.reasons.items())
        notes = "".join(f"\n  note: {note}" for note in self.notes)
        return (
            f"{self.command} {self.kind}: {self.rows:,} rows, {len(self.partitions)} partitions, "
            f"{self.quarantined:,} quarantined, {self.retries} retries, {self.seconds:.1f} s;{span}; "
            f"watermark {self.watermark or 'none'}{why}{notes}"
        )


def floor_hour(value: dt.datetime) -> dt.datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def pages(start: dt.datetime, end: dt.datetime, hours: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut at UTC midnights into pages of at most `hours` hours: whole days when a
    page holds a day or more, else pieces of a day starting at midnight, every `hours` hours."""
    out = []
    cursor = start
    step = (hours // 24) * DAY if hours >= 24 else hours * HOUR
    while cursor < end:
        midnight = cursor.replace(hour=0, minute=0, second=0, microsecond=0)
        if hours >= 24:
            stop = midnight + step
        else:  # the next cut after the cursor, and never past the day's end
            stop = min(midnight + step * ((cursor - midnight) // step + 1), midnight + DAY)
        out.append((cursor, min(end, stop)))
        cursor = min(end, stop)
    return out


def page_rows(data: Dataset, settings: EtlSettings) -> int:
    """Rows per request: as many as the memory budget holds, ETL_PAGE_ROWS at most.

    A page is alive in about PAGE_COPIES forms at once (the next page being fetched, the body,
    the decoded and validated tables, the day's old rows, the sorted partition being encoded),
    each of about `row_bytes` a row; the interpreter and its libraries take BASE_MB."""
    spare = max(0, settings.memory_budget_mb - BASE_MB) * MB
    return max(1, min(settings.page_rows, spare // (PAGE_COPIES * row_bytes(data.schema))))


def row_bytes(schema: pa.Schema) -> int:
    """Bytes of one row in Arrow: fixed widths, and offsets plus a short text for a string."""
    return sum(f.type.byte_width if pa.types.is_primitive(f.type) else 4 + TEXT_BYTES for f in schema)


def rows_per_hour(data: Dataset, sites: dict | None) -> int:
    """The fleet's rows in an hour, from the site registry (the fleet's width, not the default
    fleet's): one a door, or 3600 / sample_seconds a robot. Without a registry: the data set's hint."""
    if data.kind == "doors":
        rows = sum(int(s.get("doors", 0)) for s in (sites or {}).get("stores", []))
    else:
        rows = sum(3600 // max(1, int(r.get("sample_seconds") or 1)) for r in (sites or {}).get("robots", []))
    return max(1, rows or data.rows_per_day_hint // 24)


def pull(
    client: ApiClient,
    lake: Lake,
    data: Dataset,
    settings: EtlSettings,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Pull [start, end) of one data set (defaults: from the watermark to the API's clock)."""
    began = time.perf_counter()
    window = settings.time_window()
    check_window(window, start=start, end=end)
    summary = RunSummary(data.kind, "pull")
    retries_before = client.retries_used
    with lake.lock(settings.lock_timeout, data.kind):
        try:
            lake.remove_stale_temporaries(data.kind)
            state = lake.read_state(data.kind)
            watermark = watermark_of(state)
            summary.watermark = state.get("watermark")
            clock = client.data_clock()
            sites = save_fleet(client, lake, data.kind)
            limit = clock["doors_until"] if data.kind == "doors" else clock["now"]
            if start is None:
                start = watermark or first_start(limit, settings.first_pull_days, window)
            end = min(end or limit, limit, window[1])  # an API clock past the window: up to its end
            summary.start, summary.end = iso(start), iso(max(start, end))
            if start < end:
                _pull_pages(client, lake, data, settings, start, end, summary, state, progress, sites)
            summary.status = "ok"
        except BaseException as exc:
            summary.status = f"failed: {exc}"
            raise
        finally:
            summary.retries = client.retries_used - retries_before
            summary.seconds = round(time.perf_counter() - began, 3)
            summary.finished_at = iso(dt.datetime.now(dt.UTC))
            record_run(lake, data.kind, summary)
    return summary


def check_window(window: tuple[dt.datetime, dt.datetime], **instants: dt.datetime | None) -> None:
    """Refuse a pull's start or end outside the plausible window of data (a bad input)."""
    for name, value in instants.items():
        if value is not None and not window[0] <= value <= window[1]:
            raise ValueError(f"{name} {iso(value)} is outside the plausible window {window_text(window)}")


def first_start(limit: dt.datetime, days: float, window: tuple[dt.datetime, dt.datetime]) -> dt.datetime:
    """Where a lake's first pull starts: `days` back from the API's clock, not before the window."""
    if limit <= window[0] or (limit - window[0]) / DAY <= days:
        return window[0]
    return floor_hour(limit - dt.timedelta(days=days))


def _pull_pages(client, lake, data, settings, start, end, summary, state, progress, sites) -> None:
    hours = max(1, page_rows(data, settings) // rows_per_hour(data, sites))  # an hour's rows at least
    todo = pages(start, end, hours)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    if progress:
        progress.start(f"pull {data.kind}", len(todo))
    # Fetch the next page while this one is validated and written: the API and the disk overlap.
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(client.readings, data, *todo[0])
        for number, (page_start, page_end) in enumerate(todo):
            page: Page = upcoming.result()
            if number + 1 < len(todo):
                upcoming = pool.submit(client.readings, data, *todo[number + 1])
            page_end = min(page_end, max(page_start, page.until))
            load_page(lake, data, page.table, page_start, page_end, summary, f"{run_id}-{number:05d}", sites)
            advance_watermark(lake, data.kind, state, page_start, page_end, summary)
            if progress:
                progress.update(number + 1, summary.rows)
            if page_end < todo[number][1]:
                break  # the API's clock stops here
    if progress:
        progress.finish()


def save_fleet(client: ApiClient, lake: Lake, owner: str) -> dict:
    """Merge the API's fleet (stores with time zones, robots) into the lake's site registry
    (etl/sites.py): transforms need each store's time zone, and the lake must be readable without
    the API. Sites loaded by hand stay as they were. Returns the registry."""
    fleet = client.get_json("/v1/fleet")
    # both pulls write it side by side: each owns its temporary file (Lake.write_bytes)
    return register(lake, {**normalise(fleet, "api"), "seed": fleet.get("seed")}, owner)


def load_page(
    lake: Lake,
    data: Dataset,
    table: pa.Table,
    start: dt.datetime,
    end: dt.datetime,
    summary: RunSummary,
    name: str,
    sites: dict | None = None,
) -> None:
    checked = validate(table, data, start, end, sites=sites)
    written = lake.replace_interval(data, checked.good, start, end)
    summary.rows += checked.good.num_rows
    summary.partitions.extend(p.date.isoformat() for p in written if p.date.isoformat() not in summary.partitions)
    quarantine(lake, data.kind, checked.bad, name)
    summary.quarantined += checked.bad.num_rows
    for reason, n in reason_counts(checked.bad).items():
        summary.reasons[reason] = summary.reasons.get(reason, 0) + n


def reason_counts(bad: pa.Table) -> dict[str, int]:
    """Quarantined rows per reason, the most frequent first."""
    if not bad.num_rows:
        return {}
    counts = bad.group_by("reason").aggregate([("reason", "count")]).sort_by([("reason_count", "descending")])
    return dict(zip(counts.column("reason").to_pylist(), counts.column("reason_count").to_pylist(), strict=True))


def quarantine(lake: Lake, kind: str, bad: pa.Table, name: str) -> None:
    if bad.num_rows == 0:
        return
    stamp = pa.array([iso(dt.datetime.now(dt.UTC))] * bad.num_rows, pa.string())
    lake.write_table(lake.path("quarantine", kind, f"{name}.parquet"), bad.append_column("quarantined_at", stamp))


def watermark_of(state: dict) -> dt.datetime | None:
    """A data set's watermark from its lake state: every reading before it is in the lake."""
    return parse_iso(state["watermark"]) if state.get("watermark") else None


def advance_watermark(
    lake: Lake, kind: str, state: dict, start: dt.datetime, end: dt.datetime, summary: RunSummary
) -> None:
    current = watermark_of(state)
    if current is None or start <= current < end:
        state["watermark"] = iso(end)
        lake.write_state(kind, {**lake.read_state(kind), "watermark": state["watermark"]})
    summary.watermark = state.get("watermark")


def record_run(lake: Lake, kind: str, summary: RunSummary) -> None:
    state = lake.read_state(kind)
    runs = [asdict(summary), *state.get("runs", [])][:RECENT_RUNS]
    for run in runs:
        run["partitions"] = len(run["partitions"]) if isinstance(run["partitions"], list) else run["partitions"]
    lake.write_state(kind, {**state, "runs": runs})
