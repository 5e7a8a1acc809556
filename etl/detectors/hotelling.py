"""Hotelling T² on smoothed, standardised features, with a shrinkage covariance and re-baselining.

Warm-up: the first `warmup` records (SKAB: the training rows) fit each feature's mean and standard
deviation and the correlation matrix, shrunk towards the identity by `shrink` (400 autocorrelated
rows over-fit a full 8 x 8 matrix). The threshold is the largest T² the warm-up's own records
reached (`quantile` 1 x `margin` 1: a normal stretch like the warm-up never alarms, and there is no
margin to tune). A maximum is at the mercy of one glitch, so warm-up rows whose T² exceeds `trim` x
the 0.99 quantile are left out and the fit repeated (`fit`). After the warm-up a
record alarms when its T² exceeds the threshold and stays in alarm until T² falls below `release` x
threshold (hysteresis: fewer flickering alarms). Records that do not alarm pull the baseline mean
towards themselves with weight `rebase`, so slow drift is absorbed; records that alarm do not, so a
fault is not learnt as normal while it lasts. An alarm that lasts `relearn_after` records is taken
as a new normal (a fault that left the signals changed, or an operating point the warm-up never
showed): the baseline mean jumps to the current features and the alarm ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from etl.detectors.features import features_step
from etl.detectors.state import fitted_init, hysteresis, warming, warmup_threshold


@dataclass(frozen=True)
class Params:
    warmup: int = 400  # records fitted on before anything is scored
    burn: int = 50  # first warm-up records left out of the fit while the EWMA settles
    span: float = 5.0  # EWMA span of the input smoothing, in records
    slow_span: float = 300.0  # EWMA span of the baseline a detrended feature is compared with
    detrend: tuple[int, ...] = ()  # drifting features replaced by fast - slow EWMA
    exclude: tuple[int, ...] = ()  # features left out of the score
    shrink: float = 0.3  # weight of the identity in the correlation matrix
    quantile: float = 1.0  # of the warm-up T² values (1: their maximum) ...
    margin: float = 1.0  # ... times this is the threshold
    trim: float = 2.0  # warm-up rows above trim x the warm-up's 0.99 quantile of T² are glitches, left out of the fit
    release: float = 0.5  # an alarm ends below release x threshold
    rebase: float = 0.01  # EWMA weight of a non-alarm record in the baseline mean (a ~100-record memory)
    relearn_after: int = 600  # an alarm this many records long is a new normal: the baseline jumps to it


def _check(params: Params) -> None:
    if not 0 <= params.shrink <= 1:
        raise ValueError(f"shrink must be in [0, 1], got {params.shrink}")
    if not 0 < params.quantile <= 1 or params.margin <= 0 or not 0 < params.release <= 1:
        raise ValueError("quantile must be in (0, 1], margin > 0 and release in (0, 1]")
    if params.trim < 0:
        raise ValueError(f"trim must be >= 0 (0: no glitch trimming), got {params.trim}")
    if not 0 <= params.rebase < 1:
        raise ValueError(f"rebase must be in [0, 1), got {params.rebase}")


def init(params: Params, n_features: int) -> dict[str, Any]:
    """A detector that has seen nothing yet."""
    state = fitted_init(params, n_features, center=None, scale=None, precision=None)  # checks burn first
    _check(params)
    return state


def _t2(z: np.ndarray, precision: np.ndarray) -> np.ndarray:
    return np.einsum("...i,ij,...j->...", z, precision, z)


def _fit_once(rows: np.ndarray, shrink: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    center = rows.mean(axis=0)
    scale = rows.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a constant feature: any change is measured in its raw units
    corr = np.atleast_2d(np.cov((rows - center) / scale, rowvar=False))
    precision = np.linalg.pinv((1 - shrink) * corr + shrink * np.eye(corr.shape[0]))
    return center, scale, precision


def fit(rows: np.ndarray, shrink: float, quantile: float, margin: float, trim: float = 0.0) -> dict[str, Any]:
    """Centre, scale, shrunk precision matrix and threshold from warm-up feature rows.

    With `trim` > 0, rows whose T² exceeds trim x the 0.99 quantile of the kept rows' T² are glitches
    (a single wild reading, smeared over a few rows by the EWMA): they are left out and the fit is
    repeated until none is left out anew, so one glitch sets neither the scale nor the threshold."""
    keep = np.ones(len(rows), dtype=bool)
    for _ in range(10):  # each pass drops the glitch rows the previous fit could see; 2-3 passes suffice
        center, scale, precision = _fit_once(rows[keep], shrink)
        t2 = _t2((rows - center) / scale, precision)
        if trim <= 0:
            break
        kept = t2 <= trim * np.quantile(t2[keep], 0.99)
        if (kept == keep).all() or kept.sum() < 3:
            break
        keep = kept
    threshold = warmup_threshold(t2[keep], quantile, margin)
    return {"center": center, "scale": scale, "precision": precision, "threshold": threshold}


def step(state: dict[str, Any], x: np.ndarray) -> tuple[float, dict[str, Any]]:
    """Score one record (NaN during the warm-up); returns the score and the new state."""
    p = state["params"]
    feats, features = features_step(state["features"], x, p["span"], p["slow_span"])
    new = {**state, "n": state["n"] + 1, "features": features}

    def fit_rows(rows: np.ndarray) -> dict[str, Any]:
        return fit(rows, p["shrink"], p["quantile"], p["margin"], p.get("trim", 0.0))  # a checkpoint may predate trim

    warm = warming(state, new, feats, fit_rows)
    if warm is not None:
        return float("nan"), warm
    z = (feats - state["center"]) / state["scale"]
    score = float(_t2(z, state["precision"]))
    new["alarm"] = hysteresis(state["alarm"], score, state["threshold"], p["release"])
    new["run"] = state["run"] + 1 if new["alarm"] else 0
    if not new["alarm"]:
        new["center"] = state["center"] + p["rebase"] * (feats - state["center"])
    elif new["run"] >= p["relearn_after"]:
        new.update(center=feats, run=0, alarm=False)
    return score, new
