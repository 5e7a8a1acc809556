"""The column map of a recorded file: which of its columns is which column of a data set.

    'Time=ts,Axis #1=axis1,Axis #2=axis2'

`python -m etl import-csv --map` and `python -m api.simulate.fit --map` take the same text.
"""

from __future__ import annotations


class ColumnMapError(ValueError):
    """A column map that does not say SOURCE=TARGET, pair by pair."""


def parse_map(mapping: str) -> dict[str, str]:
    """'Axis #1=axis1,Axis #2=axis2' -> {'Axis #1': 'axis1', ...}, in the map's order."""
    pairs = [p for p in mapping.split(",") if p.strip()]
    out: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ColumnMapError(f"--map: {pair!r} is not SOURCE=TARGET")
        out[source.strip()] = target.strip()
    if not out:
        raise ColumnMapError("--map: no columns given")
    return out
