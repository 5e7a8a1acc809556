"""The maintenance engineer's robot tab: signal and trend with ALERT/ERROR spans, incidents,
maintenance forecasts, and the simulator's fidelity against the reference axes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard import charts, labels, queries
from dashboard.source import Listing, read_json

WINDOWS = {1: "1 day", 7: "7 days", 14: "14 days", 30: "30 days", 365: "1 year"}
URL = "query-params"
FIDELITY_TOLERANCE_PCT = 15.0  # a day's sample mean/std within this of the reference "matches" (daily noise)
WORN_SIGMAS = 1.0  # robot_maintenance wear_sigmas from which an axis is under wear


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
    covered = (span[1] - span[0]).days + 1
    if covered < days:  # say what the data covers rather than promise a longer window
        st.caption(f"The robot data covers {covered} days ({span[0]:%d %b} to {span[1]:%d %b %Y}): the "
                   f"{WINDOWS[days]} window shows those.")  # fmt: skip
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
    st.subheader(f"Incidents of {robot} ({len(incidents):,})")
    labels.table(incidents) if len(incidents) else st.write("None.")
    maintenance_section(src)
    fidelity_section(src, robot, axis, axes, end)


def maintenance_section(src: Listing) -> None:
    st.subheader("Maintenance forecasts")
    forecasts = queries.maintenance(src)
    due = forecasts[forecasts.days_to_error.notna()]
    if due.empty:
        st.write("No axis is drifting towards its ERROR band.")
    else:
        labels.table(due)
    with st.expander(f"Every axis ({len(forecasts):,})"):
        labels.table(forecasts)


def fidelity_section(src: Listing, robot: str, axis: str, axes: pd.DataFrame, end: dt.datetime) -> None:
    st.subheader("Simulator fidelity: samples against the reference axes")
    files = queries.raw_robot_files(src, end - dt.timedelta(microseconds=1))
    stats = queries.fidelity(src, robot, files)
    if stats.empty:
        st.info("No raw robot samples in this source for the last day of the window.")
        return
    table = fidelity_table(stats, axes[axes.robot_id == robot], queries.maintenance(src), robot)
    day = queries.label_date(next(label for label, p in src.raw_robots if p == files[-1]))
    st.caption(f"Over {int(table.samples.iloc[0]):,} samples an axis on {day:%a %d %b %Y} (the last day of raw "
               "samples in the window), rests included as in the maker's reference figures. The reference is a "
               "healthy axis: an axis under wear is expected to be off it.")  # fmt: skip
    labels.table(table, {"mean_error": "pct100", "std_error": "pct100", "samples": "int"})
    if axis in set(table.axis):
        row = table.set_index("axis").loc[axis]
        hist = queries.histogram(src, robot, axis, files, float(row.reference_std) / 4)
        st.altair_chart(charts.distribution(hist, row.reference_mean, row.reference_std, row.sample_mean),
                        width="stretch")  # fmt: skip
        st.caption(f"{axis}: histogram of the samples; red dashed: the reference mean and ± one std; blue: the "
                   "samples' mean. The tall bar near 0 is the axis at rest (the reference figures include "
                   "rests).")  # fmt: skip


def fidelity_table(stats: pd.DataFrame, ref: pd.DataFrame, forecasts: pd.DataFrame, robot: str) -> pd.DataFrame:
    """Each axis's sample mean and std against the reference, and why it deviates: an axis the
    maintenance forecast sees wearing is off the healthy reference by design."""
    table = stats.merge(ref[["axis", "reference_mean", "reference_std"]], on="axis", how="left")
    table["mean_error"] = 100 * (table["mean"] / table.reference_mean - 1)
    table["std_error"] = 100 * (table["std"] / table.reference_std - 1)
    wear = forecasts[forecasts.robot_id == robot][["axis", "status", "wear_sigmas"]]
    table = table.merge(wear, on="axis", how="left")
    table["note"] = [fidelity_note(r) for r in table.itertuples()]
    cols = ["axis", "note", "mean_error", "std_error", "mean", "reference_mean", "std", "reference_std", "samples"]
    return table[cols].rename(columns={"mean": "sample_mean", "std": "sample_std"})


def fidelity_note(row: tuple) -> str:
    """`row`: a row (itertuples) of fidelity_table's frame."""
    off = max(abs(row.mean_error), abs(row.std_error)) > FIDELITY_TOLERANCE_PCT
    worn = pd.notna(row.wear_sigmas) and row.wear_sigmas >= WORN_SIGMAS
    if worn:
        return f"under wear, {row.wear_sigmas:.1f} sigmas above healthy ({row.status})"
    if off:
        return "off the reference and not wearing: check the simulator"
    return "matches the reference"


def reference_axes(src: Listing) -> pd.DataFrame:
    """robot_id, axis, reference_mean, reference_std from the lake's fleet reference."""
    fleet = read_json(src.root, "reference", "fleet.json")
    rows = [(r["id"], a["name"], a["mean"], a["std"]) for r in fleet.get("robots", []) for a in r.get("axes", [])]
    return pd.DataFrame(rows, columns=["robot_id", "axis", "reference_mean", "reference_std"])
