"""The Numenta Anomaly Benchmark's score, by NAB's own rules (github.com/numenta/NAB, nab/sweeper.py).

A detection inside a window scores tp_weight x scaledSigmoid(position), position running from
-1 at the window's first row to about 0 at its last, so the earliest detection is worth most;
only a window's first detection counts. A window without one costs fn_weight. A detection
outside every window costs fp_weight x scaledSigmoid(rows past the last window / (its width - 1))
(a full fp_weight when no window came before, or more than 3 widths after it). Detections in
the probationary period (the first min(15 % of the rows, 15 % of 5,000)) are ignored.
Normalised: 100 (raw - null) / (perfect - null), null = every window missed, perfect = every
window found at its first row with tp_weight each (NAB's normalisation).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Profile:
    tp: float = 1.0
    fn: float = 1.0
    fp: float = 0.11


@dataclass(frozen=True)
class NabScore:
    raw: float
    null: float
    perfect: float
    normalised: float
    windows_found: int
    windows: int
    false_detections: int  # detections outside every window, after probation


def scaled_sigmoid(position: float) -> float:
    """NAB's reward: 2 sigmoid(-5 x) - 1, and -1 more than 3 window widths past a window."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_rows(rows: int, share: float = 0.15) -> int:
    """NAB's getProbationPeriod: min(floor(share x rows), share x 5000)."""
    return int(min(math.floor(share * rows), share * 5000))


def nab_score(
    rows: int, detections: np.ndarray | list[int], windows: list[tuple[int, int]], profile: Profile = Profile()
) -> NabScore:
    """Score detections (row indices) against windows (first, last row, inclusive, in order)."""
    first_row = probation_rows(rows)
    found: dict[int, float] = {}
    raw_fp = 0.0
    false_detections = 0
    for i in sorted({int(d) for d in detections if first_row <= int(d) < rows}):
        inside = next((w for w, (a, b) in enumerate(windows) if a <= i <= b), None)
        if inside is not None:
            a, b = windows[inside]
            if inside not in found:  # only the first detection of a window counts
                found[inside] = profile.tp * scaled_sigmoid(-(b - i + 1) / (b - a + 1))
            continue
        before = [w for w in windows if w[1] < i]
        if before:
            a, b = before[-1]
            reward = scaled_sigmoid(abs(b - i) / (b - a + 1 - 1))
        else:
            reward = -1.0
        raw_fp += profile.fp * reward
        false_detections += 1
    raw = sum(found.values()) + raw_fp - profile.fn * (len(windows) - len(found))
    null = -profile.fn * len(windows)
    perfect = profile.tp * len(windows)
    normalised = 100.0 * (raw - null) / (perfect - null) if windows else float("nan")
    return NabScore(raw, null, perfect, normalised, len(found), len(windows), false_detections)


def load_profiles(folder: Path) -> dict[str, Profile]:
    raw = json.loads((folder / "profiles.json").read_text())
    return {
        name: Profile(tp=m["CostMatrix"]["tpWeight"], fn=m["CostMatrix"]["fnWeight"], fp=m["CostMatrix"]["fpWeight"])
        for name, m in raw.items()
    }


def load_series(folder: Path) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """nyc_taxi.csv (timestamp, value) and its windows as (first, last) row indices."""
    data = pd.read_csv(folder / "nyc_taxi.csv", parse_dates=["timestamp"])
    labels = json.loads((folder / "labels.json").read_text())
    ts = data.timestamp.to_numpy()
    windows = []
    for start, end in labels["anomaly_windows"]:
        inside = np.nonzero((ts >= np.datetime64(pd.Timestamp(start))) & (ts <= np.datetime64(pd.Timestamp(end))))[0]
        windows.append((int(inside[0]), int(inside[-1])))
    return data, windows
