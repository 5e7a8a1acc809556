"""Score detectors on labelled points: one table row per scored point of a series, scored with metrics.py.

A points frame has, per point: `detector`, `series` (a door, an axis, a file), `ts`, `step_seconds`
(how long a point stands for), `label` and `alarm` (booleans), and any feature columns that
slices.py may cut it by. Point metrics pool the counts over every point; events are the
contiguous runs of labels and alarms within a series; NAB takes the edges of the label runs as
the true changepoints (SKAB's `changepoint` column where a data set has one) and the edges of the
alarm runs as the detected ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.quality import metrics as m

POINT_COLUMNS = ("detector", "series", "ts", "step_seconds", "label", "alarm")
SCORE_COLUMNS = (
    "points", "positives", "tp", "fp", "tn", "fn", "precision", "recall", "f1", "far", "mar",
    "events", "detected", "event_recall", "alarm_runs", "false_events", "sensor_weeks", "false_per_sensor_week",
    "nab_standard", "nab_low_fp", "nab_low_fn",
)  # fmt: skip


def check_points(points: pd.DataFrame) -> None:
    missing = [c for c in POINT_COLUMNS if c not in points.columns]
    if missing:
        raise ValueError(f"points lack the columns {missing}")


def naive_utc(ts: pd.Series) -> np.ndarray:
    """Timestamps as datetime64 in UTC (metrics.to_seconds takes no time zones)."""
    return pd.to_datetime(ts, utc=True).dt.tz_localize(None).to_numpy()


def nab_window(points: pd.DataFrame) -> float:
    """NAB's window: SKAB uses 60 s at 1 s a point; here a few points of the series' own step."""
    return float(points["step_seconds"].median()) * 60 if len(points) else 60.0


def score(points: pd.DataFrame, nab_width: float | None = None) -> dict[str, float]:
    """Every metric of one detector's points (all series pooled)."""
    check_points(points)
    counts, events = m.Counts(), {"events": 0, "detected": 0, "alarm_runs": 0, "false_events": 0}
    nab_input, seconds = [], 0.0
    for _, s in points.sort_values(["series", "ts"]).groupby("series", sort=False):  # a few dozen series
        truth, alarm = s["label"].to_numpy(bool), s["alarm"].to_numpy(bool)
        counts = counts + m.confusion(truth, alarm)
        for key, value in m.event_counts(truth, alarm).items():
            events[key] += value
        true_cp = s["changepoint"].to_numpy(bool) if "changepoint" in s else m.changepoints_from_alarms(truth)
        nab_input.append((naive_utc(s["ts"]), true_cp, m.changepoints_from_alarms(alarm)))
        seconds += float(s["step_seconds"].sum())
    width = nab_width if nab_width is not None else nab_window(points)
    nab = m.nab_score(nab_input, width=width)
    return {
        "points": len(points),
        "positives": counts.tp + counts.fn,
        "tp": counts.tp, "fp": counts.fp, "tn": counts.tn, "fn": counts.fn,
        **m.point_metrics(counts),
        **events,
        "event_recall": m.event_recall(events),
        "sensor_weeks": seconds / m.SECONDS_PER_WEEK,
        "false_per_sensor_week": m.false_events_per_sensor_week(events["false_events"], seconds) if seconds else np.nan,
        "nab_standard": nab["standard"], "nab_low_fp": nab["low_fp"], "nab_low_fn": nab["low_fn"],
    }  # fmt: skip


def score_all(points: pd.DataFrame, nab_width: float | None = None) -> pd.DataFrame:
    """One row per detector: its scores over all its points (slice "all")."""
    check_points(points)
    rows = [{"detector": d, "slice": "all", **score(p, nab_width)} for d, p in points.groupby("detector", sort=True)]
    return pd.DataFrame(rows, columns=["detector", "slice", *SCORE_COLUMNS])
