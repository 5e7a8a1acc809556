"""The dashboard's SQL over the marts: parameterised, aggregated in DuckDB, cached per version.

Table names come from fixed mappings, never from the page; every value the page chooses is a
bound parameter. Charts get at most MAX_POINTS points a line: longer spans are summed into
coarser time buckets in SQL.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from dashboard.source import Listing, query

MAX_POINTS = 2000  # points on one chart line
MAX_SERIES = 12  # lines on one traffic chart (the busiest)
TABLE_ROWS = 5000  # rows shown in the Tables tab (the downloads hold all)
TRAFFIC_TABLES = {
    ("hour", "sensor"): "door_hourly_sensor",
    ("hour", "store"): "door_hourly_store",
    ("day", "sensor"): "door_daily_sensor",
    ("day", "store"): "door_daily_store",
}
AXIS_COLUMNS = [f"axis{i}" for i in range(1, 9)]
FILES = "read_parquet($files, hive_partitioning = false)"  # the partition folders are not columns


@dataclass(frozen=True)
class DoorFilters:
    stores: tuple[str, ...]
    door: tuple[str, int] | None  # (store, sensor_id), or None for all doors
    resolution: str  # "hour" or "day"
    grain: str  # "sensor" (door level) or "store"
    weekdays: tuple[int, ...]  # 1 = Monday .. 7 = Sunday
    first: dt.date
    last: dt.date
    hours: tuple[int, int]  # local hours, inclusive; hourly resolution only

    @property
    def table(self) -> str:
        return TRAFFIC_TABLES[(self.resolution, self.grain)]

    def params(self) -> dict:
        """The values where() names (DuckDB refuses unused parameters)."""
        values = {"stores": list(self.stores), "first": self.first, "last": self.last, "weekdays": list(self.weekdays)}
        if self.grain == "sensor":
            store, sensor = self.door or ("", -1)
            values |= {"door_store": store, "door_id": sensor}
        if self.resolution == "hour":
            values |= {"h0": self.hours[0], "h1": self.hours[1]}
        return values

    def where(self, weekday: str = "weekday") -> str:
        """The filters as SQL over bound parameters (door_anomalies has no weekday column: isodow)."""
        sql = "list_contains($stores, store) AND local_date BETWEEN $first AND $last"
        sql += f" AND list_contains($weekdays, {weekday})"
        if self.resolution == "hour":
            sql += " AND local_hour BETWEEN $h0 AND $h1"
        if self.grain == "sensor":
            sql += " AND ($door_id < 0 OR (store = $door_store AND sensor_id = $door_id))"
        return sql

    def period(self) -> str:
        """The chart's x: local time (stores in different time zones line up by opening hours)."""
        return "local_date + to_hours(local_hour)" if self.resolution == "hour" else "CAST(local_date AS TIMESTAMP)"

    def series(self) -> str:
        return "store || ' · door ' || CAST(sensor_id AS VARCHAR)" if self.grain == "sensor" else "store"

    def bucket_hours(self) -> int:
        """Hours per chart point so that a line has at most MAX_POINTS points."""
        days = (self.last - self.first).days + 1
        if self.resolution == "day":
            return 24 * max(1, math.ceil(days / MAX_POINTS))
        return max(1, math.ceil(days * (self.hours[1] - self.hours[0] + 1) / MAX_POINTS))


def since(day: dt.date, days: int) -> dt.date:
    return day - dt.timedelta(days=days)


def empty(*columns: str) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in columns})


def door_overview(src: Listing) -> pd.DataFrame:
    """Per store: first and last local date, total visits (for the defaults and the sliders)."""
    files = src.files("door_daily_store")
    if not files:
        return empty("store", "first", "last", "visits")
    sql = f"""SELECT store, min(local_date) AS first, max(local_date) AS last, sum(visits) AS visits
             FROM {FILES} GROUP BY store ORDER BY visits DESC NULLS LAST, store"""
    return query(src.version, sql, {"files": files})


def doors(src: Listing, stores: tuple[str, ...]) -> pd.DataFrame:
    """The doors of these stores seen in the last month of data."""
    span = src.span("door_daily_sensor")
    if not span or not stores:
        return empty("store", "sensor_id")
    sql = f"""SELECT DISTINCT store, sensor_id FROM {FILES}
             WHERE list_contains($stores, store) ORDER BY store, sensor_id"""
    files = src.files("door_daily_sensor", since(span[1], 31))
    return query(src.version, sql, {"files": files, "stores": list(stores)})


def traffic(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Visits and the weekday-matched mean per series and time bucket, for the busiest series."""
    files = src.files(f.table, f.first)
    if not files or not f.stores:
        return empty("period", "series", "visits", "baseline")
    sql = f"""
        WITH base AS (
            SELECT {f.series()} AS series, {f.period()} AS period, visits, running_mean
            FROM {FILES} WHERE {f.where()}
        ), top AS (
            SELECT series FROM base GROUP BY series ORDER BY sum(visits) DESC NULLS LAST, series LIMIT $max_series
        )
        SELECT time_bucket(to_hours($bucket::BIGINT), period) AS period, series,
               sum(visits) AS visits, sum(running_mean) AS baseline
        FROM base WHERE series IN (SELECT series FROM top)
        GROUP BY ALL ORDER BY series, period"""
    params = f.params() | {"files": files, "max_series": MAX_SERIES, "bucket": f.bucket_hours()}
    return query(src.version, sql, params)


def anomalies(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Flagged hours or days at the chosen level, the strongest first."""
    files = src.files("door_anomalies", f.first)
    if not files or not f.stores:
        return empty("period", "series", "visits", "baseline", "score", "change", "direction", "level")
    sql = f"""
        SELECT {f.period()} AS period, {f.series()} AS series, visits, baseline, score, change, direction, level
        FROM {FILES}
        WHERE resolution = $resolution AND grain = $grain AND {f.where("isodow(local_date)")}
        ORDER BY abs(score) DESC LIMIT 500"""
    params = f.params() | {"files": files, "resolution": f.resolution, "grain": f.grain}
    return query(src.version, sql, params)


def trends(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Per store and day: % deviation from the weekday-matched mean, and the 28-day mean of whole days."""
    files = src.files("door_daily_store", since(f.first, 28))
    if not files or not f.stores:
        return empty("store", "day", "perc_diff", "trend_28d")
    sql = f"""
        WITH days AS (
            SELECT store, local_date, weekday, perc_diff,
                   avg(CASE WHEN NOT partial AND NOT incomplete THEN visits END) OVER (
                       PARTITION BY store ORDER BY local_date RANGE BETWEEN INTERVAL 27 DAYS PRECEDING AND CURRENT ROW
                   ) AS trend_28d
            FROM {FILES} WHERE list_contains($stores, store) AND local_date <= $last
        )
        SELECT store, CAST(local_date AS TIMESTAMP) AS day, perc_diff, trend_28d FROM days
        WHERE local_date >= $first AND list_contains($weekdays, weekday) ORDER BY store, day"""
    params = {"files": files, "stores": list(f.stores), "first": f.first, "last": f.last}
    return query(src.version, sql, params | {"weekdays": list(f.weekdays)})


def trend_slopes(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Per store: the least-squares trend of daily visits over the range, in % of the mean per 30 days."""
    files = src.files("door_daily_store", f.first)
    if not files or not f.stores:
        return empty("store", "days", "mean_visits", "trend_pct_per_30d")
    sql = f"""
        SELECT store, count(*) AS days, round(avg(visits)) AS mean_visits,
               round(100 * 30 * regr_slope(visits, epoch(local_date) / 86400) / avg(visits), 2) AS trend_pct_per_30d
        FROM {FILES}
        WHERE list_contains($stores, store) AND local_date BETWEEN $first AND $last AND NOT partial AND NOT incomplete
        GROUP BY store ORDER BY store"""
    return query(src.version, sql, {"files": files, "stores": list(f.stores), "first": f.first, "last": f.last})


def table_sql(f: DoorFilters) -> str:
    keys = "local_date DESC, store" + (", sensor_id" if f.grain == "sensor" else "")
    keys += ", local_hour DESC" if f.resolution == "hour" else ""
    return f"SELECT * FROM {FILES} WHERE {f.where()} ORDER BY {keys}"


def table_rows(src: Listing, f: DoorFilters, limit: int | None = TABLE_ROWS) -> pd.DataFrame:
    """The filtered mart rows, newest first (`limit` None: all of them, for the downloads)."""
    files = src.files(f.table, f.first)
    if not files or not f.stores:
        return empty("store", "local_date")
    sql = table_sql(f) + (" LIMIT $limit" if limit else "")
    params = f.params() | {"files": files} | ({"limit": limit} if limit else {})
    return query(src.version, sql, params)


def table_count(src: Listing, f: DoorFilters) -> int:
    files = src.files(f.table, f.first)
    if not files or not f.stores:
        return 0
    sql = f"SELECT count(*) AS n FROM {FILES} WHERE {f.where()}"
    return int(query(src.version, sql, f.params() | {"files": files}).n.iloc[0])


def health(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Each door's latest health row on or before the range's last day."""
    files = src.files("door_health", since(f.last, 31))
    if not files or not f.stores:
        return empty("store", "sensor_id", "door", "failure_rate_30d", "replacement_warning", "underused")
    sql = f"""
        SELECT store, sensor_id, store || ' · door ' || CAST(sensor_id AS VARCHAR) AS door, local_date,
               failure_rate_7d, failure_rate_30d, failure_trend, replacement_warning, traffic_share, median_share,
               underused
        FROM {FILES} WHERE list_contains($stores, store) AND local_date <= $last
        QUALIFY row_number() OVER (PARTITION BY store, sensor_id ORDER BY local_date DESC) = 1
        ORDER BY failure_rate_30d DESC, store, sensor_id"""
    return query(src.version, sql, {"files": files, "stores": list(f.stores), "last": f.last})


def failed_hours(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Failed door-hours per store and day over the range."""
    files = src.files("door_daily_store", f.first)
    if not files or not f.stores:
        return empty("store", "day", "failed_hours")
    sql = f"""
        SELECT store, CAST(local_date AS TIMESTAMP) AS day, failed_readings AS failed_hours
        FROM {FILES} WHERE list_contains($stores, store) AND local_date BETWEEN $first AND $last
        ORDER BY store, day"""
    return query(src.version, sql, {"files": files, "stores": list(f.stores), "first": f.first, "last": f.last})


# -- robots -----------------------------------------------------------------------------------


def robot_span(src: Listing) -> tuple[dt.date, dt.date] | None:
    """First and last UTC dates of robot_fits. The transform writes a file per month, most of
    them partly filled (the last up to the last data): the last date comes from the last file's
    buckets, not from its month label."""
    span = src.span("robot_fits")
    if span is None:
        return None
    last = query(src.version, f"SELECT max(bucket) AS last FROM {FILES}", {"files": src.files("robot_fits")[-1:]})
    return span[0], last["last"].iloc[0].date() if len(last) and pd.notna(last["last"].iloc[0]) else span[1]


def robot_signal(src: Listing, robot: str, axis: str, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """The axis's moving-sample mean and its regression trend, in at most MAX_POINTS buckets."""
    files = src.files("robot_fits", start.date() - dt.timedelta(days=1))
    if not files:
        return empty("t", "signal", "trend")
    minutes = 10 * max(1, math.ceil((end - start).total_seconds() / 600 / MAX_POINTS))
    sql = f"""
        SELECT time_bucket(to_minutes($minutes::BIGINT), bucket) AS t,
               sum(mean * moving_samples) / nullif(sum(moving_samples), 0) AS signal, avg(expected) AS trend
        FROM {FILES} WHERE robot_id = $robot AND axis = $axis AND bucket >= $start AND bucket < $end
        GROUP BY 1 ORDER BY 1"""
    params = {"files": files, "robot": robot, "axis": axis, "start": start, "end": end, "minutes": minutes}
    return query(src.version, sql, params)


def robot_incidents(src: Listing, robot: str, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    files = src.files("robot_incidents", start.date() - dt.timedelta(days=1))
    if not files:
        return empty("axis", "start", "end", "level", "peak_level", "flagged_readings", "median_sigmas", "peak_sigmas")
    sql = f"""
        SELECT axis, start, "end", level, peak_level, flagged_readings, median_sigmas, peak_sigmas
        FROM {FILES} WHERE robot_id = $robot AND "end" >= $start AND start < $end
        ORDER BY start DESC"""
    return query(src.version, sql, {"files": files, "robot": robot, "start": start, "end": end})


def maintenance(src: Listing) -> pd.DataFrame:
    """Every robot axis's latest maintenance forecast."""
    span = src.span("robot_maintenance")
    if not span:
        return empty("robot_id", "axis", "date", "status", "days_to_error")
    sql = f"""
        SELECT robot_id, axis, date, status, days_to_error, wear_sigmas, wear_sigmas_per_day, level_now,
               healthy_level, days_fitted
        FROM {FILES}
        QUALIFY row_number() OVER (PARTITION BY robot_id, axis ORDER BY date DESC) = 1
        ORDER BY days_to_error NULLS LAST, robot_id, axis"""
    return query(src.version, sql, {"files": src.files("robot_maintenance", span[1] - dt.timedelta(days=1))})


def raw_robot_files(src: Listing, end: dt.datetime, days: int = 1) -> list[str]:
    """Raw sample files of the last `days` dates up to `end` (the fidelity check's sample)."""
    last = end.date()
    return [p for label, p in src.raw_robots if last - dt.timedelta(days=days) < label_date(label) <= last]


def label_date(label: str) -> dt.date:
    return dt.date.fromisoformat(label.removeprefix("date="))


def fidelity(src: Listing, robot: str, files: list[str]) -> pd.DataFrame:
    """Each axis's mean and std over the raw samples (rests included, as the reference figures)."""
    if not files:
        return empty("axis", "samples", "mean", "std")
    sql = f"""
        SELECT axis, count(*) AS samples, avg(value) AS mean, stddev_pop(value) AS std
        FROM (UNPIVOT (SELECT * EXCLUDE (ts) FROM {FILES} WHERE robot_id = $robot)
              ON COLUMNS('^axis') INTO NAME axis VALUE value)
        GROUP BY axis ORDER BY axis"""
    return query(src.version, sql, {"files": files, "robot": robot})


def histogram(src: Listing, robot: str, axis: str, files: list[str], width: float) -> pd.DataFrame:
    """Counts of the axis's raw samples in bins of `width`."""
    if not files or axis not in AXIS_COLUMNS:
        return empty("bin", "samples")
    sql = f"""
        SELECT floor(value / $width) * $width AS bin, count(*) AS samples
        FROM (UNPIVOT (SELECT * EXCLUDE (ts) FROM {FILES} WHERE robot_id = $robot)
              ON COLUMNS('^axis') INTO NAME axis VALUE value)
        WHERE axis = $axis GROUP BY 1 ORDER BY 1"""
    return query(src.version, sql, {"files": files, "robot": robot, "axis": axis, "width": width})
