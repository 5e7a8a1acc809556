"""The original route, kept for old clients: one door (or store total) for one local hour."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
from fastapi import APIRouter, Query, Response

from api.deps import ApiError, Simulation, SimulationDep, check_window, iso, to_us
from api.routes.readings import HOUR_US, door_selection

router = APIRouter(tags=["legacy"])


def local_hour_to_utc(sim: Simulation, timezone: str, year: int, month: int, day: int, hour: int) -> dt.datetime:
    """The UTC start of a local wall-clock hour; a 422 for dates and hours that do not exist
    or lie outside the data window (0001-01-01 00:00 east of UTC has no UTC form at all)."""
    days = calendar.monthrange(year, month)[1]
    if day > days:
        raise ApiError(422, f"day: {year}-{month:02d} has days 1-{days}, got {day}")
    tz = ZoneInfo(timezone)
    local = dt.datetime(year, month, day, hour, tzinfo=tz)  # fold=0: an hour repeated in autumn means the first
    try:
        utc = local.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    text = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:00 in {timezone}"
    check_window(sim, "year/month/day/hour", text, utc)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ApiError(
            422, f"hour: {hour:02d}:00 does not exist on {year}-{month:02d}-{day:02d} in {timezone} (clocks go forward)"
        )
    return utc


@router.get(
    "/",
    summary="One hour of one door or one store (legacy)",
    responses={
        200: {
            "description": "A JSON integer, or null when the door failed (for a store total: when any door failed; "
            "`X-Failed-Doors` then lists them)",
            "content": {"application/json": {"example": 5123}},
        },
        404: {"description": "No reading: before the store opened, or not yet (after the data clock)"},
        422: {"description": "A parameter is invalid; the message names it"},
    },
)
async def read_legacy(
    sim: SimulationDep,
    store_name: Annotated[str, Query(examples=["Paris"])],
    year: Annotated[int, Query(ge=1, le=9999, examples=[2024])],
    month: Annotated[int, Query(ge=1, le=12, examples=[7])],
    day: Annotated[int, Query(ge=1, le=31, examples=[30])],
    hour: Annotated[int, Query(ge=0, le=23, description="Local hour of the store", examples=[12])],
    sensor_id: Annotated[int | None, Query(ge=0, description="0-based door; the store total when absent")] = None,
) -> Response:
    """Visits in the local hour `hour` of `year-month-day` at one door, or the store total.

    Date and hour are in the store's own time zone. A failed door answers `null`
    (the original answered -1/-2). A store total with a failed door is `null` too,
    never a sum that counts the failed door as 0, and the header `X-Failed-Doors`
    lists the failed doors.
    """
    selection = door_selection(sim, store_name, sensor_id, store_param="store_name")
    store = sim.fleet.store(store_name)
    start = local_hour_to_utc(sim, store.timezone, year, month, day, hour)
    h = to_us(start) // HOUR_US
    if start < store.opened_at:
        raise ApiError(404, f"{store_name} opened on {store.opened.isoformat()}; no readings before")
    if h >= sim.doors_until_hour():
        raise ApiError(404, f"not available yet: readings exist up to {iso(sim.doors_until_hour() * HOUR_US)}")
    # One grid row straight from the simulator: no table to build and take apart, and only the
    # asked doors are drawn (a door's failures look back by themselves), so the cost does not
    # grow with the store's other doors.
    ss, doors = selection[0]
    counts = sim.doors.grid(ss, h, h + 1, doors).counts[0]
    failed = doors[np.isnan(counts)]
    if len(failed):
        headers = {"X-Failed-Doors": ",".join(str(i) for i in failed)}
        return Response(content=b"null", media_type="application/json", headers=headers)
    return Response(content=str(int(counts.sum())).encode(), media_type="application/json")
