"""Altair charts: traffic with its baseline and anomalies, trends, sensor health, robot signals.

Every store has one colour on every chart (`store_scale`), from a palette without red or orange:
those are kept for warnings (replacement line, robot ALERT/ERROR spans). Anomalies are dark
marks, told apart by shape and fill (warning: hollow circle; critical: filled diamond), so they
stand out from every series colour. Charts render as SVG (their marks are then elements a test
or a screen reader can find).
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

# Tableau 10 without its red, orange and pink: a store's line never looks like a warning.
STORE_PALETTE = ["#4e79a7", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2", "#edc948", "#bab0ac", "#1f3b73",
                 "#2f6b3a", "#6b3f66"]  # fmt: skip
ROBOT_LEVELS = alt.Scale(domain=["ALERT", "ERROR"], range=["orange", "red"])
ANOMALY_LEVELS = ["warning", "critical"]
SVG = {"embedOptions": {"renderer": "svg"}}
COUNT = ",.0f"  # visits and other counts: thousands separators, no decimals
DAY = alt.Tooltip("day:T", format="%a %Y-%m-%d")
# 1.5M, 500k, and a plain 0 (Vega's shared SI prefix would write "0M")
SI_AXIS = alt.Axis(labelExpr="datum.value == 0 ? '0' : format(datum.value, '~s')")


def store_scale(stores: Sequence[str]) -> alt.Scale:
    """The fixed store -> colour mapping (stores in the fleet's order, colours cycling past 10)."""
    names = list(stores)
    return alt.Scale(domain=names, range=[STORE_PALETTE[i % len(STORE_PALETTE)] for i in range(len(names))])


def store_color(stores: Sequence[str], legend: bool = True) -> alt.Color:
    return alt.Color("store:N", scale=store_scale(stores), title="store", legend=alt.Legend() if legend else None)


def by_level(values: list) -> alt.Scale:
    return alt.Scale(domain=ANOMALY_LEVELS, range=values)


def traffic(lines: pd.DataFrame, marks: pd.DataFrame, stores: Sequence[str]) -> alt.LayerChart:
    """Visits (solid) and the weekday-matched mean (dashed) per series, coloured by store (a door's
    line has its store's colour); anomalies as dark points on the visits line."""
    x = alt.X("period:T", title="local time")
    when = alt.Tooltip("period:T", format="%a %Y-%m-%d %H:%M", title="time")
    tooltip = [
        "series:N",
        when,
        alt.Tooltip("visits:Q", format=COUNT),
        alt.Tooltip("baseline:Q", format=COUNT, title="usual"),
        alt.Tooltip("failed:Q", format=COUNT, title="failed door-hours (counted as 0)"),
    ]
    color, detail = store_color(stores), alt.Detail("series:N")
    visits = alt.Chart(lines).mark_line().encode(x, alt.Y("visits:Q", title="visits", axis=SI_AXIS),
                                                  color, detail, tooltip=tooltip)  # fmt: skip
    baseline = alt.Chart(lines).mark_line(strokeDash=[4, 3], opacity=0.7).encode(x, alt.Y("baseline:Q"), color, detail)
    layers = [visits.properties(name="visits"), baseline.properties(name="baseline")]
    if not marks.empty:
        points = (
            alt.Chart(marks)
            .mark_point(stroke="#1a1a1a", strokeWidth=2, opacity=1)
            .encode(
                x,
                alt.Y("visits:Q"),
                alt.Shape("level:N", scale=by_level(["circle", "diamond"]), sort=ANOMALY_LEVELS, title="anomaly"),
                alt.Fill("level:N", scale=by_level(["white", "#1a1a1a"]), sort=ANOMALY_LEVELS, title="anomaly"),
                alt.Size("level:N", scale=by_level([70, 160]), sort=ANOMALY_LEVELS, title="anomaly"),
                tooltip=["series:N", when, alt.Tooltip("visits:Q", format=COUNT), "level:N", "what:N"],
            )
            .properties(name="anomalies")
        )
        layers.append(points)
    return alt.layer(*layers).properties(height=380, usermeta=SVG)


def deviation(trends: pd.DataFrame, stores: Sequence[str]) -> alt.LayerChart:
    line = (
        alt.Chart(trends)
        .mark_line(point=True)
        .encode(
            alt.X("day:T", title="local date"),
            alt.Y("perc_diff:Q", title="% from the weekday-matched mean"),
            store_color(stores),
            tooltip=["store:N", DAY, alt.Tooltip("perc_diff:Q", format="+.1f", title="% from usual")],
        )
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="gray").encode(y="y:Q")
    return alt.layer(zero, line).properties(height=300, usermeta=SVG)


def long_trend(trends: pd.DataFrame, stores: Sequence[str]) -> alt.Chart:
    return (
        alt.Chart(trends)
        .mark_line()
        .encode(
            alt.X("day:T", title="local date"),
            alt.Y("trend_28d:Q", title="visits a day, 28-day mean", axis=SI_AXIS),
            store_color(stores),
            tooltip=["store:N", DAY, alt.Tooltip("trend_28d:Q", format=COUNT, title="visits a day")],
        )
        .properties(height=300, usermeta=SVG)
    )


def failure_rates(health: pd.DataFrame, threshold: float, stores: Sequence[str], days: int) -> alt.LayerChart:
    """Failure rate per door (doors in the given row order), coloured by store; doors to replace
    are labelled above their bar, the replacement threshold is a red dashed line."""
    x = alt.X("door:N", sort=list(health.door), title=None)
    y = alt.Y("failure_rate_30d:Q", title=f"failed hours, last {days} days", axis=alt.Axis(format="%"))
    bars = alt.Chart(health).mark_bar().encode(
        x, y, store_color(stores),
        tooltip=["door:N", alt.Tooltip("failure_rate_30d:Q", format=".1%", title=f"failed, last {days} days"),
                 alt.Tooltip("failure_rate_7d:Q", format=".1%", title="failed, last 7 days"), "advice:N"],
    )  # fmt: skip
    labels = alt.Chart(health[health.advice == "replace"]).mark_text(dy=-8, fontWeight="bold").encode(
        x, y, text="advice:N"
    )  # fmt: skip
    rule = alt.Chart(pd.DataFrame({"y": [threshold]})).mark_rule(color="red", strokeDash=[4, 3]).encode(y="y:Q")
    return alt.layer(bars, labels, rule).properties(height=300, usermeta=SVG)


def failed_hours(daily: pd.DataFrame, stores: Sequence[str]) -> alt.Chart:
    return (
        alt.Chart(daily)
        .mark_bar()
        .encode(
            # a day's bar spans its day (a time unit), and the axis names days, not noon
            alt.X("day:T", timeUnit="yearmonthdate", title="local date", axis=alt.Axis(format="%a %d %b")),
            alt.Y("failed_hours:Q", title="failed door-hours"),
            store_color(stores),
            tooltip=["store:N", DAY, alt.Tooltip("failed_hours:Q", title="failed door-hours")],
        )
        .properties(height=220, usermeta=SVG)
    )


def robot_signal(signal: pd.DataFrame, incidents: pd.DataFrame) -> alt.LayerChart:
    """The axis's signal and its regression line, ALERT spans orange and ERROR spans red."""
    x = alt.X("t:T", title="time (UTC)")
    line = alt.Chart(signal).mark_line(color="steelblue", strokeWidth=1).encode(x, alt.Y("signal:Q", title="value"))
    trend = alt.Chart(signal).mark_line(color="black", strokeDash=[5, 3]).encode(x, alt.Y("trend:Q"))
    layers = [line, trend]
    if not incidents.empty:
        spans = alt.Chart(incidents).mark_rect(opacity=0.35).encode(
            alt.X("start:T"), alt.X2("end:T"), alt.Color("level:N", scale=ROBOT_LEVELS, title="incident"),
            tooltip=["level:N", "peak_level:N", "start:T", "end:T", "flagged_readings:Q"],
        )  # fmt: skip
        layers.insert(0, spans)
    return alt.layer(*layers).properties(height=340)


def distribution(hist: pd.DataFrame, ref_mean: float, ref_std: float, mean: float) -> alt.LayerChart:
    """The samples' histogram (bins from `bin` to `bin_end`), with the reference mean +- std (red)
    and the sample mean (blue)."""
    bars = (
        alt.Chart(hist)
        .mark_bar(opacity=0.7)
        .encode(
            alt.X("bin:Q", title="value", bin="binned"),
            alt.X2("bin_end:Q"),
            alt.Y("samples:Q", title="samples", axis=SI_AXIS),
            tooltip=[
                alt.Tooltip("bin:Q", format=".3f", title="from"),
                alt.Tooltip("bin_end:Q", format=".3f", title="to"),
                alt.Tooltip("samples:Q", format=COUNT),
            ],
        )
        .properties(name="histogram")
    )
    refs = pd.DataFrame({"x": [ref_mean - ref_std, ref_mean, ref_mean + ref_std],
                         "what": ["reference mean - std", "reference mean", "reference mean + std"]})  # fmt: skip
    ref = alt.Chart(refs).mark_rule(color="red", strokeDash=[4, 3]).encode(x="x:Q", tooltip=["what:N", "x:Q"])
    own = alt.Chart(pd.DataFrame({"x": [mean], "what": ["samples' mean"]})).mark_rule(color="blue").encode(
        x="x:Q", tooltip=["what:N", "x:Q"]
    )  # fmt: skip
    return alt.layer(bars, ref, own).properties(height=260, usermeta=SVG)
