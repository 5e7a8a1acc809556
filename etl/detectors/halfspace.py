"""river's HalfSpaceTrees with the air-quality reference's recipe, kept for continuity.

The reference scored one feature with 10 trees of height 8 over a window of 72 records, fixed
limits, and kept scores above 0.7. Here every feature is scaled into [0, 1] by its running
minimum and maximum (the limits are not known in advance for a new sensor), the model scores and
then learns every record, and the fixed 0.7 is replaced by a threshold calibrated on the warm-up:
the `quantile` of the warm-up's scores times `margin`, capped at 1 (scores live in [0, 1]).
The model is a river object: the state pickles, but is not JSON, and `step` updates it in place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from river import anomaly

from etl.detectors.state import impute, impute_init, warmup_threshold


@dataclass(frozen=True)
class Params:
    warmup: int = 400
    n_trees: int = 10
    height: int = 8
    window_size: int = 72
    seed: int = 42
    quantile: float = 0.99
    margin: float = 1.0


def init(params: Params, n_features: int) -> dict[str, Any]:
    """A detector that has seen nothing yet."""
    if params.warmup < params.window_size:
        raise ValueError(f"warmup ({params.warmup}) must cover at least one window ({params.window_size})")
    model = anomaly.HalfSpaceTrees(
        n_trees=params.n_trees, height=params.height, window_size=params.window_size, seed=params.seed
    )
    return {
        "params": asdict(params),
        "n": 0,
        "imp": impute_init(n_features),
        "low": np.full(n_features, np.inf),
        "high": np.full(n_features, -np.inf),
        "model": model,
        "warm": [],
        "threshold": None,
        "alarm": False,
    }


def step(state: dict[str, Any], x: np.ndarray) -> tuple[float, dict[str, Any]]:
    """Score one record, then learn it; the score is NaN during the warm-up."""
    p = state["params"]
    filled, imp = impute(state["imp"], x)
    low, high = np.minimum(state["low"], filled), np.maximum(state["high"], filled)
    width = np.where(high > low, high - low, 1.0)
    scaled = {i: float(v) for i, v in enumerate((filled - low) / width)}
    score = float(state["model"].score_one(scaled))
    state["model"].learn_one(scaled)
    new = {**state, "n": state["n"] + 1, "imp": imp, "low": low, "high": high}
    if state["threshold"] is None:
        new["warm"] = [*state["warm"], score]
        if new["n"] == p["warmup"]:
            # the first window's scores are 0 by construction (the trees have no mass yet): left out
            calibrated = warmup_threshold(np.asarray(new["warm"][p["window_size"] :]), p["quantile"], p["margin"])
            new.update(threshold=min(calibrated, 1.0), warm=[])
        return float("nan"), new
    new["alarm"] = score > state["threshold"]
    return score, new
