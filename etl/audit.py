"""Audit a span of the lake: every reading the fleet should have sent is there, exactly once.

A pull validates rows one by one; the audit looks at the span as a whole, from the lake's
side: duplicates by key, and per sensor the number of readings against the time grid of the
fleet reference (`reference/fleet.json`: each store's opening time and doors, each robot's
installation date and sampling interval). Failed door readings are rows with a null count,
so a door that failed is still complete; a missing row means a lost reading.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.client import iso, parse_iso
from etl.datasets import Dataset
from etl.lake import Lake, repeated_keys

MAX_LISTED = 5  # sensors named in a finding; the count says how many more


class AuditFailed(RuntimeError):
    """The lake's span lost or duplicated readings."""


@dataclass
class Audit:
    kind: str
    start: str
    end: str
    rows: int = 0
    expected: int = 0
    duplicates: int = 0
    incomplete: list[str] = field(default_factory=list)  # "sensor: n of m readings"

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and not self.incomplete and self.rows == self.expected

    def line(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        more = f" (+{len(self.incomplete) - MAX_LISTED} more)" if len(self.incomplete) > MAX_LISTED else ""
        gaps = f"; incomplete: {', '.join(self.incomplete[:MAX_LISTED])}{more}" if self.incomplete else ""
        return (
            f"audit {self.kind} {self.start} .. {self.end}: {verdict}, {self.rows:,} of {self.expected:,} "
            f"readings, {self.duplicates:,} duplicates{gaps}"
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def audit_span(lake: Lake, data: Dataset, start: dt.datetime, end: dt.datetime) -> Audit:
    """Compare the lake's rows in [start, end) with the grid the fleet reference implies."""
    audit = Audit(data.kind, iso(start), iso(end))
    fleet = lake.read_fleet()
    table = lake.read_interval(data, start, end)
    audit.rows = table.num_rows
    audit.duplicates = int(repeated_keys(table, data.key).sum()) if table.num_rows else 0
    found = sensor_counts(table, data)
    for sensor, expected in expected_counts(fleet, data.kind, start, end).items():
        audit.expected += expected
        if found.get(sensor, 0) != expected:
            audit.incomplete.append(f"{sensor}: {found.get(sensor, 0)} of {expected}")
    return audit


def sensor_counts(table: pa.Table, data: Dataset) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    names = pc.cast(table.column(data.id_column), pa.string())
    if data.kind == "doors":
        names = pc.binary_join_element_wise(names, pc.cast(table.column("sensor_id"), pa.string()), "/")
    labels, counts = np.unique(names.to_numpy(zero_copy_only=False), return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist(), strict=True))


def expected_counts(fleet: dict, kind: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """sensor -> readings on its grid in [start, end), from when it existed. Sites loaded by hand
    (`sites load`) are filled by imports, not by pulls: they are not expected in a pulled span."""
    out = {}
    pulled = {k: [s for s in fleet.get(k, []) if s.get("source") != "file"] for k in ("stores", "robots")}
    if kind == "doors":
        for store in pulled["stores"]:
            first = max(start, parse_iso(store["opened_at"]))
            for sensor in store["sensor_ids"]:
                out[f"{store['name']}/{sensor}"] = grid_points(first, end, 3600)
    else:
        for robot in pulled["robots"]:
            installed = dt.datetime.fromisoformat(robot["installed"]).replace(tzinfo=dt.UTC)
            out[robot["id"]] = grid_points(max(start, installed), end, robot["sample_seconds"])
    return {sensor: n for sensor, n in out.items() if n > 0}


def grid_points(first: dt.datetime, end: dt.datetime, step_seconds: int) -> int:
    """Multiples of step_seconds (since the epoch) in [first, end)."""
    if first >= end:
        return 0
    lo, hi = first.timestamp(), end.timestamp()
    return int(-(-hi // step_seconds) - -(-lo // step_seconds))
