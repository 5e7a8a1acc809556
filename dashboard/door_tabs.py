"""The store owner's and the maintenance engineer's door tabs: traffic, trends, tables, sensor health."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import streamlit as st

from dashboard import charts, labels, queries, source
from dashboard.queries import DoorFilters
from dashboard.source import Listing

FAILURE_RATE_WARNING = 0.05  # TransformParams.health_failure_rate: the marts' replacement threshold
MIN_TREND_DAYS = 28  # four of each weekday: fewer days give a slope of noise (-300 % from 5 days)
TABLE_NAMES = {
    "door_hourly_sensor": "Visits per door and hour",
    "door_hourly_store": "Visits per store and hour",
    "door_daily_sensor": "Visits per door and day",
    "door_daily_store": "Visits per store and day",
}
NO_DOOR_DATA = "No door data yet: pull and transform a lake (`python -m etl pull`, `python -m etl transform`)."


def usable(f: DoorFilters | None) -> bool:
    """Say why nothing can be shown, or True."""
    if f is None:
        st.info(NO_DOOR_DATA)
        return False
    if not f.stores or not f.weekdays:
        st.info("Choose at least one store and one weekday in the sidebar.")
        return False
    return True


def store_order(src: Listing) -> list[str]:
    return source.fleet_stores(src, list(queries.door_overview(src).store))


def traffic_tab(src: Listing, f: DoorFilters | None) -> None:
    st.header("Traffic")
    if not usable(f):
        return
    flagged = queries.anomalies(src, f)
    lines = queries.traffic(src, f, strongest_series(flagged))
    if f.resolution == "day" and (lines.empty or lines.visits.isna().all()):
        # Daily lines leave partial days out: a lake of a few hours has none. Its hours still show.
        st.info("No whole day in this range yet (a lake's first and last days are partial): showing its hours.")
        f = dataclasses.replace(f, resolution="hour")
        flagged = queries.anomalies(src, f)
        lines = queries.traffic(src, f, strongest_series(flagged))
    if lines.empty or lines.visits.isna().all():
        st.info(f"No visits for these filters between {f.first} and {f.last}.")
        return
    bucket = f.bucket_hours()
    unit = 24 if f.resolution == "day" else 1
    if bucket > unit:
        st.caption(f"Each point sums {bucket // unit} {'days' if unit == 24 else 'hours'} (at most "
                   f"{queries.MAX_POINTS:,} points a line).")  # fmt: skip
    # A mark sits on its line's point: flags on points the chart leaves out (partial days) are counted apart.
    marks = flagged.merge(lines[["series", "period", "visits", "baseline"]], on=["series", "period"])
    marks = marks[marks.visits.notna()]  # Vega draws no mark without a y: neither is it counted
    # Flags on series the chart leaves out (past MAX_FLAGGED_SERIES) are listed and counted, not drawn.
    undrawn = flagged[~flagged.series.isin(lines.series)]
    st.altair_chart(charts.traffic(lines, marks, store_order(src)), width="stretch")
    if lines.series.nunique() >= queries.MAX_SERIES or len(undrawn):
        st.caption(f"The {queries.MAX_SERIES} busiest series and the {queries.MAX_FLAGGED_SERIES} series with the "
                   "strongest anomalies; pick a door or fewer stores to see others.")  # fmt: skip
    st.caption(
        "Solid: visits. Dashed: the usual, the mean of the same weekday (and hour) over the previous 4 weeks. "
        + ("Daily lines leave out partial days (a lake's first and last day, still filling). " if unit == 24 else "")
        + "Hollow circle: warning; filled diamond: critical."
    )
    failed = int((lines.failed.fillna(0) > 0).sum())
    if failed:
        st.caption(f"{failed:,} points include failed door-hours, counted as 0 visits (hover a point for how many; "
                   "Sensor health names the doors).")  # fmt: skip
    listed = pd.concat([marks, undrawn]) if len(undrawn) else marks
    st.subheader(f"Anomalies ({len(listed)})")
    if len(undrawn):
        st.caption(f"{len(undrawn):,} of them on {undrawn.series.nunique():,} series the chart does not draw "
                   "(listed without visits).")  # fmt: skip
    if len(flagged) > len(listed):
        st.caption(f"{len(flagged) - len(listed)} more flagged on partial days, which the daily chart leaves out: "
                   "switch to hourly to see them.")  # fmt: skip
    if listed.empty:
        st.write("No anomaly flagged for these filters.")
        return
    if not listed.own.all():
        st.caption("Where this level has no flag of its own, a point shows the flagged door-hours inside it.")
    cols = ["period", "series", "level", "what", "visits", "baseline"]
    labels.table(listed.reindex(columns=cols).sort_values("period", ascending=False),
                 {"period": "date" if unit == 24 else "time"})  # fmt: skip


def strongest_series(flagged: pd.DataFrame) -> list[str]:
    """The series of the strongest flags (queries.anomalies sorts them so), at most MAX_FLAGGED_SERIES."""
    return list(flagged.series.drop_duplicates().head(queries.MAX_FLAGGED_SERIES))


def trends_tab(src: Listing, f: DoorFilters | None) -> None:
    st.header("Trends")
    if not usable(f):
        return
    trends = queries.trends(src, f)
    if trends.empty:
        st.info(f"No daily door rows between {f.first} and {f.last}.")
        return
    stores = store_order(src)
    st.caption(f"The range: {f.first:%a %d %b %Y} to {f.last:%a %d %b %Y} ({(f.last - f.first).days + 1} days). "
               "A store's day is estimated from its doors that counted the whole day, so a failed door does not "
               "hide the store.")  # fmt: skip
    st.subheader("Deviation from the weekday-matched mean (daily, per store)")
    if trends.perc_diff.isna().all():
        st.info("No whole day with three weeks of history in this range yet: the deviation needs them.")
    else:
        st.altair_chart(charts.deviation(trends.dropna(subset=["perc_diff"]), stores), width="stretch")
    st.subheader("Long-term trend")
    if trends.trend_28d.isna().all():
        st.info("The 28-day mean needs 28 days of data before a day: none in this range yet.")
    else:
        st.altair_chart(charts.long_trend(trends.dropna(subset=["trend_28d"]), stores), width="stretch")
    slopes_section(src, f)


def slopes_section(src: Listing, f: DoorFilters) -> None:
    slopes = queries.trend_slopes(src, f)
    enough = slopes[slopes.span >= MIN_TREND_DAYS]
    short = slopes[slopes.span < MIN_TREND_DAYS]
    if len(enough):
        # st.table: five short rows, read as a sentence each (and in the page's text, not a canvas).
        st.table(pd.DataFrame({
            "Store": enough.store,
            "Trend per 30 days (± 2 std errors)": [f"{p:+.1f} % ± {2 * e:.1f} %"
                                                   for p, e in zip(enough.pct_per_30d, enough.stderr_pct, strict=True)],
            "Visits per open day": [f"{v:,.0f}" for v in enough.mean_visits],
            "Days used": [f"{d:,}" for d in enough.days],
            "Days": [f"{a:%d %b} to {b:%d %b %Y}" for a, b in zip(enough["first"], enough["last"], strict=True)],
        }).set_index("Store"))  # fmt: skip
        st.caption("Trend: least-squares slope of each whole day's visits divided by the mean of its weekday over "
                   "the range (a Saturday against Saturdays), in % per 30 days; closed days are left out. "
                   "A trend inside its ± range is no trend.")  # fmt: skip
    # One sentence for the stores short of days (usually all of them, with the same days).
    for (days, first, last, span), group in short.groupby(["days", "first", "last", "span"], sort=False):
        st.info(f"{', '.join(group.store)}: the trend needs whole days over at least {MIN_TREND_DAYS} days; this "
                f"range has {days} whole days, from {first:%d %b} to {last:%d %b} ({span} days). "
                "Widen the dates, or wait for more data.")  # fmt: skip
    if slopes.empty:
        st.info(f"No whole day in this range: the trend needs whole days over at least {MIN_TREND_DAYS} days.")


def tables_tab(src: Listing, f: DoorFilters | None) -> None:
    st.header("Tables")
    if not usable(f):
        return
    total = queries.table_count(src, f)
    rows = queries.table_rows(src, f)
    st.caption(
        f"{TABLE_NAMES[f.table]} (`{f.table}`): {total:,} rows for these filters"
        + (f"; the newest {len(rows):,} shown" if total > len(rows) else "")
        + ". The downloads hold every row, with the mart's column names."
    )
    labels.table(rows.drop(columns=["part_date"], errors="ignore"))
    name = f"{f.table}_{f.first}_{f.last}"
    left, right = st.columns(2)
    # Callables: the files are made on click, not on every rerun.
    left.download_button("Download CSV", lambda: csv_bytes(src, f), f"{name}.csv", "text/csv", key="csv",
                         on_click="ignore", disabled=total == 0)  # fmt: skip
    parquet = "application/vnd.apache.parquet"
    right.download_button("Download Parquet", lambda: parquet_bytes(src, f), f"{name}.parquet", parquet,
                          key="parquet", on_click="ignore", disabled=total == 0)  # fmt: skip


def csv_bytes(src: Listing, f: DoorFilters) -> bytes:
    return queries.table_rows(src, f, limit=None).to_csv(index=False).encode()


def parquet_bytes(src: Listing, f: DoorFilters) -> bytes:
    table = pa.Table.from_pandas(queries.table_rows(src, f, limit=None), preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def health_tab(src: Listing, f: DoorFilters | None) -> None:
    st.header("Sensor health")
    if not usable(f):
        return
    health = queries.health(src, f)
    if health.empty:
        st.info(f"No sensor health rows on or before {f.last}.")
        return
    # The rates are over the last 30 days, or over what the data holds when it is younger.
    days = max(1, min(30, round(int(health.hours_30d.max()) / 24)))
    covered = "the last 30 days" if days == 30 else f"the {days} days the data covers (the rates use up to 30)"
    st.caption(f"Each door as of its latest day on or before {f.last:%a %d %b %Y}; failure rates over {covered}.")
    health = health.assign(advice=health.replacement_warning.fillna(False).map({True: "replace", False: ""}))
    warn, idle = health[health.advice == "replace"], health[health.underused.fillna(False)]
    a, b, c = st.columns(3)
    a.metric("Doors", f"{len(health):,}")
    b.metric("Doors to replace", f"{len(warn):,}")
    c.metric("Underused doors", f"{len(idle):,}")
    stores = store_order(src)
    st.subheader("Failure rates")
    st.altair_chart(charts.failure_rates(health, FAILURE_RATE_WARNING, stores, days), width="stretch")
    st.caption(f"Red dashed line: {FAILURE_RATE_WARNING:.0%} of hours failed, above which a door is to be replaced "
               "(once it has a week of readings).")  # fmt: skip
    st.subheader("Failed door-hours per day")
    st.altair_chart(charts.failed_hours(queries.failed_hours(src, f), stores), width="stretch")
    st.subheader("Doors to replace")
    cols = ["store", "sensor_id", "local_date", "failure_rate_7d", "failure_rate_30d", "failure_trend"]
    if days <= 7:  # the "30-day" rate covers the same days as the 7-day one: one column
        cols.remove("failure_rate_30d")
    window = {"failure_rate_30d": f"Failed hours, last {days} days"}  # what the rate covers
    if len(warn):
        labels.table(warn[cols], names=window)
    else:
        st.write(f"No door above the {FAILURE_RATE_WARNING:.0%} failure rate.")
    st.subheader("Underused doors")
    st.caption("A door with far less of its store's traffic than its sibling doors: blocked, moved, or miscounting.")
    cols = ["store", "sensor_id", "local_date", "traffic_share", "median_share"]
    labels.table(idle[cols]) if len(idle) else st.write("No underused door.")
