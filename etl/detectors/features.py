"""The feature pipeline the statistical detectors share: impute, smooth, detrend drifting sensors, select.

Smoothing is an EWMA (span `span`, in records) of each imputed feature: single readings of the
pump's sensors are noisy, faults move their level for minutes. A drifting sensor (a thermal one)
is either detrended, replaced by its fast minus its slow EWMA (span `slow_span`), so a steady drift
cancels and only faster changes remain, or excluded from the score altogether.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from etl.detectors.state import ewma_weight, impute, impute_init


def features_init(n_features: int, detrend: tuple[int, ...], exclude: tuple[int, ...]) -> dict[str, Any]:
    """State of the pipeline for records of n_features values."""
    for name, indices in (("detrend", detrend), ("exclude", exclude)):
        bad = [i for i in indices if not 0 <= i < n_features]
        if bad:
            raise ValueError(f"{name} names feature indices {bad} outside 0..{n_features - 1}")
    keep = [i for i in range(n_features) if i not in exclude]
    if not keep:
        raise ValueError("every feature is excluded: nothing left to score")
    return {"imp": impute_init(n_features), "fast": None, "slow": None, "keep": keep, "detrend": list(detrend)}


def features_step(st: dict[str, Any], x: np.ndarray, span: float, slow_span: float) -> tuple[np.ndarray, dict]:
    """The scored feature vector of one record, and the pipeline's new state."""
    filled, imp = impute(st["imp"], x)
    if st["fast"] is None:  # the first record starts both averages at its own values
        fast, slow = filled, filled
    else:
        fast = st["fast"] + ewma_weight(span) * (filled - st["fast"])
        slow = st["slow"] + ewma_weight(slow_span) * (filled - st["slow"])
    feats = fast.copy()
    if st["detrend"]:
        feats[st["detrend"]] = fast[st["detrend"]] - slow[st["detrend"]]
    return feats[st["keep"]], {**st, "imp": imp, "fast": fast, "slow": slow}
