"""Online anomaly detectors as pure step functions over plain, checkpointable state.

Every detector module offers the same three calls:

    state = init(params, n_features)      # params: the module's frozen Params dataclass
    score, state = step(state, x)         # x: one record, a float vector; NaN allowed

`step` returns a new state and leaves the one it was given unchanged (HalfSpaceTrees excepted:
river updates its model in place). During the warm-up (the first `params.warmup` records) the
score is NaN and nothing alarms; at its end the detector calibrates `state["threshold"]` from the
warm-up's own scores. `state["alarm"]` is the latest decision (with the detector's hysteresis).
States hold only dicts, lists, floats and numpy arrays (plus the river model for HalfSpaceTrees):
pickle them, or use `etl.detectors.state.to_json` / `from_json` for the numpy-only detectors.
"""

from __future__ import annotations

from types import ModuleType

from etl.detectors import halfspace, hotelling, robust_z

DETECTORS: dict[str, ModuleType] = {"halfspace": halfspace, "hotelling": hotelling, "robust_z": robust_z}
