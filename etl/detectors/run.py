"""Feed a whole table through a detector, one record at a time, as a streaming job would."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def run(detector: ModuleType, params: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Scores, alarms (False during the warm-up) and the final state over the rows of a 2-D array."""
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2:
        raise ValueError(f"rows must be a 2-D array (records x features), got shape {rows.shape}")
    state = detector.init(params, rows.shape[1])
    scores = np.empty(len(rows))
    alarms = np.zeros(len(rows), dtype=bool)
    for i, row in enumerate(rows):
        scores[i], state = detector.step(state, row)
        alarms[i] = state["alarm"]
    return scores, alarms, state
