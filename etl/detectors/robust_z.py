"""Per-feature robust z: the largest |x - median| / (1.4826 MAD) over the smoothed features.

The same pipeline, warm-up, threshold, hysteresis and re-baselining as `hotelling`, without the
covariance: a simple, explainable baseline that names the feature that moved. Its parameters
were not tuned on SKAB (margin 1.5 and rebase 0.003 were hotelling's first choice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from etl.detectors.features import features_step
from etl.detectors.state import fitted_init, hysteresis, warming, warmup_threshold


@dataclass(frozen=True)
class Params:
    warmup: int = 400
    burn: int = 50
    span: float = 5.0
    slow_span: float = 300.0
    detrend: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()
    quantile: float = 0.99
    margin: float = 1.5
    release: float = 0.5
    rebase: float = 0.003
    relearn_after: int = 600


def init(params: Params, n_features: int) -> dict[str, Any]:
    """A detector that has seen nothing yet."""
    return fitted_init(params, n_features, center=None, scale=None)


def fit(rows: np.ndarray, quantile: float, margin: float) -> dict[str, Any]:
    """Medians, MAD scales and the threshold from warm-up feature rows."""
    center = np.median(rows, axis=0)
    mad = 1.4826 * np.median(np.abs(rows - center), axis=0)
    spread = rows.std(axis=0)
    scale = np.where(mad > 0, mad, np.where(spread > 0, spread, 1.0))  # MAD 0 on quantised sensors
    scores = np.abs((rows - center) / scale).max(axis=1)
    return {"center": center, "scale": scale, "threshold": warmup_threshold(scores, quantile, margin)}


def step(state: dict[str, Any], x: np.ndarray) -> tuple[float, dict[str, Any]]:
    """Score one record (NaN during the warm-up); returns the score and the new state."""
    p = state["params"]
    feats, features = features_step(state["features"], x, p["span"], p["slow_span"])
    new = {**state, "n": state["n"] + 1, "features": features}
    warm = warming(state, new, feats, lambda rows: fit(rows, p["quantile"], p["margin"]))
    if warm is not None:
        return float("nan"), warm
    score = float(np.abs((feats - state["center"]) / state["scale"]).max())
    new["alarm"] = hysteresis(state["alarm"], score, state["threshold"], p["release"])
    new["run"] = state["run"] + 1 if new["alarm"] else 0
    if not new["alarm"]:
        new["center"] = state["center"] + p["rebase"] * (feats - state["center"])
    elif new["run"] >= p["relearn_after"]:
        new.update(center=feats, run=0, alarm=False)
    return score, new
