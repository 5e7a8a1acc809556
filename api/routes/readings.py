"""Bulk readings: doors (hourly) and robots (every few seconds), streamed in any format."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Query

from api.deps import (
    US,
    ApiError,
    EndParam,
    FormatParam,
    Simulation,
    SimulationDep,
    StartParam,
    ceil_div,
    check_row_cap,
    iso,
    parse_span,
    shown,
)
from api.encode import MEDIA_TYPES, encode, prefetched
from api.simulate.doors import HOUR_S
from api.streams import BulkStream
from contract.schemas import DOOR_READINGS, ROBOT_READINGS

router = APIRouter(prefix="/v1/readings", tags=["readings"])
RETRY_AFTER_S = 2  # a busy stream cap frees up within seconds

HOUR_US = HOUR_S * US
DOORS_EXAMPLE = [{"ts": "2024-07-01T08:00:00Z", "store": "Paris", "sensor_id": 12, "count": 5123}]
ROBOTS_EXAMPLE = [{"ts": "2024-07-01T08:00:00Z", "robot_id": "robot-1", **{f"axis{i}": 0.0 for i in range(1, 9)}}]
STREAM_HEADERS = {
    "X-Data-Until": {"description": "ISO 8601: the answer is complete up to here (end, clipped to the clock)"},
    "X-Row-Count": {"description": "Rows in the answer"},
}


def _responses(example: list[dict]) -> dict:
    content = {media: {} for media in MEDIA_TYPES.values()}
    content["application/json"] = {"example": example}
    return {
        200: {"content": content, "headers": STREAM_HEADERS},
        413: {"description": "The span would exceed the row cap"},
        422: {"description": "A parameter is invalid; the message names it"},
    }


def stream(
    sim: Simulation, chunks: Iterable[pa.Table], schema: pa.Schema, fmt: str, until_us: int, rows: int
) -> BulkStream:
    """The answer, streamed in `fmt`, if one of the API_MAX_STREAMS slots is free; a 503 otherwise."""
    if not sim.streams.try_enter():
        raise ApiError(
            503,
            f"busy: {sim.streams.limit} bulk answers are streaming already (API_MAX_STREAMS); retry in a few seconds",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    headers = {"X-Data-Until": iso(until_us), "X-Row-Count": str(rows)}
    body = encode(prefetched(chunks), schema, fmt)
    return BulkStream(body, sim.streams, MEDIA_TYPES[fmt], headers, f"{fmt} answer of {rows:,} rows")


def door_selection(sim: Simulation, store: str | None, sensor_id: int | None, store_param: str = "store") -> list:
    """The doors a request covers, or a 422 naming the parameter that points nowhere."""
    if store is not None and sim.doors.store_sim(store) is None:
        known = ", ".join(s.name for s in sim.fleet.stores)
        raise ApiError(422, f"{store_param}: unknown store {shown(store)}; known stores: {known}")
    if sensor_id is not None:
        if store is None:
            raise ApiError(422, "sensor_id: needs store (sensor ids are numbered per store)")
        doors = sim.fleet.store(store).doors
        if sensor_id >= doors:
            raise ApiError(422, f"sensor_id: {store} has doors 0-{doors - 1}, got {sensor_id}")
    return sim.doors.select(store, sensor_id)


@router.get("/doors", responses=_responses(DOORS_EXAMPLE), summary="Hourly door counts")
def read_doors(
    sim: SimulationDep,
    start: StartParam,
    end: EndParam,
    store: Annotated[str | None, Query(description="One store; all when absent", examples=["Paris"])] = None,
    sensor_id: Annotated[int | None, Query(ge=0, description="0-based door of `store`", examples=[12])] = None,
    format: FormatParam = "json",
) -> BulkStream:
    """One row per door per complete hour in [start, end) since the store opened.

    `count` is the number of visits in the hour starting at `ts` (UTC), 0 while the
    store is closed, and null while the door's sensor has failed. The unfinished
    current hour is never served; `X-Data-Until` says where the answer stops.
    """
    start_us, end_us = parse_span(sim, start, end)
    selection = door_selection(sim, store, sensor_id)
    h0 = ceil_div(start_us, HOUR_US)
    h1 = min(ceil_div(end_us, HOUR_US), sim.doors_until_hour())
    until_us = max(start_us, min(end_us, h1 * HOUR_US))
    rows = sim.doors.row_count(h0, h1, selection)
    check_row_cap(sim, rows)
    chunks = sim.doors.reading_chunks(h0, h1, selection, sim.chunks.doors)
    return stream(sim, chunks, DOOR_READINGS, format, until_us, rows)


@router.get("/robots", responses=_responses(ROBOTS_EXAMPLE), summary="Robot axis samples")
def read_robots(
    sim: SimulationDep,
    start: StartParam,
    end: EndParam,
    robot_id: Annotated[str | None, Query(description="One robot; all when absent", examples=["robot-1"])] = None,
    format: FormatParam = "json",
) -> BulkStream:
    """One row per robot per sample time in [start, end) since the robot was installed.

    A resting axis reads exactly 0. Samples exist up to the data clock.
    """
    start_us, end_us = parse_span(sim, start, end)
    if robot_id is not None and sim.fleet.robot(robot_id) is None:
        known = ", ".join(r.id for r in sim.fleet.units)
        raise ApiError(422, f"robot_id: unknown robot {shown(robot_id)}; known robots: {known}")
    sample_us = sim.fleet.robots.sample_seconds * US
    # Clipped to the first sample time at or after the clock, not to the clock itself: the
    # answer is as complete there, and a clock with a fraction never becomes a watermark
    # that a client rounding to whole seconds would re-read a sample from.
    clock_us = ceil_div(sim.now_us(), sample_us) * sample_us
    until_us = max(start_us, min(end_us, clock_us))
    n0, n1 = ceil_div(start_us, sample_us), ceil_div(until_us, sample_us)
    robots = sim.robots.select(robot_id)
    rows = sim.robots.row_count(n0, n1, robots)
    check_row_cap(sim, rows)
    chunks = sim.robots.reading_chunks(n0, n1, robots, sim.chunks.robots)
    return stream(sim, chunks, ROBOT_READINGS, format, until_us, rows)
