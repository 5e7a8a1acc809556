"""Online detectors as pure step functions over serialisable state: `init(params, n)` and `step(state, x)`.

`step` takes the reading's features already scaled to [0, 1] and returns `(score, state)`,
higher meaning more anomalous. Any pair of functions of that shape plugs in (etl/detectors/
has more); the state must pickle, as the engine snapshots it for recovery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Detector:
    name: str
    init: Callable[[dict, int], Any]
    step: Callable[[Any, list[float]], tuple[float, Any]]
    params: dict = field(default_factory=dict)
    raw: bool = False  # step gets the reading's own values (None where missing), not the scaled features
    floors: tuple[float, float] | None = None  # least ALERT / ERROR thresholds, in the score's own unit
    key_kib: int = 16  # a key's state at most, in KiB (tracemalloc, 8 fields): sizes the keys a budget holds


# The air-quality reference recipe (10 trees, height 8, window 72), with a fixed seed so that a
# rerun, a restart and a run on two workers score alike.
HST_PARAMS = {"n_trees": 10, "height": 8, "window_size": 72, "seed": 42}


def hst_init(params: dict, n_features: int):
    from etl.stream.hst import CompactHST  # imported here: only a job that scores needs river

    return CompactHST(**{**HST_PARAMS, **params})


def hst_step(model, x: list[float]) -> tuple[float, Any]:
    """Score, then learn: river's HalfSpaceTrees on features in [0, 1] (its default limits)."""
    features = dict(enumerate(x))
    score = model.score_one(features)
    model.learn_one(features)
    return float(score), model


def zscore_init(params: dict, n_features: int) -> None:
    return None  # the running standard scores upstream are all it needs


def zscore_step(state: None, x: list[float]) -> tuple[float, None]:
    """The largest distance of a scaled feature from the middle of [0, 1]: |z| / clip, a cheap baseline."""
    return (max(abs(v - 0.5) for v in x) * 2 if x else 0.0), state


def hotelling_init(params: dict, n_features: int) -> dict:
    """etl/detectors' Hotelling T² (the multivariate recipe of docs/detectors.md), fitted on the
    readings the job trains on (its own warm-up: 72), so the job's calibration sees real scores."""
    from etl.detectors import hotelling

    return hotelling.init(hotelling.Params(**{"warmup": 72, "burn": 10, **params}), n_features)


def hotelling_step(state: dict, x: list[float]) -> tuple[float, dict]:
    """T² of the reading; 0 while the detector still fits (the job's calibration starts after)."""
    import numpy as np

    from etl.detectors import hotelling

    score, state = hotelling.step(state, np.asarray(x, dtype=float))
    return (0.0 if score != score else float(score)), state  # NaN during the fit


def motion_init(params: dict, n_features: int) -> dict:
    """etl/detectors' per-axis motion scores (rest readings counted, not scored), on the raw values."""
    from etl.detectors import motion

    return motion.init(motion.Params(**params), n_features)


def motion_step(state: dict, x) -> tuple[float, dict]:
    from etl.detectors import motion

    return motion.step(state, x)


DETECTORS = {
    # 10 trees of 511 node objects: 4.4 MiB a key (measured), so ~160 keys fit in 1 GB with the interpreter
    "hst": Detector("hst", hst_init, hst_step, key_kib=4608),
    "zscore": Detector("zscore", zscore_init, zscore_step),
    "hotelling": Detector("hotelling", hotelling_init, hotelling_step),
    # the floors are motion.Params.floors: 2 and 4 sigmas of a motion's mean, the batch detector's bands
    "motion": Detector("motion", motion_init, motion_step, raw=True, floors=(2.0, 4.0), key_kib=24),
}
