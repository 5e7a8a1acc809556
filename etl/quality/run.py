"""`python -m etl quality`: score the detectors against ground truth and write marts/detector_scores.

Two sources of truth: the simulator's /v1/events against the lake's SQL detectors, or a labelled
data set (SKAB-format CSVs: `;`-separated, `datetime`, `anomaly`, `changepoint`) against the
online detectors. Each run merges its rows into the day's file,
`marts/detector_scores/date=YYYY-MM-DD/data.parquet`, replacing its source's earlier rows of that
day (a rerun replaces, another source's rows stay).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl.client import ApiClient
from etl.lake import Lake
from etl.quality import baseline, scoring, slices, truth
from etl.quality.registry import Registry
from etl.transform import TransformParams

TRAIN_ROWS = 400  # SKAB's rule: the first 400 rows of each file fit the detector and are not scored
LABELS = ("datetime", "anomaly", "changepoint")


@dataclass(frozen=True)
class Outcome:
    source: str
    scores: pd.DataFrame
    slices: pd.DataFrame
    files: tuple[str, ...]

    def line(self) -> str:
        parts = [
            f"{r.detector}: F1 {r.f1:.3f} precision {r.precision:.3f} recall {r.recall:.3f} "
            f"event recall {r.event_recall:.2f} NAB {r.nab_standard:.1f} ({r.points} points"
            + (", in-sample: trained on these files)" if r.in_sample else ")")
            for r in self.scores.itertuples()
        ]
        worse = int(self.slices["significant"].sum()) if len(self.slices) else 0
        return (
            f"quality ({self.source}): " + "; ".join(parts) + f"; {worse} significantly worse slices; "
            f"wrote {', '.join(self.files)}"
        )


def lake_points(lake: Lake, client: ApiClient, params: TransformParams) -> tuple[pd.DataFrame, dict[str, str]]:
    """Points of every lake detector whose marts exist, and the data's version."""
    frames, events = [], []
    doors = truth.span(lake, "door_hourly_sensor", "ts")
    if doors:
        table = truth.fetch_events(client, "doors", doors[0], doors[1] + dt.timedelta(hours=1))
        events.append(table)
        frames.append(truth.door_points(lake, table, params))
    robots = truth.span(lake, "robot_fits", "bucket")
    if robots:
        table = truth.fetch_events(client, "robots", robots[0], robots[1] + dt.timedelta(minutes=10))
        events.append(table)
        frames.append(truth.robot_points(lake, table))
        stream = truth.stream_points(lake, table)
        if stream is not None:
            frames.append(stream)
    if not frames:
        raise ValueError(f"lake {lake.uri} has no door or robot marts to score: run `python -m etl transform` first")
    names = [*truth.DETECTOR_SQL, *(["stream_alerts"] if any(f.detector.iloc[0] == "stream_alerts" for f in frames
                                                            if len(f)) else [])]  # fmt: skip
    versions = {name: truth.detector_version(name, params) for name in names}
    return pd.concat(frames, ignore_index=True), {"data": truth.data_version(lake, events), **versions}


def read_labelled(path: Path) -> pd.DataFrame:
    """A SKAB-format CSV, checked: a clear error names what is missing."""
    try:
        frame = pd.read_csv(path, sep=";")
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in LABELS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing} (a SKAB-format CSV, `;`-separated)")
    if len(frame) <= TRAIN_ROWS:
        raise ValueError(f"{path} has {len(frame)} rows, not more than the {TRAIN_ROWS} training rows")
    frame["datetime"] = pd.to_datetime(frame["datetime"], utc=True)
    return frame


def file_points(name: str, frame: pd.DataFrame, alarms: dict[str, np.ndarray]) -> pd.DataFrame:
    """Points of the scored rows (after the training rows) of one labelled file, per detector."""
    test = frame.iloc[TRAIN_ROWS:]
    features = [c for c in frame.columns if c not in LABELS]
    gaps = np.diff(test["datetime"].to_numpy()).astype("timedelta64[ms]").astype(float) / 1000
    base = pd.DataFrame({
        "series": name, "ts": test["datetime"].to_numpy(), "step_seconds": float(np.median(gaps)) or 1.0,
        "label": test["anomaly"].to_numpy().astype(bool),
        "changepoint": test["changepoint"].to_numpy().astype(bool),
        "weekday": test["datetime"].dt.isocalendar().day.to_numpy().astype(int),
        "hour": test["datetime"].dt.hour.to_numpy(),
        **{f: test[f].to_numpy(dtype=float) for f in features},
    })  # fmt: skip
    return pd.concat([base.assign(detector=d, alarm=a[TRAIN_ROWS:]) for d, a in alarms.items()], ignore_index=True)


def files_version(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def csv_points(paths: list[Path], models: dict | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """Points of the online detectors (and of registered baseline models) over labelled CSVs."""
    from etl.detectors import halfspace, hotelling, robust_z
    from etl.detectors.run import run

    detectors = {"hotelling": hotelling, "robust_z": robust_z, "halfspace": halfspace}
    frames = []
    for path in paths:
        frame = read_labelled(path)
        rows = frame[[c for c in frame.columns if c not in LABELS]].to_numpy(dtype=float)
        alarms = {name: run(module, module.Params(), rows)[1] for name, module in detectors.items()}
        for name, model in (models or {}).items():
            alarms[name] = model.alarms(frame)
        frames.append(file_points(str(path), frame, alarms))  # the path: SKAB's folders repeat file names
    versions = {name: f"{name}-defaults" for name in detectors} | {n: m.version for n, m in (models or {}).items()}
    return pd.concat(frames, ignore_index=True), {"data": files_version(paths), **versions}


def train(lake: Lake, paths: list[Path], name: str, params: baseline.Params = baseline.Params()):
    """Fit the baseline on labelled CSVs, score it time-ordered (each file by a model of the files
    before it), and register it with those held-out metrics; returns the registered version."""
    if len(paths) < 2:
        raise ValueError("training the baseline needs at least 2 labelled files (one scores the other)")
    if len(set(paths)) < len(paths):
        raise ValueError("a labelled file is given twice")
    frames = {str(path): read_labelled(path) for path in paths}  # the path: SKAB's folders repeat file names
    columns = tuple(c for c in next(iter(frames.values())).columns if c not in LABELS)
    for file, frame in frames.items():
        if tuple(c for c in frame.columns if c not in LABELS) != columns:
            raise ValueError(f"{file} has other signal columns than {list(columns)}")
    series = [
        baseline.Labelled(file, f["datetime"].iloc[0], f[list(columns)].to_numpy(dtype=float), f["anomaly"].to_numpy())
        for file, f in frames.items()
    ]
    held_out = baseline.forward_chain(series, columns, params, first=min(3, len(series) - 1))
    points = pd.concat([file_points(file, frames[file], {name: a}) for file, a in held_out.items()])
    metrics = {k: float(v) for k, v in scoring.score(points).items()} | {
        "held_out_files": float(len(held_out)),
        "files": float(len(series)),
    }
    model = baseline.fit(series, columns, params)
    return Registry(lake.root).register(name, model, metrics, files_version(paths))


def write(lake: Lake, table: str, source: str, frame: pd.DataFrame, now: dt.datetime) -> str:
    """Merge a run's rows into the day's file of the mart, replacing that source's earlier rows of the day.
    Call it holding the lake's `marts` lock: another source's run may be merging into the same file."""
    path = lake.mart_file(table, f"date={now.date().isoformat()}")
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    earlier = lake.read_table(path)
    if earlier is not None:
        kept = earlier.filter(pc.not_equal(earlier["source"], source))
        rows = pa.concat_tables([kept, rows], promote_options="permissive")  # columns may grow between versions
    lake.write_table(path, rows)
    return path


def evaluate(
    lake: Lake,
    points: pd.DataFrame,
    versions: dict[str, str],
    source: str,
    now: dt.datetime,
    in_sample: frozenset[str] = frozenset(),
    lock_timeout: float = 600.0,
) -> Outcome:
    """Score and slice the points, stamp them with the versions, and write both marts.
    `in_sample`: the detectors trained on this very data (their scores are optimistic)."""
    stamp = {"run_at": pd.Timestamp(now), "source": source, "data_version": versions["data"]}
    scores = scoring.score_all(points)
    scores.insert(1, "detector_version", scores["detector"].map(versions))
    scores.insert(2, "in_sample", scores["detector"].isin(in_sample))
    found = slices.discover_all(points)
    found.insert(1, "detector_version", found["detector"].map(versions))
    scores, found = (f.assign(**stamp) for f in (scores, found))
    # the marts' lock: a transform beside this run removes unowned temporary files under marts/
    with lake.lock(lock_timeout, "marts"):
        files = (
            write(lake, "detector_scores", source, scores, now),
            write(lake, "detector_slices", source, found, now),
        )
    return Outcome(source, scores, found, files)


def quality(
    lake: Lake,
    client: ApiClient | None,
    csvs: list[Path],
    params: TransformParams,
    now: dt.datetime,
    models: dict | None = None,
    lock_timeout: float = 600.0,
) -> Outcome:
    """The whole run: points from the lake and the API (no CSVs given) or from the CSVs."""
    if csvs:
        points, versions = csv_points(csvs, models)
        source = "csv-" + versions["data"]
        in_sample = frozenset(name for name, m in (models or {}).items() if m.data_version == versions["data"])
    else:
        if client is None:
            raise ValueError("scoring the lake's detectors needs the API (--api) for /v1/events")
        points, versions = lake_points(lake, client, params)
        source, in_sample = "lake", frozenset()
    return evaluate(lake, points, versions, source, now, in_sample, lock_timeout)


def quality_step(settings, now: dt.datetime | None = None) -> dict:
    """The daily DAG's task: score the lake's detectors against the settings' API, as the CLI does."""
    client = ApiClient(settings)
    try:
        now = now or dt.datetime.now(dt.UTC)
        outcome = quality(Lake(settings.lake), client, [], TransformParams(), now, lock_timeout=settings.lock_timeout)
    finally:
        client.close()
    print(outcome.line())
    columns = ["detector", "f1", "recall", "precision", "points"]
    return {"files": list(outcome.files), "scores": outcome.scores[columns].to_dict("records")}
