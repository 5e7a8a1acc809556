"""Recorded data sets, replayed as live streams: found under API_REPLAY_PATHS, each loaded once.

Three formats, told apart by their content:

* `airquality`: a PurpleAir API snapshot (JSON with `fields` and `data` arrays), one row per
  sensor, keyed by `sensor_index`; a row's time is its `last_seen` when the snapshot has that
  field, else the snapshot's `data_time_stamp`.
* `skab`: a SKAB CSV (`;`-separated, a `datetime` column); the whole file is one sensor (a test
  bench), so its key is the replay's name. Its `anomaly` and `changepoint` labels are not served.
* `csv`: any other CSV with a time column: the targets of a column map in a sidecar file
  `FILE.map` (`SOURCE=TARGET` pairs, as `python -m etl import-csv --map` takes; one target must be
  `ts`, and a target `sensor` names the key column), or else a column named ts, timestamp, time or
  datetime; without a `sensor` column the key is the replay's name.

Each row is served as one NDJSON line `{"ts": ..., "sensor": ..., <field>: <value>, ...}`, rendered
once at load. Numbers are JSON numbers, empty cells null, and a cell that is not a number is
served as the text it holds: a replay is faithful to its file, bad cells and all, so that a
consumer's validation meets them. CSV rows keep the file's order (time may go backwards, as
recorded); a snapshot's rows are ordered by time. Rows whose time cannot be read are not served,
and are counted in the listing (`skipped_rows`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from contract.columns import parse_map
from contract.times import EPOCH

FORMATS = ("airquality", "skab", "csv")
TIME_COLUMNS = ("ts", "timestamp", "time", "datetime")
SKAB_LABELS = ("anomaly", "changepoint")
AIRQUALITY_SKIP = ("sensor_index", "last_seen", "date_created")  # not measurements
SUFFIXES = (".csv", ".json")


class ReplayError(ValueError):
    """A recorded file that cannot be replayed; the message names the file and the problem."""


@dataclass
class Replay:
    name: str
    path: Path
    format: str
    key: str | None  # the column that names the sensor; None: the replay's name is the one sensor
    fields: list[str]  # the values each line carries besides ts and sensor
    ts_us: np.ndarray  # int64 per row, in serving order
    lines: list[bytes]  # one NDJSON line per row, newline included
    skipped_rows: int = 0

    @property
    def rows(self) -> int:
        return len(self.lines)

    def listing(self) -> dict:
        span = (iso(int(self.ts_us.min())), iso(int(self.ts_us.max()))) if self.rows else (None, None)
        return {
            "name": self.name,
            "format": self.format,
            "file": str(self.path),
            "rows": self.rows,
            "skipped_rows": self.skipped_rows,
            "key": self.key or "(the replay's name)",
            "columns": self.fields,
            "start": span[0],
            "end": span[1],
        }


def iso(us: int) -> str:
    """ISO 8601 UTC, with microseconds only when there are any."""
    value = EPOCH + dt.timedelta(microseconds=us)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if us % 1_000_000 else "%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Catalogue:
    """The replays under the configured paths: names found at once, files loaded on first use."""

    paths: tuple[Path, ...]
    files: dict[str, Path] = field(default_factory=dict)
    loaded: dict[str, Replay] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def scan(cls, paths: tuple[Path, ...]) -> Catalogue:
        catalogue = cls(paths)
        for root in paths:
            if not root.exists():
                raise ReplayError(f"API_REPLAY_PATHS: {root} does not exist")
            found = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES)
            for path in found:
                name = replay_name(root, path)
                if name in catalogue.files:
                    raise ReplayError(f"API_REPLAY_PATHS: {path} and {catalogue.files[name]} both make replay {name!r}")
                catalogue.files[name] = path
        return catalogue

    def get(self, name: str) -> Replay:
        with self.lock:  # one load per file, even when two requests ask at once
            if name not in self.loaded:
                self.loaded[name] = load(name, self.files[name])
            return self.loaded[name]


def replay_name(root: Path, path: Path) -> str:
    """valve1/0.csv under skab/ -> 'skab-valve1-0'; a file given by itself -> its stem."""
    rel = path.stem if root == path else f"{root.name}/{path.relative_to(root).with_suffix('')}"
    return rel.replace("/", "-").replace(" ", "_")


def load(name: str, path: Path) -> Replay:
    try:
        if path.suffix == ".json":
            return _airquality(name, path)
        return _csv(name, path)
    except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
        if isinstance(exc, ReplayError):
            raise
        raise ReplayError(f"replay {name!r} ({path}): {exc}") from exc


def _airquality(name: str, path: Path) -> Replay:
    doc = json.loads(path.read_bytes())
    if not isinstance(doc, dict) or "fields" not in doc or "data" not in doc:
        raise ReplayError(f"replay {name!r} ({path}): not a snapshot with `fields` and `data` arrays")
    frame = pd.DataFrame(doc["data"], columns=doc["fields"], dtype=object)
    if "sensor_index" not in frame:
        raise ReplayError(f"replay {name!r} ({path}): the snapshot has no sensor_index field")
    if "last_seen" in frame:
        seconds = pd.to_numeric(frame["last_seen"], errors="coerce")
    else:
        seconds = pd.Series(float(doc["data_time_stamp"]), index=frame.index)
    ts = pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    frame = frame.rename(columns={"sensor_index": "sensor"})
    fields = [f for f in doc["fields"] if f not in AIRQUALITY_SKIP]
    order = np.argsort(ts.to_numpy(dtype="datetime64[us]").astype(np.int64), kind="stable")
    return _replay(name, path, "airquality", "sensor_index", frame.iloc[order], ts.iloc[order], fields)


def _csv(name: str, path: Path) -> Replay:
    head = path.open(encoding="utf-8", errors="replace").readline()
    sep = ";" if head.count(";") > head.count(",") else ","
    frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    sidecar = path.with_name(path.name + ".map")
    if sidecar.exists():
        mapping = parse_map(sidecar.read_text())
        missing = [c for c in mapping if c not in frame.columns]
        if missing:
            raise ReplayError(f"replay {name!r}: {sidecar.name} names columns the file lacks: {missing}")
        frame = frame[list(mapping)].rename(columns=mapping)
        fmt = "csv"
    else:
        fmt = "skab" if sep == ";" and "datetime" in frame.columns else "csv"
        frame = frame.drop(columns=[c for c in SKAB_LABELS if c in frame.columns]) if fmt == "skab" else frame
    time_col = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    if time_col is None:
        raise ReplayError(f"replay {name!r} ({path}): no time column ({', '.join(TIME_COLUMNS)}) and no {sidecar.name}")
    ts = pd.to_datetime(frame[time_col], utc=True, errors="coerce", format="mixed")
    frame = frame.drop(columns=[time_col])
    key = "sensor" if "sensor" in frame.columns and fmt == "csv" else None
    fields = [c for c in frame.columns if c != "sensor"]
    return _replay(name, path, fmt, key, frame, ts, fields)


def _replay(name: str, path: Path, fmt: str, key: str | None, frame: pd.DataFrame, ts: pd.Series,
            fields: list[str]) -> Replay:  # fmt: skip
    ok = ts.notna().to_numpy()
    frame, ts = frame[ok], ts[ok]
    ts_us = ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
    sensors = frame["sensor"].astype(str).tolist() if "sensor" in frame else [name] * len(frame)
    columns = {f: [_value(v) for v in frame[f].tolist()] for f in fields}
    # Rendered once, at load: serving is then a slice of ready lines.
    lines = [
        (json.dumps({"ts": iso(int(t)), "sensor": s, **{f: columns[f][i] for f in fields}}) + "\n").encode()
        for i, (t, s) in enumerate(zip(ts_us, sensors, strict=True))
    ]
    return Replay(name, path, fmt, key, fields, ts_us, lines, skipped_rows=int((~ok).sum()))


def _value(cell):
    """A cell as the JSON value a reader expects: a number, null when empty, else the text as it is."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, int | float):
        return None if isinstance(cell, float) and math.isnan(cell) else cell
    try:
        number = float(cell)
    except ValueError:
        return cell
    return None if math.isnan(number) else number
