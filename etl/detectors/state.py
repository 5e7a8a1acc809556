"""Shared pieces of detector state: NaN imputation by running means, EWMA, JSON round trips."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np


def impute_init(n_features: int) -> dict[str, Any]:
    """Running mean and count of the finite values seen per feature."""
    return {"count": np.zeros(n_features), "mean": np.zeros(n_features)}


def impute(imp: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Replace NaN by the feature's running mean (0 before its first value); update the means."""
    x = np.asarray(x, dtype=float)
    if x.shape != imp["mean"].shape:
        raise ValueError(f"record has {x.size} features, the detector was initialised with {imp['mean'].size}")
    seen = np.isfinite(x)
    count = imp["count"] + seen
    safe = np.where(seen, x, 0.0)
    mean = np.where(seen, imp["mean"] + (safe - imp["mean"]) / np.maximum(count, 1), imp["mean"])
    return np.where(seen, x, imp["mean"]), {"count": count, "mean": mean}


def ewma_weight(span: float) -> float:
    """Pandas' span convention: weight 2 / (span + 1) on the newest value."""
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    return 2.0 / (span + 1.0)


def warmup_threshold(scores: np.ndarray, quantile: float, margin: float) -> float:
    """A quantile of the warm-up's own scores times a margin (the margin covers what 400 rows cannot show)."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        raise ValueError("no finite warm-up score to calibrate the threshold on")
    return float(np.quantile(finite, quantile) * margin)


def fitted_init(params, n_features: int, **fitted: None) -> dict[str, Any]:
    """The state of a fitted detector (hotelling, robust_z) that has seen nothing yet: its params,
    its feature pipeline, the warm-up's records, and `fitted` (the fields the warm-up fills)."""
    from etl.detectors.features import features_init  # features imports this module

    if not 0 <= params.burn < params.warmup - 2:
        raise ValueError(f"burn ({params.burn}) must leave at least 3 of the {params.warmup} warm-up records")
    return {
        "params": asdict(params),
        "n": 0,
        "features": features_init(n_features, params.detrend, params.exclude),
        "warm": [],
        **fitted,
        "threshold": None,
        "alarm": False,
        "run": 0,  # records the current alarm has lasted
    }


def warming(state: dict[str, Any], new: dict[str, Any], feats: np.ndarray, fit) -> dict[str, Any] | None:
    """The warm-up's step, shared by the fitted detectors: keep the record (after the first `burn`)
    and, at the warm-up's last record, fit the detector (`fit(rows) -> dict of fitted fields`).
    Returns the new state while warming up, None once the detector is fitted."""
    if state["threshold"] is not None:
        return None
    p = state["params"]
    if state["n"] >= p["burn"]:
        new["warm"] = [*state["warm"], feats]
    if new["n"] == p["warmup"]:
        new.update(fit(np.asarray(new["warm"])), warm=[])
    return new


def hysteresis(alarm: bool, score: float, threshold: float, release: float) -> bool:
    """Switch on above the threshold; stay on until the score falls below release x threshold."""
    return bool(score > threshold * (release if alarm else 1.0))


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def to_json(state: dict[str, Any]) -> str:
    """A numpy-only detector state as JSON (arrays keep their dtype); NaN is written as NaN."""
    return json.dumps(_encode(state))


def from_json(text: str) -> dict[str, Any]:
    """The inverse of to_json."""
    return _decode(json.loads(text))
