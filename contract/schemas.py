"""One Arrow schema per data set, defined once.

Imported by the simulator (what it serves), the encoders, the ETL (what it loads
and validates) and the tests. `docs/schemas.md` describes the same columns.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

DOOR_READINGS = pa.schema(
    [
        pa.field("ts", TS, nullable=False, metadata={"doc": "UTC start of the hour"}),
        pa.field("store", pa.string(), nullable=False),
        pa.field("sensor_id", pa.int32(), nullable=False, metadata={"doc": "0-based door"}),
        pa.field("count", pa.int32(), metadata={"doc": "visits in the hour; null = failed"}),
    ]
)

AXES = tuple(f"axis{i}" for i in range(1, 9))

ROBOT_READINGS = pa.schema(
    [
        pa.field("ts", TS, nullable=False, metadata={"doc": "UTC sample time"}),
        pa.field("robot_id", pa.string(), nullable=False),
        *(pa.field(a, pa.float64(), nullable=False) for a in AXES),
    ]
)

EVENTS = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False, metadata={"doc": "doors | robots"}),
        pa.field("id", pa.string(), nullable=False, metadata={"doc": "Paris, Paris/12, robot-1/axis3"}),
        pa.field("start", TS, nullable=False),
        pa.field("end", TS, nullable=False, metadata={"doc": "exclusive; clipped to the clock"}),
        pa.field("type", pa.string(), nullable=False),
        pa.field("level", pa.string(), nullable=False),
        pa.field("store", pa.string()),
        pa.field("sensor_id", pa.int32()),
        pa.field("robot_id", pa.string()),
        pa.field("axis", pa.string()),
        pa.field("magnitude", pa.float64()),
        pa.field("ongoing", pa.bool_(), nullable=False),
    ]
)


def events_table(columns: dict[str, list]) -> pa.Table:
    """Build an EVENTS table from plain columns, filling absent optional ones with nulls."""
    n = len(columns["kind"])
    arrays = [pa.array(columns.get(f.name, [None] * n), f.type) for f in EVENTS]
    return pa.Table.from_arrays(arrays, schema=EVENTS)
