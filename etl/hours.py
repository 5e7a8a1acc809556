"""Door counts at any regular interval that divides the hour (5, 10, 15, 20, 30 or 60 minutes),
summed to the hours of each store's local time: what the lake and its marts count in.

A door's interval is the most common step between its readings. An hour is whole when every
one of its intervals has a count; a failed interval (an empty count) or a missing one makes it
partial. A partial hour's sum would read as a drop in traffic, so it is not loaded as a count: it
comes back with the reason (quarantined by the import, never dropped silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from contract.schemas import DOOR_READINGS

INTERVALS_MINUTES = (5, 10, 15, 20, 30, 60)


@dataclass(frozen=True)
class Hours:
    hourly: pa.Table  # DOOR_READINGS: one row per door and whole local hour
    partial: pa.Table  # the partial hours, as text, with `reason`
    intervals: dict[str, int]  # "store/door" -> minutes between its readings (sub-hourly doors only)


def door_interval_minutes(ts: pd.Series) -> int | None:
    """The most common step between a door's sorted readings, in minutes; None for one reading."""
    steps = ts.sort_values().diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        return None
    return round(steps.mode().iloc[0].total_seconds() / 60)


def to_local_hours(table: pa.Table, timezones: dict[str, str]) -> Hours:
    """Sum sub-hourly door counts to local hours. Doors whose readings already come hourly, and
    stores without a time zone here (the site checks quarantine those), pass through unchanged."""
    frame = table.to_pandas()
    keys = frame.store.astype(str) + "/" + frame.sensor_id.astype("Int64").astype(str)
    intervals = {}
    sub_hourly = np.zeros(len(frame), bool)
    for door, rows in frame.groupby(keys, sort=True).groups.items():
        store = frame.store.iloc[rows[0]]
        minutes = door_interval_minutes(frame.ts.loc[rows])
        if store in timezones and minutes is not None and minutes < 60:
            if minutes not in INTERVALS_MINUTES:
                raise ValueError(
                    f"door {door}: readings every {minutes} minutes; an import takes counts every "
                    f"{', '.join(map(str, INTERVALS_MINUTES))} minutes (intervals that divide the hour)"
                )
            intervals[door] = minutes
            sub_hourly[frame.index.get_indexer(rows)] = True
    if not intervals:
        return Hours(table, _partial_rows(frame.iloc[:0], []), {})
    whole, partial = _sum_hours(frame[sub_hourly], keys[sub_hourly], intervals, timezones)
    hourly = pd.concat([frame[~sub_hourly], whole], ignore_index=True)
    return Hours(pa.Table.from_pandas(hourly, schema=DOOR_READINGS, preserve_index=False), partial, intervals)


def _sum_hours(
    frame: pd.DataFrame, keys: pd.Series, intervals: dict[str, int], timezones: dict[str, str]
) -> tuple[pd.DataFrame, pa.Table]:
    hour = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    for store, rows in frame.groupby("store").groups.items():
        ts = frame.ts.loc[rows]
        # Floored in local time: the hour the store's people were counted in (a +05:30 zone's hours
        # are not UTC's). Done on wall-clock minutes, so the hour repeated in autumn stays two hours.
        local = ts.dt.tz_convert(ZoneInfo(timezones[store])).dt.tz_localize(None)
        hour.loc[rows] = ts - (local - local.dt.floor("h"))
    frame = frame.assign(hour=hour, door=keys, expected=keys.map(lambda d: 60 // intervals[d]))
    groups = frame.groupby(["store", "sensor_id", "hour", "door"], sort=True)
    sums = groups.agg(
        count=("count", "sum"), counted=("count", "count"), readings=("count", "size"), expected=("expected", "first")
    ).reset_index()
    # every interval there but none counted: the sensor failed that hour (a null count, as the API sends)
    failed = (sums.readings == sums.expected) & (sums.counted == 0)
    sums["count"] = sums["count"].astype("Int64").mask(failed)
    whole = (sums.counted == sums.expected) | failed
    reasons = [
        f"partial hour: {c} of {e} counts of {60 // e} minutes"
        for c, e in zip(sums.counted, sums.expected, strict=True)
    ]
    partial = sums[~whole]
    hourly = sums[whole].rename(columns={"hour": "ts"})[["ts", "store", "sensor_id", "count"]]
    return hourly, _partial_rows(partial, [r for r, w in zip(reasons, whole, strict=True) if not w])


def _partial_rows(partial: pd.DataFrame, reasons: list[str]) -> pa.Table:
    """Partial hours as the quarantine keeps rows: text columns and the reason."""
    text = {
        "ts": [t.strftime("%Y-%m-%dT%H:%M:%SZ") if pd.notna(t) else None for t in partial.get("hour", [])],
        "store": [str(s) for s in partial.get("store", [])],
        "sensor_id": [str(s) for s in partial.get("sensor_id", [])],
        "count": [str(c) for c in partial.get("count", [])],
        "reason": reasons,
    }
    return pa.table({k: pa.array(v, pa.string()) for k, v in text.items()})
