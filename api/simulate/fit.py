"""Fit the robot axis parameters from a recorded CSV, as the original generated its set from real data.

    python -m api.simulate.fit recorded.csv --map 'Time=ts,Axis #1=axis1,Axis #2=axis2,...'

prints `[[robots.axes]]` blocks to paste into a fleet file. The map is the one `python -m etl
import-csv` takes for the same file: columns mapped to anything but an axis (the time, the
robot) are not fitted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from api.fleet import Axis
from contract.columns import ColumnMapError, parse_map
from contract.schemas import AXES


class FitError(ValueError):
    """The CSV or the column map cannot give axis parameters."""


def fit_axes(path: str | Path, mapping: str) -> list[Axis]:
    """Mean and standard deviation of each column mapped to an axis, in the map's order."""
    try:
        columns = {source: target for source, target in parse_map(mapping).items() if target in AXES}
    except ColumnMapError as exc:
        raise FitError(str(exc)) from exc
    if not columns:
        raise FitError(f"--map: no column maps to an axis ({', '.join(AXES)})")
    try:
        table = pacsv.read_csv(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise FitError(f"{path}: {exc}") from exc
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise FitError(f"{path}: no column(s) {', '.join(missing)}; the file has {', '.join(table.column_names)}")
    axes = []
    for source, target in columns.items():
        try:
            values = pc.cast(table[source], pa.float64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise FitError(f"{path}: column {source!r} is not numeric") from exc
        values = values[np.isfinite(values)]
        if len(values) < 2:
            raise FitError(f"{path}: column {source!r} has fewer than 2 numbers")
        axes.append(Axis(target, float(values.mean()), float(values.std(ddof=1))))
    return axes


def to_toml(axes: list[Axis]) -> str:
    return "\n".join(f'[[robots.axes]]\nname = "{a.name}"\nmean = {a.mean:.6g}\nstd = {a.std:.6g}\n' for a in axes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.simulate.fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="recorded robot data, one column per axis")
    parser.add_argument("--map", required=True, help="SOURCE=TARGET pairs, e.g. 'Time=ts,Axis #1=axis1,Axis #2=axis2'")
    args = parser.parse_args(argv)
    try:
        print(to_toml(fit_axes(args.csv, args.map)))
    except FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
