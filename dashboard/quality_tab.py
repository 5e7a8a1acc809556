"""The Model quality tab: each detector's scores over time, its worst slices, and a slice's errors.

Reads the marts that `python -m etl quality` writes: detector_scores (one row per detector and run)
and detector_slices (the slices of each run, worst first). Parameterised DuckDB over the Listing's
files, as dashboard/queries.py does; charts in Altair.
"""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.source import Listing, query

FILES = "read_parquet($files, hive_partitioning = false, union_by_name = true)"  # columns may grow between runs
METRICS = {
    "f1": "F1 (SKAB)", "precision": "precision", "recall": "recall", "far": "FAR %", "mar": "MAR %",
    "event_recall": "event recall", "false_per_sensor_week": "false events / sensor-week",
    "nab_standard": "NAB standard", "nab_low_fp": "NAB low FP", "nab_low_fn": "NAB low FN",
}  # fmt: skip
SLICE_ROWS = 200


def scores(src: Listing) -> pd.DataFrame:
    files = src.files("detector_scores")
    if not files:
        return pd.DataFrame()
    sql = f"""
        SELECT run_at, source, detector, detector_version, in_sample, data_version, points, positives, tp, fp, tn, fn,
               {", ".join(METRICS)}
        FROM {FILES} ORDER BY run_at, detector"""
    return query(src.version, sql, {"files": files})


def slices(src: Listing, detector: str, source: str) -> pd.DataFrame:
    """The slices of the detector's latest run on a source, significantly worse first, then by gap."""
    files = src.files("detector_slices")
    if not files:
        return pd.DataFrame()
    sql = f"""
        WITH mine AS (SELECT * FROM {FILES} WHERE detector = $detector AND source = $source)
        SELECT measure, slice, gap, rate, overall_rate, q_value, significant, support, judged_points, errors,
               tp, fp, tn, fn, examples, tried, run_at
        FROM mine WHERE run_at = (SELECT max(run_at) FROM mine)
        ORDER BY significant DESC, gap DESC LIMIT {SLICE_ROWS}"""
    return query(src.version, sql, {"files": files, "detector": detector, "source": source})


def history_chart(history: pd.DataFrame, metric: str) -> alt.Chart:
    return (
        alt.Chart(history)
        .mark_line(point=True)
        .encode(
            alt.X("run_at:T", title="run", axis=alt.Axis(format="%Y-%m-%d %H:%M")),  # one run: no ".766" ticks
            alt.Y(f"{metric}:Q", title=METRICS[metric]),
            alt.Color("detector:N", title=None),
            tooltip=["detector:N", "run_at:T", f"{metric}:Q", "detector_version:N", "data_version:N"],
        )
        .properties(height=300)
    )


def quality_tab(src: Listing) -> None:
    st.header("Model quality")
    history = scores(src)
    if history.empty:
        st.info("No detector scores yet: run `python -m etl quality --lake LAKE --api URL`.")
        return
    left, right = st.columns(2)
    metric = left.selectbox("Metric", list(METRICS), format_func=METRICS.get, key="quality_metric")
    sources = sorted(history.source.unique())
    source = right.selectbox("Ground truth", sources, key="quality_source")
    mine = history[history.source == source]
    st.subheader(f"{METRICS[metric]} over time")
    st.altair_chart(history_chart(mine, metric), width="stretch")
    latest = mine[mine.run_at == mine.run_at.max()]
    st.dataframe(latest.drop(columns=["source"]), hide_index=True, width="stretch")
    detector = st.selectbox("Detector", sorted(mine.detector.unique()), key="quality_detector")
    slice_section(src, detector, source)


def slice_section(src: Listing, detector: str, source: str) -> None:
    found = slices(src, detector, source)
    st.subheader(f"Slices where {detector} is worse")
    if found.empty:
        st.write("No slice had enough points to judge.")
        return
    worse = found[found.significant]
    tried = int(found.tried.iloc[0])
    st.caption(f"{len(worse)} of {tried} slices tried are significantly worse (Fisher exact, Benjamini-Hochberg "
               "at 5 %); `miss`: missed share of the anomalous points, `false_alarm`: alarmed share of "
               "the rest.")  # fmt: skip
    shown = found.drop(columns=["examples", "tried", "run_at", "tp", "fp", "tn", "fn"])
    st.dataframe(shown, hide_index=True, width="stretch")
    labels = [f"{r.measure}: {r.slice}" for r in found.itertuples()]
    picked = st.selectbox("Slice", range(len(labels)), format_func=labels.__getitem__, key="quality_slice")
    row = found.iloc[picked]
    st.write(f"Confusion counts of `{row.slice}` ({row.support} points)")
    counts = pd.DataFrame(
        {"alarm": [int(row.tp), int(row.fp)], "no alarm": [int(row.fn), int(row.tn)]},
        index=["anomaly", "normal"],
    )
    st.dataframe(counts, width="content")
    examples = pd.DataFrame(json.loads(row.examples or "[]"))
    kind = "missed anomalies" if row.measure == "miss" else "false alarms"
    st.write(f"Examples ({kind})")
    st.dataframe(examples, hide_index=True, width="stretch") if len(examples) else st.write("None.")
