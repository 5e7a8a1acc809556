"""The data sets the lake holds: schema, API route, key and validation bounds, defined once."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from contract.schemas import AXES, DOOR_READINGS, ROBOT_READINGS


@dataclass(frozen=True)
class Dataset:
    kind: str
    schema: pa.Schema
    route: str
    key: tuple[str, ...]  # one row per key: what "exactly once" counts
    id_column: str
    rows_per_day_hint: int  # of the default fleet, to size pages


DOORS = Dataset("doors", DOOR_READINGS, "/v1/readings/doors", ("ts", "store", "sensor_id"), "store", 39 * 24)
ROBOTS = Dataset("robots", ROBOT_READINGS, "/v1/readings/robots", ("ts", "robot_id"), "robot_id", 4 * 8640)
DATASETS = {d.kind: d for d in (DOORS, ROBOTS)}

# Validation bounds: a door never counts this many visits in an hour (the busiest
# simulated door peaks near 60,000); a robot axis never reads beyond this magnitude.
MAX_HOURLY_COUNT = 1_000_000
MAX_AXIS_ABS = 1e6
AXIS_COLUMNS = AXES


def dataset(kind: str) -> Dataset:
    if kind not in DATASETS:
        raise ValueError(f"--kind: {kind!r} is not one of {', '.join(DATASETS)}")
    return DATASETS[kind]
