"""A supervised baseline on labelled series: LightGBM on windowed features, as the water-utility reference did.

Each series is standardised with the mean and spread of its own first `train_rows` rows (SKAB's
training rows, anomaly-free in every SKAB file: a deployed model would see only them of a new
pump), then each standardised signal gets trailing rolling means, standard deviations and
differences over a few window sizes: nothing looks ahead, so the features of a row are known
when it arrives. The classifier's probability is smoothed by a trailing mean before the threshold.

Splits are time-ordered: SKAB's files are one experiment each, with no anomaly in their first
400 rows, so a classifier cannot learn from those rows alone; `forward_chain` scores each file
with a model trained only on the files recorded before it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MODEL_FILE, PARAMS_FILE = "model.txt", "baseline.json"


@dataclass(frozen=True)
class Params:
    windows: tuple[int, ...] = (5, 15, 30)  # rows (seconds in SKAB)
    smooth: int = 5  # trailing mean of the probability over this many rows
    threshold: float = 0.5
    train_rows: int = 400  # each series' own rows that fit its standardisation (and are never scored)
    num_leaves: int = 15
    n_estimators: int = 200
    learning_rate: float = 0.05
    min_child_samples: int = 20
    seed: int = 0


@dataclass(frozen=True)
class Labelled:
    """One labelled series: its signals (rows x columns) and 0/1 labels, first timestamp for ordering."""

    name: str
    start: pd.Timestamp
    values: np.ndarray
    labels: np.ndarray


def features(values: np.ndarray, params: Params) -> np.ndarray:
    """Standardised signals and their trailing rolling mean, std and difference for each window."""
    values = np.asarray(values, dtype=float)
    if len(values) <= params.train_rows:
        raise ValueError(f"a series needs more than {params.train_rows} rows (standardisation), has {len(values)}")
    train = values[: params.train_rows]
    spread = train.std(axis=0)
    z = pd.DataFrame((values - train.mean(axis=0)) / np.where(spread > 0, spread, 1.0))
    parts = [z]
    for w in params.windows:
        rolling = z.rolling(w, min_periods=1)
        parts += [rolling.mean(), rolling.std().fillna(0.0), z.diff(w).fillna(0.0)]
    return np.hstack([p.to_numpy() for p in parts])


@dataclass
class Baseline:
    params: Params
    columns: tuple[str, ...]
    booster: object  # lightgbm.Booster
    version: str = field(default="unregistered")
    data_version: str = ""  # what it was trained on (the registry's tag): scoring it there is in-sample

    def probability(self, values: np.ndarray) -> np.ndarray:
        raw = self.booster.predict(features(values, self.params))
        return pd.Series(raw).rolling(self.params.smooth, min_periods=1).mean().to_numpy()

    def alarms(self, frame: pd.DataFrame) -> np.ndarray:
        """Alarms over every row of a frame with the model's columns (False on the standardisation rows)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the data lacks the model's columns {missing}")
        alarm = self.probability(frame[list(self.columns)].to_numpy(dtype=float)) >= self.params.threshold
        alarm[: self.params.train_rows] = False
        return alarm

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / MODEL_FILE))
        (folder / PARAMS_FILE).write_text(json.dumps({"params": asdict(self.params), "columns": self.columns}))

    @classmethod
    def load(cls, folder: Path, version: str = "unregistered", data_version: str = "") -> Baseline:
        import lightgbm as lgb

        spec = json.loads((folder / PARAMS_FILE).read_text())
        params = Params(**{**spec["params"], "windows": tuple(spec["params"]["windows"])})
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        return cls(params, tuple(spec["columns"]), booster, version, data_version)


def fit(series: list[Labelled], columns: tuple[str, ...], params: Params = Params()) -> Baseline:
    """Train on every row of the given series."""
    import lightgbm as lgb

    x = np.vstack([features(s.values, params) for s in series])
    y = np.concatenate([s.labels for s in series]).astype(int)
    if y.min() == y.max():
        raise ValueError("the training series hold only one class: a supervised baseline needs labelled anomalies")
    settings = {
        "objective": "binary", "num_leaves": params.num_leaves, "learning_rate": params.learning_rate,
        "min_data_in_leaf": params.min_child_samples, "seed": params.seed, "deterministic": True,
        "num_threads": 1, "verbose": -1,
    }  # fmt: skip
    # lightgbm's own API: its scikit-learn wrapper needs scikit-learn, which nothing else here does
    booster = lgb.train(settings, lgb.Dataset(x, label=y), num_boost_round=params.n_estimators)
    return Baseline(params, columns, booster)


def forward_chain(
    series: list[Labelled], columns: tuple[str, ...], params: Params = Params(), first: int = 3
) -> dict[str, np.ndarray]:
    """Alarms of each series from `first` on (in time order), by a model trained on the series before it."""
    ordered = sorted(series, key=lambda s: s.start)
    out = {}
    for i in range(first, len(ordered)):
        model = fit(ordered[:i], columns, params)
        frame = pd.DataFrame(ordered[i].values, columns=list(columns))
        out[ordered[i].name] = model.alarms(frame)
    return out
