"""Readable tables: column names as a person reads them, numbers with thousands separators.

The marts' column names (`failure_rate_30d`, `replacement_warning`) are for SQL, not for a
store owner: `table()` shows a frame with labels and formats, the data itself unchanged (the
downloads keep the marts' names).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

# column -> (label, format): "int" thousands separators, "pct" a 0..1 share shown as %,
# "pct100" a value already in %, "dec" 2 decimals, "text", "long" (a sentence: a wide column), "date", "time"
COLUMNS: dict[str, tuple[str, str]] = {
    "store": ("Store", "text"),
    "sensor_id": ("Door", "int"),
    "door": ("Door", "text"),
    "series": ("Store / door", "text"),
    "ts": ("Hour (UTC)", "time"),
    "period": ("Time (local)", "time"),
    "local_date": ("Local date", "date"),
    "local_hour": ("Local hour", "int"),
    "weekday": ("Weekday (1 = Mon)", "int"),
    "visits": ("Visits", "int"),
    "baseline": ("Usual visits", "int"),
    "failed_readings": ("Failed hours", "int"),
    "hours": ("Hours read", "int"),
    "hours_in_day": ("Hours in the day", "int"),
    "doors_reporting": ("Doors reporting", "int"),
    "partial": ("Partial day", "text"),
    "incomplete": ("A door failed", "text"),
    "running_mean": ("Usual (mean of the same weekday, 4 weeks)", "int"),
    "baseline_periods": ("Weeks in the usual", "int"),
    "avg_count_4days": ("Mean of the last 4 same weekdays", "int"),
    "perc_diff": ("% from usual", "pct100"),
    "level": ("Level", "text"),
    "what": ("What", "long"),
    "failure_rate_7d": ("Failed hours, last 7 days", "pct"),
    "failure_rate_30d": ("Failed hours, last 30 days", "pct"),
    "failure_trend": ("Change against the week before", "pct"),
    "traffic_share": ("Share of the store's visits", "pct"),
    "median_share": ("Median share of its store's doors", "pct"),
    "robot_id": ("Robot", "text"),
    "axis": ("Axis", "text"),
    "date": ("Date", "date"),
    "status": ("Forecast", "text"),
    "days_to_error": ("Days to the ERROR band", "dec"),
    "wear_sigmas": ("Wear (sigmas above healthy)", "dec"),
    "wear_sigmas_per_day": ("Wear per day (sigmas)", "dec"),
    "level_now": ("Level now", "dec"),
    "healthy_level": ("Healthy level", "dec"),
    "days_fitted": ("Days fitted", "int"),
    "start": ("Start (UTC)", "time"),
    "end": ("End (UTC)", "time"),
    "peak_level": ("Peak level", "text"),
    "flagged_readings": ("Flagged readings", "int"),
    "median_sigmas": ("Median sigmas", "dec"),
    "peak_sigmas": ("Peak sigmas", "dec"),
    "samples": ("Samples", "int"),
    "sample_mean": ("Sample mean", "dec"),
    "reference_mean": ("Reference mean", "dec"),
    "mean_error": ("Mean off the reference", "pct100"),
    "sample_std": ("Sample std", "dec"),
    "reference_std": ("Reference std", "dec"),
    "std_error": ("Std off the reference", "pct100"),
    "note": ("Why", "long"),
}


def label(column: str) -> str:
    return COLUMNS.get(column, (column.replace("_", " ").capitalize(), ""))[0]


def config(frame: pd.DataFrame, formats: dict[str, str] | None = None, names: dict[str, str] | None = None) -> dict:
    """st.dataframe column_config: each column's label (`names` overriding) and number format."""
    out = {}
    for column in frame.columns:
        name, kind = COLUMNS.get(column, (label(column), ""))
        name = (names or {}).get(column, name)
        kind = (formats or {}).get(column, kind)
        if not kind and pd.api.types.is_integer_dtype(frame[column]):
            kind = "int"
        elif not kind and pd.api.types.is_float_dtype(frame[column]):
            kind = "dec"
        out[column] = column_type(name, kind)
    return out


def column_type(name: str, kind: str) -> st.column_config.Column:
    if kind == "int":
        return st.column_config.NumberColumn(name, format="localized", step=1)
    if kind == "pct":
        return st.column_config.NumberColumn(name, format="percent")
    if kind == "pct100":
        return st.column_config.NumberColumn(name, format="%+.1f %%")
    if kind == "dec":
        return st.column_config.NumberColumn(name, format="%.2f")
    if kind == "date":
        return st.column_config.DateColumn(name, format="YYYY-MM-DD")
    if kind == "time":
        return st.column_config.DatetimeColumn(name, format="YYYY-MM-DD HH:mm")
    if kind == "long":
        return st.column_config.Column(name, width="large")
    return st.column_config.Column(name)


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None, names: dict[str, str] | None = None) -> None:
    """st.dataframe with readable column names and formats."""
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config(frame, formats, names))
