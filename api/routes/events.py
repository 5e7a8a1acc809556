"""Ground truth: every event the simulator injected, so detectors can be scored."""

from __future__ import annotations

from typing import Annotated, Literal

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Query

from api.deps import US, EndParam, FormatParam, SimulationDep, StartParam, ceil_div, check_row_cap, parse_span
from api.routes.readings import HOUR_US, stream
from api.streams import BulkStream
from contract.schemas import EVENTS

router = APIRouter(prefix="/v1", tags=["ground truth"])

EVENTS_EXAMPLE = [
    {
        "kind": "doors", "id": "Paris/12", "start": "2024-07-01T09:00:00Z", "end": "2024-07-01T10:00:00Z",
        "type": "anomaly", "level": "low", "store": "Paris", "sensor_id": 12, "robot_id": None, "axis": None,
        "magnitude": 0.1, "ongoing": False,
    }
]  # fmt: skip


@router.get(
    "/events",
    summary="Injected events (ground truth)",
    responses={200: {"content": {"application/json": {"example": EVENTS_EXAMPLE}}}},
)
def read_events(
    sim: SimulationDep,
    kind: Annotated[Literal["doors", "robots"], Query(description="doors or robots", examples=["doors"])],
    start: StartParam,
    end: EndParam,
    format: FormatParam = "json",
) -> BulkStream:
    """Events overlapping [start, end), as far as the data clock has got.

    Doors: `failure` (readings null from start to end), `anomaly` (one hour at
    `magnitude` x the expected traffic), `surge` (store-wide, `magnitude` x),
    `expansion` (store traffic ramps up by `magnitude`), `replacement` (a new
    sensor: its age, and so its failure rate, starts again).
    Robots: `anomaly` blocks with level ALERT (2-4 sigma) or ERROR (> 4 sigma) and
    the signed offset in sigmas as `magnitude`; `drift` (wear growing linearly to
    `magnitude` sigmas at `end`, when maintenance resets it; the ERROR band starts
    at 4 sigma). An event still running at the clock ends at the clock with
    `ongoing` true.
    """
    start_us, end_us = parse_span(sim, start, end)
    if kind == "doors":
        clock_us = sim.doors_until_hour() * HOUR_US
        h0, h1 = start_us // HOUR_US, ceil_div(min(end_us, clock_us), HOUR_US)
        check_row_cap(sim, sim.doors.row_count(h0, h1, sim.doors.select()))
        table = sim.doors.events(h0, max(h0, h1), sim.chunks.doors)
    else:
        clock_us = sim.now_us()
        sample_us = sim.fleet.robots.sample_seconds * US
        n0, n1 = start_us // sample_us, ceil_div(min(end_us, clock_us), sample_us)
        table = sim.robots.events(n0, max(n0, n1))
        check_row_cap(sim, table.num_rows)  # few per robot-day; the time window bounds the work
    table = clip_to_clock(table, clock_us)
    until_us = max(start_us, min(end_us, clock_us))
    return stream(sim, [table], EVENTS, format, until_us, table.num_rows)


def clip_to_clock(table: pa.Table, clock_us: int) -> pa.Table:
    """Drop events that start after the clock; end running ones at the clock, marked ongoing."""
    ts_type = EVENTS.field("end").type
    clock = pa.scalar(clock_us, ts_type)
    table = table.filter(pc.less(table["start"], clock))
    ongoing = pc.greater(table["end"], clock)
    end = pc.if_else(ongoing, clock, table["end"])
    table = table.set_column(EVENTS.get_field_index("end"), EVENTS.field("end"), end)
    table = table.set_column(EVENTS.get_field_index("ongoing"), EVENTS.field("ongoing"), ongoing)
    return table.sort_by([("start", "ascending"), ("id", "ascending")])
