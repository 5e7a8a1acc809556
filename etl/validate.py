"""Checks on load: every row is kept or quarantined with a reason, never silently dropped."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.datasets import AXIS_COLUMNS, MAX_AXIS_ABS, MAX_HOURLY_COUNT, Dataset
from etl.lake import outside_interval, repeated_keys
from etl.sites import door_ids

US_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class Checked:
    good: pa.Table  # the data set's schema
    bad: pa.Table  # the data set's columns as text, plus `reason`


def validate(
    table: pa.Table,
    data: Dataset,
    start: dt.datetime | None,
    end: dt.datetime | None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    sites: dict | None = None,
) -> Checked:
    """Split rows into good ones and bad ones with the first reason that applies; `window` is
    the plausible [first, last) instant of a reading (EtlSettings.time_window).

    Failed doors (null counts) are good rows: a failure is data, not an error. With `sites` (the
    lake's site registry), door readings of a store or door it does not describe are bad: the
    transform could not place them (no time zone), so they are quarantined with the reason.
    """
    checks = _common_checks(table, data, start, end, window)
    if sites is not None and data.kind == "doors":  # an unknown store's first problem: say which
        checks += _site_checks(table, sites)
    checks += _door_checks(table) if data.kind == "doors" else _robot_checks(table)
    checks.append(("duplicate key " + "/".join(data.key), repeated_keys(table, data.key, keep="first")))
    reason = np.full(table.num_rows, None, dtype=object)
    is_bad = np.zeros(table.num_rows, dtype=bool)
    for text, failing in reversed(checks):  # the first check listed wins
        failing = np.asarray(failing, dtype=bool)
        reason[failing] = text
        is_bad |= failing
    good = table.filter(pa.array(~is_bad)).cast(data.schema)
    bad = as_text(table.filter(pa.array(is_bad))).append_column("reason", pa.array(reason[is_bad], pa.string()))
    return Checked(good, bad)


def as_text(table: pa.Table) -> pa.Table:
    """Every column as a string: quarantine keeps what arrived, whatever its type."""
    return pa.table(
        {name: pc.cast(col, pa.string()) for name, col in zip(table.column_names, table.columns, strict=True)}
    )


def _filled(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def window_text(window: tuple[dt.datetime, dt.datetime]) -> str:
    """The plausible window, as messages name it."""
    first, last = (value.isoformat(timespec="seconds").replace("+00:00", "Z") for value in window)
    return f"{first} .. {last} (ETL_MIN_TIME, ETL_MAX_FUTURE_DAYS)"


def _common_checks(table: pa.Table, data: Dataset, start, end, window) -> list:
    ts = table.column("ts").cast(pa.int64())
    checks = [("ts missing", _filled(pc.is_null(ts)))]
    if window is not None:
        checks.append(
            (f"ts outside the plausible window {window_text(window)}", _filled(outside_interval(table, *window)))
        )
    if start is not None and end is not None:
        checks.append(("ts outside the asked interval", _filled(outside_interval(table, start, end))))
    ident = table.column(data.id_column)
    checks.append((f"{data.id_column} missing", _filled(pc.or_(pc.is_null(ident), pc.equal(ident, "")))))
    return checks


def _door_checks(table: pa.Table) -> list:
    ts = pc.fill_null(table.column("ts").cast(pa.int64()), 0).to_numpy()
    sensor, count = table.column("sensor_id"), table.column("count")
    return [
        ("ts not on the hour", ts % US_PER_HOUR != 0),
        ("sensor_id missing or negative", _filled(pc.or_(pc.is_null(sensor), pc.less(sensor, 0)))),
        ("count negative", _filled(pc.less(count, 0))),
        (f"count above the plausible cap of {MAX_HOURLY_COUNT}", _filled(pc.greater(count, MAX_HOURLY_COUNT))),
    ]


def _site_checks(table: pa.Table, sites: dict) -> list:
    """One check per unknown store and per store with unknown doors, each naming them."""
    doors = door_ids(sites)
    store = table.column("store").to_numpy(zero_copy_only=False)
    sensor = pc.fill_null(table.column("sensor_id"), -1).to_numpy(zero_copy_only=False)
    checks = []
    for name in np.unique(store[pd.notna(store)]).tolist():
        here = store == name
        if name not in doors:
            checks.append((f"store {name!r} is not in the site registry (describe it: python -m etl sites load)", here))
            continue
        unknown = here & ~np.isin(sensor, sorted(doors[name])) & (sensor >= 0)
        if unknown.any():
            checks.append((f"door not in the site registry's doors of {name!r} ({_span(doors[name])})", unknown))
    return checks


def _span(ids: set[int]) -> str:
    ordered = sorted(ids)
    if not ordered:
        return "none"
    return f"{ordered[0]}-{ordered[-1]}" if ordered == list(range(ordered[0], ordered[-1] + 1)) else str(ordered)


def _robot_checks(table: pa.Table) -> list:
    checks = []
    for axis in AXIS_COLUMNS:
        values = table.column(axis)
        checks.append((f"{axis} missing or not finite", _filled(pc.invert(pc.fill_null(pc.is_finite(values), False)))))
        checks.append((f"{axis} beyond +-{MAX_AXIS_ABS:g}", _filled(pc.greater(pc.abs(values), MAX_AXIS_ABS))))
    return checks
