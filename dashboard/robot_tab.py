"""The maintenance engineer's robot tab: signal and trend with ALERT/ERROR spans, incidents,
maintenance forecasts, and the simulator's fidelity against the reference axes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard import charts, queries
from dashboard.source import Listing, read_json

WINDOWS = {1: "1 day", 7: "7 days", 14: "14 days", 30: "30 days", 365: "1 year"}
URL = "query-params"


def robot_tab(src: Listing) -> None:
    st.header("Robots")
    span = queries.robot_span(src)
    axes = reference_axes(src)
    if span is None or axes.empty:
        st.info("No robot data yet: pull and transform a lake with robots.")
        return
    left, mid, right = st.columns(3)
    robot = left.selectbox("Robot", sorted(axes.robot_id.unique()), key="robot", bind=URL)
    axis = mid.selectbox("Axis", sorted(axes.axis.unique()), key="axis", bind=URL)
    days = right.selectbox("Window", list(WINDOWS), index=1, format_func=WINDOWS.get, key="window", bind=URL)
    end = dt.datetime.combine(span[1] + dt.timedelta(days=1), dt.time(), dt.UTC)
    start = max(end - dt.timedelta(days=days), dt.datetime.combine(span[0], dt.time(), dt.UTC))
    signal = queries.robot_signal(src, robot, axis, start, end)
    incidents = queries.robot_incidents(src, robot, start, end)
    st.subheader(f"{robot} {axis}: signal and regression line")
    if signal.empty:
        st.info(f"No samples of {robot} {axis} between {start:%Y-%m-%d} and {end:%Y-%m-%d}.")
    else:
        spans = incidents[incidents.axis == axis]
        st.altair_chart(charts.robot_signal(signal, spans), width="stretch")
        st.caption("Blue: mean of the moving samples per bucket. Dashed: the trend fitted on the previous 6 hours. "
                   "Orange spans: ALERT incidents; red: ERROR.")  # fmt: skip
    st.subheader(f"Incidents of {robot} ({len(incidents)})")
    st.dataframe(incidents, hide_index=True, width="stretch") if len(incidents) else st.write("None.")
    maintenance_section(src)
    fidelity_section(src, robot, axis, axes, end)


def maintenance_section(src: Listing) -> None:
    st.subheader("Maintenance forecasts")
    forecasts = queries.maintenance(src)
    due = forecasts[forecasts.days_to_error.notna()]
    if due.empty:
        st.write("No axis is drifting towards its ERROR band.")
    else:
        st.dataframe(due, hide_index=True, width="stretch")
    with st.expander(f"Every axis ({len(forecasts)})"):
        st.dataframe(forecasts, hide_index=True, width="stretch")


def fidelity_section(src: Listing, robot: str, axis: str, axes: pd.DataFrame, end: dt.datetime) -> None:
    st.subheader("Simulator fidelity: samples against the reference axes")
    files = queries.raw_robot_files(src, end - dt.timedelta(microseconds=1))
    stats = queries.fidelity(src, robot, files)
    if stats.empty:
        st.info("No raw robot samples in this source for the last day of the window.")
        return
    ref = axes[axes.robot_id == robot].set_index("axis")
    table = stats.set_index("axis").join(ref[["reference_mean", "reference_std"]])
    table["mean_error_%"] = 100 * (table["mean"] / table.reference_mean - 1)
    table["std_error_%"] = 100 * (table["std"] / table.reference_std - 1)
    st.caption(f"Over {int(table.samples.iloc[0]):,} samples a day ({len(files)} day), rests included as in "
               "the maker's reference figures.")  # fmt: skip
    st.dataframe(table.reset_index().round(4), hide_index=True, width="stretch")
    if axis in table.index:
        row = table.loc[axis]
        hist = queries.histogram(src, robot, axis, files, float(row.reference_std) / 4)
        st.altair_chart(charts.distribution(hist, row.reference_mean, row.reference_std, row["mean"]),
                        width="stretch")  # fmt: skip
        st.caption(f"{axis}: histogram of the samples; red: the reference mean and ± one std; blue: the samples' mean.")


def reference_axes(src: Listing) -> pd.DataFrame:
    """robot_id, axis, reference_mean, reference_std from the lake's fleet reference."""
    fleet = read_json(src.root, "reference", "fleet.json")
    rows = [(r["id"], a["name"], a["mean"], a["std"]) for r in fleet.get("robots", []) for a in r.get("axes", [])]
    return pd.DataFrame(rows, columns=["robot_id", "axis", "reference_mean", "reference_std"])
