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
MAX_SERIES = 12  # lines on one traffic chart (the busiest; flagged series are added)
# Flagged series added to those (the strongest flags first): at 100x the doors hundreds of doors
# hold a flag, and drawing every one of them put 500,000 points in one chart (5 s a rerun).
MAX_FLAGGED_SERIES = 12
MAX_MARKS = 1000  # anomaly marks on one chart
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

    def keys(self) -> str:
        """The columns that name a series (its label is series())."""
        return "store, sensor_id" if self.grain == "sensor" else "store"

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


def traffic(src: Listing, f: DoorFilters, flagged: list[str] | None = None) -> pd.DataFrame:
    """Visits and the weekday-matched mean per series and time bucket, for the busiest series and
    every series in `flagged` (its anomalies must be on the chart). Partial days (a lake's first
    and last, still filling) are left out of daily lines: their sums are not days' visits."""
    files = src.files(f.table, f.first)
    if not files or not f.stores:
        return empty("period", "series", "store", "visits", "baseline", "failed")
    whole = " AND NOT partial" if f.resolution == "day" else ""
    sql = f"""
        WITH base AS (
            SELECT {f.keys()}, {f.period()} AS period, visits, running_mean, failed_readings
            FROM {FILES} WHERE {f.where()}{whole}
        ), top AS (
            SELECT {f.keys()} FROM base GROUP BY {f.keys()}
            ORDER BY sum(visits) DESC NULLS LAST, {f.series()} LIMIT $max_series
        ), picked AS (
            -- the series label is made for the picked rows only (a string per row of a wide fleet's
            -- month cost more than the sums): the busiest by their keys, the flagged by label
            SELECT {f.series()} AS series, * FROM base
            WHERE ({f.keys()}) IN (SELECT ({f.keys()}) FROM top) OR list_contains($flagged, {f.series()})
        )
        SELECT time_bucket(to_hours($bucket::BIGINT), period) AS period, series, any_value(store) AS store,
               sum(visits) AS visits, sum(running_mean) AS baseline, sum(failed_readings) AS failed
        -- by position: `period` alone would name base's hour, leaving a line's hours unsummed
        FROM picked GROUP BY 1, 2 ORDER BY series, period"""
    params = f.params() | {"files": files, "max_series": MAX_SERIES, "bucket": f.bucket_hours()}
    return query(src.version, sql, params | {"flagged": list(flagged or [])})


def anomalies(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """One mark per series and chart point holding a flag, the strongest first.

    The mart flags hours and days at door and store level, but a store-day or a door-day is
    rarely flagged while its hours are: a point gets its own level's flag when it has one, else
    the flagged door-hours inside it (rolled up: "3 flagged door-hours"), so every resolution and
    level shows them. Points are the chart's time buckets, so one mark is one point on the line."""
    files = src.files("door_anomalies", f.first)
    if not files or not f.stores:
        return empty("period", "series", "store", "level", "what", "own", "door_hours")
    sql = f"""
        WITH flags AS (
            SELECT resolution = $resolution AND grain = $grain AS own, {f.series()} AS series, store,
                   time_bucket(to_hours($bucket::BIGINT), {f.period()}) AS period, sensor_id, score, change,
                   CASE WHEN level = 'critical' THEN 2 ELSE 1 END AS rank
            FROM {FILES}
            WHERE ((resolution = $resolution AND grain = $grain) OR (resolution = 'hour' AND grain = 'sensor'))
              AND {f.where("isodow(local_date)")}
        ), marks AS (
            SELECT period, series, any_value(store) AS store, bool_or(own) AS own,
                   coalesce(max(rank) FILTER (WHERE own), max(rank)) AS rank,
                   arg_max(change, abs(score)) FILTER (WHERE own) AS change,
                   max(abs(score)) AS strength,
                   count(*) FILTER (WHERE NOT own) AS door_hours,
                   -- door numbers in numeric order (2, 10; not 10, 2)
                   array_to_string(list_sort(list_distinct(list(sensor_id) FILTER (WHERE NOT own))), ', ') AS doors
            FROM flags GROUP BY period, series
        )
        SELECT period, series, store, CASE WHEN rank = 2 THEN 'critical' ELSE 'warning' END AS level,
               CASE WHEN own THEN printf('%s visits than usual (%+.0f %%)', CASE WHEN change < 0 THEN 'fewer'
                        ELSE 'more' END, 100 * change)
                    ELSE printf('%d flagged door-hour%s (door%s %s)', door_hours, CASE WHEN door_hours > 1 THEN 's'
                        ELSE '' END, CASE WHEN contains(doors, ',') THEN 's' ELSE '' END, doors) END AS what,
               own, door_hours
        FROM marks ORDER BY own DESC, rank DESC, strength DESC LIMIT $max_marks"""
    params = f.params() | {"files": files, "resolution": f.resolution, "grain": f.grain}
    return query(src.version, sql, params | {"bucket": f.bucket_hours(), "max_marks": MAX_MARKS})


# A store-day's level against the usual of its weekday, from the doors that were whole that day:
# a store whose total is incomplete (one of Paris's 20 doors has usually failed) is estimated from
# its working doors. `norm`: a door's mean whole-day visits on that weekday over the rows read.
STORE_DAYS = """
    WITH doors AS (
        SELECT store, sensor_id, local_date, weekday, visits, running_mean, baseline_periods,
               NOT partial AND NOT incomplete AS whole
        FROM {files} WHERE list_contains($stores, store) AND local_date BETWEEN $since AND $last
    ), norms AS (
        SELECT store, sensor_id, weekday, coalesce(avg(visits) FILTER (WHERE whole), 0) AS norm
        FROM doors GROUP BY ALL
    ), days AS (
        SELECT d.store, d.local_date, any_value(d.weekday) AS weekday,
               sum(d.visits) FILTER (WHERE whole) / nullif(sum(n.norm) FILTER (WHERE whole), 0) AS level,
               sum(n.norm) AS store_norm,
               sum(d.visits) FILTER (WHERE whole AND baseline_periods >= 3 AND running_mean > 0)
                   / sum(d.running_mean) FILTER (WHERE whole AND baseline_periods >= 3 AND running_mean > 0) AS vs_usual
        FROM doors AS d JOIN norms AS n USING (store, sensor_id, weekday)
        GROUP BY d.store, d.local_date
    )"""


def trends(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Per store and day: % from the weekday-matched mean of the previous 4 weeks, and the 28-day
    mean of the store's visits a day (estimated from its whole doors; closed days count as 0),
    drawn only where the 28 days are all in the data."""
    files = src.files("door_daily_sensor", since(f.first, 28))
    if not files or not f.stores:
        return empty("store", "day", "perc_diff", "trend_28d")
    sql = (
        STORE_DAYS.format(files=FILES)
        + """, estimated AS (
            SELECT *, CASE WHEN store_norm = 0 THEN 0 ELSE level * store_norm END AS visits FROM days
        ), rolling AS (
            SELECT *, avg(visits) OVER w AS mean_28d, count(*) OVER w AS days_28d, count(visits) OVER w AS known_28d
            FROM estimated
            WINDOW w AS (
                PARTITION BY store ORDER BY local_date RANGE BETWEEN INTERVAL 27 DAYS PRECEDING AND CURRENT ROW
            )
        )
        SELECT store, CAST(local_date AS TIMESTAMP) AS day, 100 * (vs_usual - 1) AS perc_diff,
               CASE WHEN visits IS NOT NULL AND days_28d = 28 AND known_28d >= 24 THEN mean_28d END AS trend_28d
        FROM rolling WHERE local_date >= $first AND list_contains($weekdays, weekday) ORDER BY store, day"""
    )
    params = {"files": files, "stores": list(f.stores), "since": since(f.first, 27), "first": f.first, "last": f.last}
    return query(src.version, sql, params | {"weekdays": list(f.weekdays)})


def trend_slopes(src: Listing, f: DoorFilters) -> pd.DataFrame:
    """Per store: the least-squares trend over the range of each whole day's visits against its
    weekday's mean (a Saturday is compared with Saturdays), in % per 30 days, with its standard
    error. Closed days and days without a whole door are left out."""
    files = src.files("door_daily_sensor", f.first)
    if not files or not f.stores:
        return empty("store", "days", "first", "last", "span", "mean_visits", "pct_per_30d", "stderr_pct")
    sql = (
        STORE_DAYS.format(files=FILES)
        + """, used AS (
            SELECT * FROM days WHERE level IS NOT NULL AND store_norm > 0 AND list_contains($weekdays, weekday)
        ), fit AS (
            SELECT store, count(*) AS days, min(local_date) AS first, max(local_date) AS last,
                   avg(level * store_norm) AS mean_visits, avg(level) AS mean_level,
                   regr_slope(level, x) AS slope, regr_sxx(level, x) AS sxx, regr_syy(level, x) AS syy,
                   regr_sxy(level, x) AS sxy
            FROM (SELECT *, epoch(local_date) / 86400 AS x FROM used) GROUP BY store
        )
        SELECT store, days, first, last, date_diff('day', first, last) + 1 AS span, mean_visits,
               100 * 30 * slope / mean_level AS pct_per_30d,
               -- the slope's standard error: sqrt(residual variance / sxx)
               100 * 30 * sqrt(greatest(syy - sxy * sxy / nullif(sxx, 0), 0) / nullif(days - 2, 0) / nullif(sxx, 0))
                   / mean_level AS stderr_pct
        FROM fit ORDER BY mean_visits DESC"""
    )
    params = {"files": files, "stores": list(f.stores), "since": f.first, "last": f.last}
    return query(src.version, sql, params | {"weekdays": list(f.weekdays)})


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
               failure_rate_7d, failure_rate_30d, failure_trend, CAST(hours_30d AS BIGINT) AS hours_30d,
               replacement_warning, traffic_share, median_share, underused
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
    them partly filled (the first from the first data, the last up to the last): the dates come
    from the first and the last file's buckets, not from their month labels."""
    span = src.span("robot_fits")
    if span is None:
        return None
    files = src.files("robot_fits")
    sql = f"SELECT min(bucket) AS first, max(bucket) AS last FROM {FILES}"
    first, last = query(src.version, sql, {"files": files[:1]}), query(src.version, sql, {"files": files[-1:]})
    return day_of(first["first"], span[0]), day_of(last["last"], span[1])


def day_of(column: pd.Series, default: dt.date) -> dt.date:
    return column.iloc[0].date() if len(column) and pd.notna(column.iloc[0]) else default


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
        return empty("bin", "bin_end", "samples")
    sql = f"""
        SELECT floor(value / $width) * $width AS bin, floor(value / $width) * $width + $width AS bin_end,
               count(*) AS samples
        FROM (UNPIVOT (SELECT * EXCLUDE (ts) FROM {FILES} WHERE robot_id = $robot)
              ON COLUMNS('^axis') INTO NAME axis VALUE value)
        WHERE axis = $axis GROUP BY 1 ORDER BY 1"""
    return query(src.version, sql, {"files": files, "robot": robot, "axis": axis, "width": width})
