"""Per-axis motion scores: each field judged on its moving samples only, smoothed, debounced.

Made for duty-cycled machines (the simulator's robots: an axis reads exactly 0 at rest, 13
samples of every 20), where a per-reading score mixes rest and motion and drowns a 3-sigma
block in the gap between the two. For each field of a key:

* a reading equal to `rest` (0.0; None: no rests) is the field at rest: counted, not scored,
  and it teaches nothing; a missing value (None) is no evidence either;
* a baseline mean and variance of the moving samples: cumulative over the first `memory`
  moving samples, then an EWMA of weight 1 / memory, so it follows slow wear and re-baselines
  after a lasting level shift (about `memory` samples), while a sample moves it by at most
  `clip` sigmas (an anomaly block barely teaches it);
* z = (value - mean) / std, and its EWMA of weight `alpha` over the field's moving samples
  (about 2 / alpha - 1 of them, a motion's worth): the mean residual of the latest motion, in
  sigmas of one reading, as the batch `robot_alerts.sql` judges a motion;
* debounce: the field's score is the `k`-th largest |EWMA| of its last `n` moving samples, so
  k of n must agree before it rises; it holds through the field's rests.

The key's score is the largest field score, in sigmas. The stream job alerts above
max(`floors`, the warm-up's quantiles): ALERT from 2 sigmas of a motion's mean (4.7 standard
errors of the EWMA at alpha 0.3), ERROR from 4, the batch detector's bands.

Pure Python over a few numbers per field: a reading moves about a third of a robot's fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Params:
    rest: float | None = 0.0  # the value of a field at rest (counted, not scored); None: never at rest
    alpha: float = 0.3  # EWMA weight of a moving sample in the score
    fit: int = 30  # moving samples a field needs before it scores
    memory: int = 2000  # baseline: cumulative until this many moving samples, then an EWMA of 1 / memory
    clip: float = 3.0  # a sample moves the baseline by at most this many sigmas
    k: int = 2  # debounce: k of the last n moving samples
    n: int = 3
    floors: tuple[float, float] = (2.0, 4.0)  # least ALERT and ERROR thresholds, in sigmas


def init(params: Params, n_features: int) -> dict[str, Any]:
    """A key that has seen nothing: per field [moving samples, rests, mean, variance, EWMA of z, score]
    and its last n |EWMA| values."""
    return {"params": params, "fields": [[0, 0, 0.0, 0.0, 0.0, 0.0] for _ in range(n_features)],
            "recent": [[] for _ in range(n_features)]}  # fmt: skip


N, RESTS, MEAN, VAR, EWMA, SCORE = range(6)  # a field's slots


def step(state: dict[str, Any], x) -> tuple[float, dict[str, Any]]:
    """The key's score after one reading (x: the raw values, None where missing); the state is updated in place."""
    p: Params = state["params"]
    rest, alpha, fit, clip = p.rest, p.alpha, p.fit, p.clip
    for f, v, recent in zip(state["fields"], x, state["recent"], strict=True):
        if v is None:
            continue
        if v == rest:
            f[RESTS] += 1
            continue
        n, mean, var = f[N], f[MEAN], f[VAR]
        learn = v
        if n >= fit and var > 0.0:
            sd = math.sqrt(var)
            z = (v - mean) / sd
            e = f[EWMA] = (1.0 - alpha) * f[EWMA] + alpha * z
            recent.append(abs(e))
            if len(recent) > p.n:
                del recent[0]
            f[SCORE] = sorted(recent)[-p.k] if len(recent) >= p.k else 0.0
            if z > clip:  # the baseline learns a clipped sample: an anomaly barely moves it
                learn = mean + clip * sd
            elif z < -clip:
                learn = mean - clip * sd
        w = 1.0 / (n + 1) if n < p.memory else 1.0 / p.memory
        d = learn - mean
        f[MEAN] = mean + w * d
        f[VAR] = (1.0 - w) * (var + w * d * d)
        f[N] = n + 1
    return max((f[SCORE] for f in state["fields"]), default=0.0), state
