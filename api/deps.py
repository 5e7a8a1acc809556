"""What every route shares: the simulation, parameter parsing and the error type."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from api.encode import FORMATS
from api.fleet import Fleet, load_fleet
from api.settings import Settings
from api.simulate.doors import HOUR_S, DoorSimulator
from api.simulate.robots import RobotSimulator
from contract.times import EPOCH, parse_instant, to_us

US = 1_000_000


class ApiError(Exception):
    """A request the API refuses: an HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True)
class Simulation:
    settings: Settings
    fleet: Fleet
    doors: DoorSimulator
    robots: RobotSimulator

    @classmethod
    def from_settings(cls, settings: Settings) -> Simulation:
        fleet = load_fleet(settings.fleet_file)
        return cls(settings, fleet, DoorSimulator(fleet), RobotSimulator(fleet))

    def now_us(self) -> int:
        return to_us(self.settings.clock.now())

    def doors_until_hour(self) -> int:
        """First hour index not served yet: the unfinished current hour and later."""
        return self.now_us() // (HOUR_S * US)


def get_simulation(request: Request) -> Simulation:
    return request.app.state.simulation


SimulationDep = Annotated[Simulation, Depends(get_simulation)]

FormatParam = Annotated[
    Literal[FORMATS],  # type: ignore[valid-type]
    Query(description="Wire format: " + ", ".join(FORMATS), examples=["arrow"]),
]
StartParam = Annotated[
    str, Query(description="Inclusive start, ISO 8601 (UTC when no offset is given)", examples=["2024-07-01T00:00:00Z"])
]
EndParam = Annotated[
    str, Query(description="Exclusive end, ISO 8601; clipped to the data clock", examples=["2024-07-02T00:00:00Z"])
]


def iso(us: int) -> str:
    """Microseconds -> '2024-07-01T08:00:00Z', with '.123456' only when there is a fraction (as the encoders)."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if us % US else "%Y-%m-%dT%H:%M:%SZ"
    return (EPOCH + dt.timedelta(microseconds=us)).strftime(fmt)


def parse_time(name: str, text: str) -> int:
    """An ISO 8601 query parameter -> microseconds since the epoch, or a 422 naming it."""
    try:
        return to_us(parse_instant(text))
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, f"{name}: {text!r} is not an ISO 8601 time such as 2024-07-01T08:00:00Z ({exc})") from exc


def parse_span(start: str, end: str) -> tuple[int, int]:
    start_us, end_us = parse_time("start", start), parse_time("end", end)
    if start_us >= end_us:
        raise ApiError(422, f"start ({start}) must be before end ({end}): the span is half-open [start, end)")
    return start_us, end_us


def check_row_cap(sim: Simulation, rows: int) -> None:
    cap = sim.settings.max_rows
    if rows > cap:
        raise ApiError(
            413,
            f"start/end: the answer would hold {rows:,} rows, over the cap of {cap:,} (API_MAX_ROWS); "
            "ask for a shorter span or fewer sensors, or page through it",
        )


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)
