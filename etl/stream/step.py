"""The per-key step: impute, scale, score, threshold, as one plain function over serialisable state.

    state = init_state(params)
    state, outputs = step(state, reading, params)

State is plain lists, numbers and the detector's own state, so the engine can snapshot it and a
restart resumes exactly; nothing here knows about the engine.

* impute: a missing or null field takes the running mean of that field for this key (0 until
  the key has seen one); the running mean learns from observed values only;
* scale: a running standard score per field (Welford; mean and std from the readings before this
  one, so a reading never hides itself), mapped to [0, 1] as 0.5 + z / (2 clip), clipped;
* score: the detector's `step` on the scaled features;
* threshold: per key, the first `settle` readings only train the detector (HalfSpaceTrees scores
  0 until its first window is full), the next `warmup` calibrate: the ALERT threshold is their
  `alert_q` quantile, the ERROR threshold their `error_q` quantile. Never a fixed number;
* alerts: a reading over a threshold opens an episode (one alert keyed sensor/start/level), a
  higher level inside it opens a second alert with the same start, and the first reading back
  under the ALERT threshold closes them (the same keys again, with `end`): a sink keeps the
  latest row per key, so a replayed reading changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from etl.stream.detectors import DETECTORS, Detector

LEVELS = ("ALERT", "ERROR")
SCORE_FIELDS = ("sensor", "ts", "score", "level", "x", "received")  # a ("score", row) tuple's order


@dataclass(frozen=True)
class StepParams:
    n_features: int
    detector: Detector = field(default_factory=lambda: DETECTORS["hst"])
    settle: int = 72  # readings that only train the detector (HalfSpaceTrees' first window)
    warmup: int = 328  # readings that calibrate the thresholds (with settle: SKAB's 400 training rows)
    alert_q: float = 0.99
    error_q: float = 0.999
    clip_sigmas: float = 4.0
    same_ts_ok: bool = False  # several sensors under one key may share an instant


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~1 us more to make, once per record
class Reading:
    sensor: str
    ts_us: int
    ts: str  # as received: the cursor a consumer resumes from
    values: tuple  # float or None per field
    received: float  # wall clock when the source read it (for lag)
    source: str = ""
    pos: str = ""


def init_state(params: StepParams) -> dict:
    n = params.n_features
    return {
        "last_ts": None,
        "n": 0,
        "sums": [0.0] * n,  # imputer: sum and count of observed values per field
        "counts": [0] * n,
        "mean": [0.0] * n,  # scaler: Welford's running mean and sum of squared deviations
        "m2": [0.0] * n,
        "det": params.detector.init(params.detector.params, n),
        "calib": [],
        "thresholds": None,  # (alert, error) once calibrated
        "episode": None,  # {"start", "start_ts", "levels", "peak", "readings"} while over the threshold
    }


def impute(state: dict, values: tuple) -> list[float]:
    sums, counts = state["sums"], state["counts"]
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(sums[i] / counts[i] if counts[i] else 0.0)
        else:
            sums[i] += v
            counts[i] += 1
            out.append(v)
    return out


def scale(state: dict, x: list[float], clip: float) -> list[float]:
    """Each field's standard score against the key's earlier readings, in [0, 1]; then learn x (Welford).

    One loop of local names per reading: this and the detector are the job's per-record work."""
    n, mean, m2 = state["n"], state["mean"], state["m2"]
    out = []
    inv_n1 = 1.0 / (n - 1) if n > 1 else 0.0
    inv_next = 1.0 / (n + 1)
    half_range = 2 * clip
    for i, v in enumerate(x):
        mu = mean[i]
        var = m2[i] * inv_n1
        delta = v - mu
        if var > 0:
            u = 0.5 + delta / (math.sqrt(var) * half_range)
            out.append(1.0 if u > 1.0 else 0.0 if u < 0.0 else u)
        else:
            out.append(0.5)
        mu += delta * inv_next
        mean[i] = mu
        m2[i] += delta * (v - mu)
    return out


def step(state: dict | None, r: Reading, params: StepParams) -> tuple[dict, list[tuple[str, object]]]:
    """One reading of one key -> the key's new state and what to emit: ("score", a tuple of
    SCORE_FIELDS) and ("alert" | "dead", a row dict). A score is a tuple: one is made per reading."""
    state = state if state is not None else init_state(params)
    last = state["last_ts"]
    if last is not None and (r.ts_us < last or (r.ts_us == last and not params.same_ts_ok)):
        when = "before" if r.ts_us < last else "the same as"
        reason = f"time going backwards: {r.ts} is {when} this sensor's last reading"
        return state, [("dead", dead_row(r.source, r.pos, r.ts, r.sensor, reason, repr(r.values), r.ts_us))]
    x = impute(state, r.values)
    detector = params.detector
    u = r.values if detector.raw else scale(state, x, params.clip_sigmas)
    score, state["det"] = detector.step(state["det"], u)
    state["n"] += 1
    state["last_ts"] = r.ts_us
    thresholds = state["thresholds"]
    if thresholds is None:
        level = calibrate_or_classify(state, score, params)
    else:  # calibrated: classify here, a call less per reading
        level = "ERROR" if score > thresholds[1] else "ALERT" if score > thresholds[0] else None
    out: list = [("score", (r.sensor, r.ts_us, score, level or "", x, r.received))]  # SCORE_FIELDS
    if level is not None or state["episode"] is not None:
        out += episode(state, r, score, level)
    return state, out


def calibrate_or_classify(state: dict, score: float, params: StepParams) -> str | None:
    n = state["n"]
    if n <= params.settle:
        return None
    if state["thresholds"] is None:
        state["calib"].append(score)
        if n == params.settle + params.warmup:
            calib = np.asarray(state["calib"])
            alert, error = (float(np.quantile(calib, q)) for q in (params.alert_q, params.error_q))
            floors = params.detector.floors
            if floors is not None:  # a score in its own unit (sigmas): never below the detector's bands
                alert, error = max(alert, floors[0]), max(error, floors[1])
            state["thresholds"], state["calib"] = (alert, max(alert, error)), []
        return None
    alert, error = state["thresholds"]
    return "ERROR" if score > error else "ALERT" if score > alert else None


def episode(state: dict, r: Reading, score: float, level: str | None) -> list[tuple[str, dict]]:
    ep = state["episode"]
    if level is None:
        if ep is None:
            return []
        state["episode"] = None
        return [("alert", alert_row(r.sensor, ep, lv, r.ts_us, r.ts_us)) for lv in ep["levels"]]
    if ep is None:
        ep = state["episode"] = {"start": r.ts_us, "levels": [], "peak": score, "readings": 0}
    ep["peak"] = max(ep["peak"], score)
    ep["readings"] += 1
    out = []
    for lv in LEVELS[: LEVELS.index(level) + 1]:
        if lv not in ep["levels"]:
            ep["levels"].append(lv)
            out.append(("alert", alert_row(r.sensor, ep, lv, None, r.ts_us)))
    return out


def alert_row(sensor: str, ep: dict, level: str, end: int | None, updated: int) -> dict:
    """One alert as the sinks keep it: `key` names it for good, `updated` orders its versions."""
    return {
        "key": f"{sensor}/{ep['start']}/{level}",
        "sensor": sensor,
        "level": level,
        "start": ep["start"],
        "end": end,
        "peak_score": ep["peak"],
        "readings": ep["readings"],
        "updated": updated,
    }


def dead_row(source: str, pos: str, ts: str, sensor: str, reason: str, raw: str, ts_us: int | None = None) -> dict:
    """A record that could not be scored, with the reason; `key` makes a replayed one the same row."""
    return {"key": f"{source}@{pos}", "source": source, "pos": pos, "ts": ts, "ts_us": ts_us, "sensor": sensor,
            "reason": reason, "raw": raw[:2000]}  # fmt: skip
