"""Slice discovery (after FreaAI): where a detector is significantly worse than elsewhere.

A slice is one feature value or a pair of them (store, door, robot, axis, weekday, a two-hour
band, and a value range of each numeric feature). Value ranges are the leaves of a depth-2
decision tree on the point error (label != alarm) over that feature alone, as FreaAI does,
each leaf at least `min_support` points. Two error rates are judged: `miss` (missed share of the
labelled points) and `false_alarm` (alarmed share of the unlabelled points). Each slice with at
least `min_support` points and `min_class` points of the judged class is tested against the
rest of the points with a one-sided Fisher exact test (the hypergeometric tail: a z test
claims significance for 1 error in 30 points when errors are rare); the p values of every slice tried for
a detector are corrected together (Benjamini-Hochberg), and the slices are ranked by the gap
between their rate and the overall rate.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

from etl.quality.scoring import POINT_COLUMNS, check_points

CATEGORICAL = ("store", "door", "robot", "axis", "weekday", "hour_band")
NOT_FEATURES = {*POINT_COLUMNS, "changepoint", "hour", *CATEGORICAL}
MEASURES = ("miss", "false_alarm")


@dataclass(frozen=True)
class SliceParams:
    min_support: int = 30  # points in a slice
    min_class: int = 5  # labelled (or unlabelled) points in a slice for its rate to be judged
    alpha: float = 0.05  # false discovery rate
    examples: int = 5  # erroneous points kept per slice, for the dashboard
    keep: int = 200  # slices kept per detector, the worst first (all are counted in `tried`)


def hour_band(hours: pd.Series) -> pd.Series:
    start = (hours.astype(int) // 2) * 2
    return start.map(lambda h: f"{h:02d}-{h + 2:02d}")  # 12 values


def best_split(x: np.ndarray, e: np.ndarray, min_leaf: int) -> float | None:
    """The threshold of x that best separates the errors e (Gini), both sides >= min_leaf points."""
    order = np.argsort(x, kind="stable")
    xs, es = x[order], e[order].astype(float)
    n = len(xs)
    left_n = np.arange(1, n)
    left_e = np.cumsum(es)[:-1]
    right_n, right_e = n - left_n, es.sum() - left_e
    ok = (left_n >= min_leaf) & (right_n >= min_leaf) & (xs[1:] > xs[:-1])
    if not ok.any():
        return None
    pl, pr = left_e / left_n, right_e / right_n
    impurity = left_n * pl * (1 - pl) + right_n * pr * (1 - pr)
    i = int(np.argmin(np.where(ok, impurity, np.inf)))
    parent = n * (es.mean()) * (1 - es.mean())
    return float((xs[i] + xs[i + 1]) / 2) if impurity[i] < parent else None


def tree_edges(x: np.ndarray, e: np.ndarray, min_leaf: int, depth: int = 2) -> list[float]:
    """The thresholds of a depth-`depth` tree over one feature."""
    if depth == 0 or len(x) < 2 * min_leaf:
        return []
    cut = best_split(x, e, min_leaf)
    if cut is None:
        return []
    low = x <= cut
    return [*tree_edges(x[low], e[low], min_leaf, depth - 1), cut, *tree_edges(x[~low], e[~low], min_leaf, depth - 1)]


def value_ranges(points: pd.DataFrame, column: str, min_leaf: int) -> pd.Series:
    """Each point's tree leaf of a numeric feature, as text such as `visits (12.5, 40]`."""
    x = points[column].to_numpy(dtype=float)
    known = ~np.isnan(x)
    error = (points["label"] != points["alarm"]).to_numpy()
    edges = tree_edges(x[known], error[known], min_leaf)
    bounds = [-np.inf, *edges, np.inf]
    labels = [f"({a:.4g}, {b:.4g}]" for a, b in itertools.pairwise(bounds)]
    leaves = pd.cut(pd.Series(x, index=points.index), bounds, labels=labels).astype(object)
    return leaves.where(known, "missing")


def features(points: pd.DataFrame, params: SliceParams) -> pd.DataFrame:
    """The categorical columns slices are cut by (numeric ones as tree ranges), as text."""
    cut = pd.DataFrame(index=points.index)
    if "hour" in points and "hour_band" not in points:
        points = points.assign(hour_band=hour_band(points["hour"]))
    for column in CATEGORICAL:
        if column in points and points[column].nunique(dropna=False) > 1:
            cut[column] = points[column].astype(str)
    numeric = [c for c in points.columns if c not in NOT_FEATURES and pd.api.types.is_numeric_dtype(points[c])]
    for column in numeric:
        ranges = value_ranges(points, column, params.min_support)
        if ranges.nunique() > 1:
            cut[column] = ranges
    return cut


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (q values)."""
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def _groups(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    sums = frame.groupby(columns, sort=False, observed=True)[["n", "tp", "fp", "tn", "fn"]].sum().reset_index()
    sums["slice"] = [
        " & ".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))
        for values in sums[columns].itertuples(index=False)
    ]  # one label per group, not per point
    sums["features"] = len(columns)
    return sums.drop(columns=columns)


def candidates(points: pd.DataFrame, cut: pd.DataFrame) -> pd.DataFrame:
    """Confusion counts of every single-feature and pair slice."""
    label, alarm = points["label"].to_numpy(bool), points["alarm"].to_numpy(bool)
    counts = cut.assign(
        n=1, tp=(label & alarm).astype(int), fp=(~label & alarm).astype(int),
        tn=(~label & ~alarm).astype(int), fn=(label & ~alarm).astype(int),
    )  # fmt: skip
    columns = list(cut.columns)
    sets = [[c] for c in columns] + [list(p) for p in itertools.combinations(columns, 2)]
    frames = [_groups(counts, s) for s in sets]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def test_slices(slices: pd.DataFrame, totals: pd.Series, params: SliceParams) -> pd.DataFrame:
    """One row per slice and measure with its rate, the rest's, z, p, q and whether it is worse."""
    rows = []
    for measure in MEASURES:
        if measure == "miss":
            k, n, total_k, total_n = slices.fn, slices.tp + slices.fn, totals.fn, totals.tp + totals.fn
        else:
            k, n, total_k, total_n = slices.fp, slices.fp + slices.tn, totals.fp, totals.fp + totals.tn
        rest_k, rest_n = total_k - k, total_n - n
        judged = (slices.n >= params.min_support) & (n >= params.min_class) & (rest_n > 0)
        rate, rest = k / n.where(n > 0), rest_k / rest_n.where(rest_n > 0)
        pooled = total_k / total_n if total_n else np.nan
        # P(at least k errors among the slice's n points drawn from all total_n with total_k errors)
        p_value = hypergeom.sf(k - 1, total_n, total_k, n)
        rows.append(
            slices.assign(
                measure=measure,
                support=slices.n,
                judged_points=n,
                errors=k,
                rate=rate,
                rest_rate=rest,
                overall_rate=pooled,
                gap=rate - pooled,
                p_value=p_value,
            )[judged]
        )
    tested = pd.concat(rows, ignore_index=True)
    tested["q_value"] = bh(tested["p_value"].to_numpy())
    tested["significant"] = (tested["q_value"] < params.alpha) & (tested["gap"] > 0)
    tested["tried"] = len(tested)
    return tested.sort_values(["significant", "gap"], ascending=[False, False], kind="stable")


def examples(points: pd.DataFrame, cut: pd.DataFrame, slice_text: str, measure: str, limit: int) -> str:
    """Up to `limit` erroneous points of a slice as JSON [{series, ts}] for the dashboard."""
    mask = np.ones(len(points), dtype=bool)
    for condition in slice_text.split(" & "):
        column, value = condition.split("=", 1)
        mask &= (cut[column] == value).to_numpy()
    wrong = points["label"] & ~points["alarm"] if measure == "miss" else ~points["label"] & points["alarm"]
    picked = points[mask & wrong.to_numpy()].head(limit)
    pairs = zip(picked.series, picked.ts, strict=True)
    return json.dumps([{"series": s, "ts": pd.Timestamp(t).isoformat()} for s, t in pairs])


SLICE_COLUMNS = [
    "detector", "measure", "slice", "features", "support", "judged_points", "errors", "rate", "rest_rate",
    "overall_rate", "gap", "p_value", "q_value", "significant", "tried", "tp", "fp", "tn", "fn", "examples",
]  # fmt: skip


def discover(points: pd.DataFrame, params: SliceParams = SliceParams()) -> pd.DataFrame:
    """The slices of one detector's points, worst first (significant ones on top)."""
    check_points(points)
    points = points.reset_index(drop=True)
    cut = features(points, params)
    found = candidates(points, cut)
    if found.empty:
        return pd.DataFrame(columns=SLICE_COLUMNS)
    label, alarm = points["label"].to_numpy(bool), points["alarm"].to_numpy(bool)
    totals = pd.Series({"tp": (label & alarm).sum(), "fp": (~label & alarm).sum(),
                        "tn": (~label & ~alarm).sum(), "fn": (label & ~alarm).sum()})  # fmt: skip
    tested = test_slices(found, totals, params).head(params.keep).reset_index(drop=True)
    tested["examples"] = [
        examples(points, cut, s, m, params.examples) for s, m in zip(tested["slice"], tested["measure"], strict=True)
    ]
    tested["detector"] = points["detector"].iloc[0]
    return tested[SLICE_COLUMNS]


def discover_all(points: pd.DataFrame, params: SliceParams = SliceParams()) -> pd.DataFrame:
    frames = [discover(p, params) for _, p in points.groupby("detector", sort=True)]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SLICE_COLUMNS)
