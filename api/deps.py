"""What every route shares: the simulation, parameter parsing and the error type."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from api.budget import ChunkRows, chunk_rows
from api.encode import FORMATS
from api.fleet import Fleet, load_fleet
from api.settings import Settings
from api.simulate.doors import HOUR_S, DoorSimulator
from api.simulate.robots import RobotSimulator
from api.streams import StreamGate
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
    streams: StreamGate  # the bulk answers streaming now, at most API_MAX_STREAMS
    chunks: ChunkRows  # rows per streamed chunk, from API_MEMORY_BUDGET_MB (at most API_CHUNK_ROWS)

    @classmethod
    def from_settings(cls, settings: Settings) -> Simulation:
        """The simulation; a ValueError (one line) for a fleet file or budget that cannot work."""
        fleet = load_fleet(settings.fleet_file)
        chunks = chunk_rows(settings, fleet)  # before the simulators: refuse an impossible budget at once
        return cls(
            settings,
            fleet,
            DoorSimulator(fleet),
            RobotSimulator(fleet),
            StreamGate(settings.max_streams, settings.send_timeout),
            chunks,
        )

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


def parse_time(sim: Simulation, name: str, text: str) -> int:
    """An ISO 8601 query parameter -> microseconds since the epoch, or a 422 naming it.

    The time must lie in the data window (see check_window); one whose UTC form does not
    exist (9999-12-31T23:59:59-14:00) is outside it too."""
    try:
        value = parse_instant(text)
    except ValueError as exc:
        raise ApiError(
            422, f"{name}: {shown(text)} is not an ISO 8601 time such as 2024-07-01T08:00:00Z ({cut(str(exc))})"
        ) from exc
    except OverflowError:
        value = None
    return check_window(sim, name, shown(text), value)


def window_us(sim: Simulation) -> tuple[int, int]:
    """[API_MIN_TIME, clock + API_MAX_AHEAD_DAYS]: where a time parameter may lie."""
    ahead = dt.timedelta(days=sim.settings.max_ahead_days) // dt.timedelta(microseconds=1)
    return to_us(sim.settings.min_time), sim.now_us() + ahead


def check_window(sim: Simulation, name: str, text: str, value: dt.datetime | None) -> int:
    """Microseconds of `value`, or a 422 when it is None (unrepresentable) or outside the data window."""
    lo, hi = window_us(sim)
    us = None if value is None else to_us(value)
    if us is None or not lo <= us <= hi:
        raise ApiError(
            422,
            f"{name}: {text} is outside the data window {iso(lo)} (API_MIN_TIME) to {iso(hi)} "
            f"(the clock + API_MAX_AHEAD_DAYS={sim.settings.max_ahead_days:g})",
        )
    return us


def parse_span(sim: Simulation, start: str, end: str) -> tuple[int, int]:
    start_us, end_us = parse_time(sim, "start", start), parse_time(sim, "end", end)
    if start_us >= end_us:
        raise ApiError(
            422, f"start ({shown(start)}) must be before end ({shown(end)}): the span is half-open [start, end)"
        )
    return start_us, end_us


def shown(value: object, limit: int = 80) -> str:
    """repr(value) for a message, cut to `limit` characters: a message never echoes a huge parameter whole."""
    return cut(repr(value), limit)


def cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


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
