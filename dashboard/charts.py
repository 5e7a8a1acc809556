"""Altair charts: traffic with its baseline and anomalies, robot signals with ALERT/ERROR spans."""

from __future__ import annotations

import altair as alt
import pandas as pd

LEVEL_COLORS = alt.Scale(domain=["warning", "critical"], range=["orange", "red"])
ROBOT_LEVELS = alt.Scale(domain=["ALERT", "ERROR"], range=["orange", "red"])


def traffic(lines: pd.DataFrame, flagged: pd.DataFrame, points: bool) -> alt.LayerChart:
    """Visits (solid) and the weekday-matched mean (dashed) per series; anomalies as points, or as
    rules when the chart sums several periods per point (their own values would not be on scale)."""
    x = alt.X("period:T", title="local time")
    color = alt.Color("series:N", title=None)
    tooltip = ["series:N", alt.Tooltip("period:T", format="%Y-%m-%d %H:%M"), "visits:Q", "baseline:Q"]
    visits = alt.Chart(lines).mark_line().encode(x, alt.Y("visits:Q", title="visits"), color, tooltip=tooltip)
    baseline = alt.Chart(lines).mark_line(strokeDash=[4, 3], opacity=0.7).encode(x, alt.Y("baseline:Q"), color)
    # Solid and dashed lines of a series share one colour scale, so the legend lists each series once.
    series = alt.layer(visits, baseline)
    if flagged.empty:
        return series.properties(height=380)
    level = alt.Color("level:N", scale=LEVEL_COLORS, title="anomaly")
    tips = ["series:N", "period:T", "visits:Q", "baseline:Q", "change:Q", "level:N"]
    mark = alt.Chart(flagged).mark_point(filled=True, size=90) if points else alt.Chart(flagged).mark_rule()
    anomalies = mark.encode(x, alt.Y("visits:Q"), level, tooltip=tips) if points else mark.encode(x, level)
    return alt.layer(series, anomalies).resolve_scale(color="independent").properties(height=380)


def deviation(trends: pd.DataFrame) -> alt.LayerChart:
    line = (
        alt.Chart(trends)
        .mark_line(point=True)
        .encode(
            alt.X("day:T", title="local date"),
            alt.Y("perc_diff:Q", title="% from the weekday-matched mean"),
            alt.Color("store:N", title=None),
            tooltip=["store:N", "day:T", alt.Tooltip("perc_diff:Q", format=".1f")],
        )
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="gray").encode(y="y:Q")
    return alt.layer(zero, line).properties(height=300)


def long_trend(trends: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(trends)
        .mark_line()
        .encode(
            alt.X("day:T", title="local date"),
            alt.Y("trend_28d:Q", title="visits a day, 28-day mean"),
            alt.Color("store:N", title=None),
        )
        .properties(height=300)
    )


def failure_rates(health: pd.DataFrame, threshold: float) -> alt.LayerChart:
    bars = (
        alt.Chart(health)
        .mark_bar()
        .encode(
            alt.X("door:N", sort="-y", title=None),
            alt.Y("failure_rate_30d:Q", title="failed hours, last 30 days", axis=alt.Axis(format="%")),
            alt.Color("replacement_warning:N", scale=alt.Scale(domain=[False, True], range=["steelblue", "red"])),
            tooltip=[
                "door:N",
                alt.Tooltip("failure_rate_30d:Q", format=".1%"),
                alt.Tooltip("failure_rate_7d:Q", format=".1%"),
            ],
        )
    )
    rule = alt.Chart(pd.DataFrame({"y": [threshold]})).mark_rule(color="red", strokeDash=[4, 3]).encode(y="y:Q")
    return alt.layer(bars, rule).properties(height=300)


def failed_hours(daily: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(daily)
        .mark_bar()
        .encode(alt.X("day:T", title="local date"), alt.Y("failed_hours:Q", title="failed door-hours"), color="store:N")
        .properties(height=220)
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
    """The samples' histogram, with the reference mean +- std (red) and the sample mean (blue)."""
    bars = (
        alt.Chart(hist)
        .mark_bar(opacity=0.7)
        .encode(alt.X("bin:Q", title="value", bin="binned"), alt.Y("samples:Q", title="samples"))
    )
    refs = pd.DataFrame({"x": [ref_mean - ref_std, ref_mean, ref_mean + ref_std], "what": ["-std", "mean", "+std"]})
    ref = alt.Chart(refs).mark_rule(color="red", strokeDash=[4, 3]).encode(x="x:Q", tooltip=["what:N", "x:Q"])
    own = alt.Chart(pd.DataFrame({"x": [mean]})).mark_rule(color="blue").encode(x="x:Q")
    return alt.layer(bars, ref, own).properties(height=260)
