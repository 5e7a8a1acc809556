"""The store owner's and the maintenance engineer's door tabs: traffic, trends, tables, sensor health."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import streamlit as st

from dashboard import charts, queries
from dashboard.queries import DoorFilters
from dashboard.source import Listing

FAILURE_RATE_WARNING = 0.05  # TransformParams.health_failure_rate: the marts' replacement threshold
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


def traffic_tab(src: Listing, f: DoorFilters | None) -> None:
    st.header("Traffic")
    if not usable(f):
        return
    lines = queries.traffic(src, f)
    if lines.empty or lines.visits.isna().all():
        st.info(f"No visits for these filters between {f.first} and {f.last}.")
        return
    flagged = queries.anomalies(src, f)
    bucket = f.bucket_hours()
    unit = 24 if f.resolution == "day" else 1
    if bucket > unit:
        st.caption(f"Each point sums {bucket // unit} {'days' if unit == 24 else 'hours'} (at most "
                   f"{queries.MAX_POINTS:,} points a line).")  # fmt: skip
    shown = flagged[flagged.series.isin(set(lines.series))]
    st.altair_chart(charts.traffic(lines, shown, points=bucket == unit), width="stretch")
    series = lines.series.nunique()
    if series >= queries.MAX_SERIES:
        st.caption(f"The {queries.MAX_SERIES} busiest series; pick a door or fewer stores to see others.")
    st.caption("Solid: visits. Dashed: the mean of the same weekday (and hour) over the previous 4 weeks.")
    st.subheader(f"Anomalies ({len(flagged)})")
    if flagged.empty:
        st.write("No anomaly flagged for these filters.")
    else:
        st.dataframe(flagged, hide_index=True, width="stretch")


def trends_tab(src: Listing, f: DoorFilters | None) -> None:
    st.header("Trends")
    if not usable(f):
        return
    trends = queries.trends(src, f)
    if trends.empty:
        st.info(f"No daily store totals between {f.first} and {f.last}.")
        return
    st.subheader("Deviation from the weekday-matched mean (daily, per store)")
    if trends.perc_diff.isna().all():
        st.info("No whole day with four weeks of history in this range yet: the deviation needs them.")
    else:
        st.altair_chart(charts.deviation(trends.dropna(subset=["perc_diff"])), width="stretch")
    st.subheader("Long-term trend")
    st.altair_chart(charts.long_trend(trends.dropna(subset=["trend_28d"])), width="stretch")
    st.dataframe(queries.trend_slopes(src, f), hide_index=True, width="stretch")
    st.caption("Trend: least-squares slope of whole days' visits over the range, in % of their mean per 30 days.")


def tables_tab(src: Listing, f: DoorFilters | None) -> None:
    st.header("Tables")
    if not usable(f):
        return
    total = queries.table_count(src, f)
    rows = queries.table_rows(src, f)
    st.caption(
        f"`{f.table}`: {total:,} rows for these filters"
        + (f"; the newest {len(rows):,} shown" if total > len(rows) else "")
    )
    st.dataframe(rows, hide_index=True, width="stretch")
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
    st.caption(f"Each door as of its latest day on or before {f.last}.")
    warn, idle = health[health.replacement_warning.fillna(False)], health[health.underused.fillna(False)]
    a, b, c = st.columns(3)
    a.metric("Doors", len(health))
    b.metric("Replacement warnings", len(warn))
    c.metric("Underused doors", len(idle))
    st.subheader("Failure rates")
    st.altair_chart(charts.failure_rates(health, FAILURE_RATE_WARNING), width="stretch")
    st.altair_chart(charts.failed_hours(queries.failed_hours(src, f)), width="stretch")
    st.subheader("Replacement warnings")
    cols = ["door", "local_date", "failure_rate_7d", "failure_rate_30d", "failure_trend"]
    st.dataframe(warn[cols], hide_index=True) if len(warn) else st.write("No door above the 5 % failure rate.")
    st.subheader("Underused doors")
    cols = ["door", "local_date", "traffic_share", "median_share"]
    st.dataframe(idle[cols], hide_index=True) if len(idle) else st.write("No underused door.")
