"""The Live tab: the last minutes of a robot as the streaming job scores it (`python -m etl stream --write-scores`).

Reads the job's outputs in the lake: LAKE/stream/scores (each reading's imputed axes, score and
level), LAKE/alerts/stream (ALERT / ERROR episodes) and LAKE/_state/stream.json (counts). The chart
redraws itself every few seconds (a Streamlit fragment), without rerunning the page.
"""

from __future__ import annotations

import json
from pathlib import Path

import altair as alt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import streamlit as st

from contract.schemas import AXES
from dashboard.charts import ROBOT_LEVELS

REFRESH_SECONDS = 5


def live_tab(src) -> None:
    """Draw the tab for a source (dashboard.source.Listing); a snapshot has no live data."""
    st.header("Live")
    if src.snapshot:
        st.info("Live scores come from a lake the streaming job writes to (`python -m etl stream --write-scores`).")
        return
    root = Path(src.root)
    c1, c2, c3 = st.columns(3)
    robot = c1.selectbox("robot", robots(root) or ["robot-1"], key="live_robot")
    axis = c2.selectbox("axis", AXES, key="live_axis")
    minutes = c3.slider("minutes", 5, 120, 30, key="live_minutes")

    @st.fragment(run_every=REFRESH_SECONDS)
    def draw() -> None:
        counts = read_state(root)
        if counts:
            cols = st.columns(5)
            for col, (label, name) in zip(cols, (("records", "records_in"), ("alerts", "alerts"),
                                                 ("errors", "errors"), ("dead letters", "dead_letters"),
                                                 ("lag s", "lag_seconds")), strict=True):  # fmt: skip
                col.metric(label, counts.get(name) if counts.get(name) is not None else "-")
            st.caption(f"Scored up to {counts.get('last_ts')}; counts written at {counts.get('updated')}.")
        scores = recent_scores(root, robot, minutes)
        if scores.empty:
            st.info(f"No scores for {robot} yet: is `python -m etl stream --source robots --write-scores` running?")
            return
        spans = alert_spans(root, robot, scores["ts"].min(), scores["ts"].max())
        st.altair_chart(live_chart(scores, spans, axis), width="stretch")

    draw()


def robots(root: Path) -> list[str]:
    fleet = root / "reference" / "fleet.json"
    try:
        return [r["id"] for r in json.loads(fleet.read_text()).get("robots", [])]
    except (OSError, ValueError):
        return []


def read_state(root: Path) -> dict:
    try:
        return json.loads((root / "_state" / "stream.json").read_text())
    except (OSError, ValueError):
        return {}


def _read(files: list[Path], sensor: str) -> pa.Table | None:
    tables = []
    for f in files:
        try:
            t = pq.ParquetFile(f).read()
        except (OSError, pa.ArrowInvalid):  # being replaced: the next refresh reads it
            continue
        tables.append(t.filter(pc.equal(t.column("sensor"), sensor)))
    return pa.concat_tables(tables) if tables else None


def recent_scores(root: Path, robot: str, minutes: int) -> pd.DataFrame:
    """The robot's scores of the last `minutes` before its newest one, with one column per axis."""
    days = sorted((root / "stream" / "scores").glob("date=*"))[-2:]  # a window may span midnight
    table = _read([f for d in days for f in sorted(d.glob("part-*.parquet"))], robot)
    if table is None or table.num_rows == 0:
        return pd.DataFrame()
    frame = table.select(["ts", "score", "level", "x"]).to_pandas().sort_values("ts")
    frame = frame[frame["ts"] >= frame["ts"].max() - pd.Timedelta(minutes=minutes)]
    values = pd.DataFrame(frame.pop("x").tolist(), index=frame.index)
    for i, name in enumerate(AXES[: values.shape[1]]):
        frame[name] = values[i]
    return frame


def alert_spans(root: Path, robot: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """ALERT / ERROR episodes overlapping [start, end]; an open one runs to `end`."""
    files = sorted((root / "alerts" / "stream").glob("date=*/part-*.parquet"))[-16:]
    table = _read(files, robot)
    if table is None or table.num_rows == 0:
        return pd.DataFrame(columns=["start", "end", "level"])
    frame = table.select(["start", "end", "level", "peak_score"]).to_pandas()
    frame["end"] = frame["end"].fillna(end)
    return frame[(frame["end"] >= start) & (frame["start"] <= end)]


def live_chart(scores: pd.DataFrame, spans: pd.DataFrame, axis: str) -> alt.VConcatChart:
    """The axis (top) and the score (bottom), ALERT spans orange and ERROR spans red on both."""
    x = alt.X("ts:T", title="time (UTC)")

    def with_spans(chart: alt.Chart) -> alt.LayerChart:
        if spans.empty:
            return alt.layer(chart)
        rect = alt.Chart(spans).mark_rect(opacity=0.3).encode(
            alt.X("start:T"), alt.X2("end:T"), alt.Color("level:N", scale=ROBOT_LEVELS, title="alert"),
            tooltip=["level:N", "start:T", "end:T", "peak_score:Q"],
        )  # fmt: skip
        return alt.layer(rect, chart)

    signal = alt.Chart(scores).mark_line(color="steelblue", strokeWidth=1).encode(x, alt.Y(f"{axis}:Q", title=axis))
    score = (
        alt.Chart(scores)
        .mark_line(color="black", strokeWidth=1)
        .encode(x, alt.Y("score:Q", title="anomaly score"), tooltip=["ts:T", "score:Q", "level:N"])
    )
    return alt.vconcat(with_spans(signal).properties(height=220), with_spans(score).properties(height=160))
