"""Anomaly-detection scores, as SKAB (the Skoltech Anomaly Benchmark) computes them.

Point metrics pool the confusion counts over every scored point of every series, then derive
F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN) x 100 and MAR = FN / (FN + TP) x 100.
Event metrics look at contiguous labelled segments and contiguous alarm runs.

The NAB score rates changepoint detection. Each true changepoint opens a window of `width`
seconds to its right (both ends included; an overlapping next window starts where the previous
one ends, SKAB's "cut right window"). Only the first detection in a window counts, rated by a
scaled sigmoid of its position (earliest best); a window without a detection costs `fn`; every
detection outside all windows costs `fp`. Raw, null (never alarms) and perfect scores are summed
over all series before the normalisation 100 (raw - null) / (perfect - null).

Two sigmoids: "skab" is the one SKAB's leaderboard uses (tsad's "improved" scale: a tanh from
tp at the window's start down to -fp at its end, sampled on 1,000 steps); "nab" is Numenta's
original 2 / (1 + exp(5 y)) - 1 with y = -1 at the window's start and 0 at its end, times tp.
A detector's changepoints are the edges of its alarm series, as in SKAB's notebooks: a point
where the alarm switches on or off, and the first point if it alarms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SECONDS_PER_WEEK = 7 * 24 * 3600


@dataclass(frozen=True)
class Profile:
    """NAB application profile: the weight of a true positive, a false positive and a miss."""

    tp: float
    fp: float
    fn: float


PROFILES = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "low_fp": Profile(tp=1.0, fp=0.22, fn=1.0),
    "low_fn": Profile(tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True)
class Counts:
    """Point confusion counts; add them to pool series."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn)


def _binary(values: np.ndarray | Iterable, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 (or booleans)")
    return array.astype(bool)


def _pair(labels: np.ndarray | Iterable, preds: np.ndarray | Iterable) -> tuple[np.ndarray, np.ndarray]:
    truth, alarm = _binary(labels, "labels"), _binary(preds, "predictions")
    if truth.shape != alarm.shape:
        raise ValueError(f"labels ({truth.size}) and predictions ({alarm.size}) differ in length")
    return truth, alarm


def confusion(labels: np.ndarray | Iterable, preds: np.ndarray | Iterable) -> Counts:
    """Point confusion counts of one series (1 = anomaly)."""
    truth, alarm = _pair(labels, preds)
    return Counts(
        tp=int((truth & alarm).sum()),
        fp=int((~truth & alarm).sum()),
        tn=int((~truth & ~alarm).sum()),
        fn=int((truth & ~alarm).sum()),
    )


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def point_metrics(counts: Counts) -> dict[str, float]:
    """Precision, recall, SKAB's F1, FAR % and MAR % of pooled counts (NaN where undefined)."""
    c = counts
    return {
        "precision": _ratio(c.tp, c.tp + c.fp),
        "recall": _ratio(c.tp, c.tp + c.fn),
        "f1": _ratio(c.tp, c.tp + (c.fp + c.fn) / 2),
        "far": 100 * _ratio(c.fp, c.fp + c.tn),
        "mar": 100 * _ratio(c.fn, c.fn + c.tp),
    }


def runs(flags: np.ndarray | Iterable) -> np.ndarray:
    """The contiguous runs of 1s as an (n, 2) array of [first, last] indices."""
    on = _binary(flags, "flags").astype(np.int8)
    edges = np.diff(np.concatenate(([0], on, [0])))
    return np.column_stack((np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def event_counts(labels: np.ndarray | Iterable, preds: np.ndarray | Iterable) -> dict[str, int]:
    """Labelled events, how many have an alarm inside, alarm runs, and runs touching no event."""
    truth, alarm = _pair(labels, preds)
    events, alarms = runs(truth), runs(alarm)
    detected = sum(bool(alarm[a : b + 1].any()) for a, b in events)
    false = sum(not truth[a : b + 1].any() for a, b in alarms)
    return {"events": len(events), "detected": detected, "alarm_runs": len(alarms), "false_events": false}


def event_recall(counts: dict[str, int]) -> float:
    """Share of labelled events with at least one alarm inside."""
    return _ratio(counts["detected"], counts["events"])


def false_events_per_sensor_week(false_events: int, sensor_seconds: float) -> float:
    """False alarm runs per week of one sensor's monitoring (sensor_seconds summed over sensors)."""
    if sensor_seconds <= 0:
        raise ValueError("sensor_seconds must be positive")
    return false_events / (sensor_seconds / SECONDS_PER_WEEK)


def changepoints_from_alarms(alarms: np.ndarray | Iterable) -> np.ndarray:
    """1 where the alarm switches on or off (and at the first point if it alarms), else 0."""
    on = _binary(alarms, "alarms").astype(np.int8)
    if on.size == 0:
        return on
    return np.concatenate((on[:1], np.abs(np.diff(on)))).astype(np.int8)


def to_seconds(times: np.ndarray | Iterable) -> np.ndarray:
    """Timestamps (datetime64 or numbers of seconds) as float seconds."""
    array = np.asarray(times)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[ns]").astype(np.int64) / 1e9
    return array.astype(float)


def nab_windows(times: np.ndarray, true_cp: np.ndarray, width: float) -> np.ndarray:
    """Detection windows [cp, cp + width] in seconds; an overlapping next window starts at the previous end."""
    starts = to_seconds(times)[_binary(true_cp, "true changepoints")]
    windows = np.column_stack((starts, starts + width))
    for i in range(1, len(windows)):  # a handful of windows per series
        if windows[i - 1, 1] >= windows[i, 0]:
            windows[i, 0] = windows[i - 1, 1]
    return windows


def _tp_score(position: float, profile: Profile, scale: str) -> float:
    """Score of a first detection at `position` (0 = window start, 1 = window end)."""
    if scale == "skab":
        step = min(int(position * 1000), 999)
        x = -math.pi / 2 + step * math.pi / 999
        span = (profile.tp + profile.fp) / 2
        return span * -math.tanh(x) / math.tanh(math.pi / 2) + span - profile.fp
    if scale == "nab":
        return profile.tp * (2 / (1 + math.exp(5 * (position - 1))) - 1)
    raise ValueError(f"unknown NAB scale {scale!r} (use 'skab' or 'nab')")


def nab_raw(
    times: np.ndarray | Iterable,
    true_cp: np.ndarray | Iterable,
    pred_cp: np.ndarray | Iterable,
    profile: Profile,
    width: float = 60.0,
    scale: str = "skab",
) -> tuple[float, float, float]:
    """(raw, null, perfect) NAB scores of one series; sum them over series before normalising."""
    seconds = to_seconds(times)
    truth, detected = _pair(true_cp, pred_cp)
    if seconds.shape != truth.shape:
        raise ValueError(f"times ({seconds.size}) and changepoints ({truth.size}) differ in length")
    windows = nab_windows(seconds, truth, width)
    hits = seconds[detected]
    inside = np.zeros(hits.size, dtype=bool)
    raw = 0.0
    for start, end in windows:
        in_window = (hits >= start) & (hits <= end)
        inside |= in_window
        if in_window.any():
            first = hits[in_window].min()
            raw += _tp_score((first - start) / (end - start), profile, scale)
        else:
            raw -= profile.fn
    raw -= profile.fp * int((~inside).sum())
    return raw, -profile.fn * len(windows), profile.tp * len(windows)


def nab_score(
    series: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    width: float = 60.0,
    scale: str = "skab",
) -> dict[str, float]:
    """Normalised NAB score per profile over (times, true_cp, pred_cp) series, pooled as SKAB does."""
    totals = {name: np.zeros(3) for name in PROFILES}
    for times, true_cp, pred_cp in series:
        for name, profile in PROFILES.items():
            totals[name] += nab_raw(times, true_cp, pred_cp, profile, width, scale)
    return {name: 100 * _ratio(raw - null, perfect - null) for name, (raw, null, perfect) in totals.items()}
