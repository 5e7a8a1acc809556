"""What exists: stores, doors, robots, time zones, opening dates."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SimulationDep, iso

router = APIRouter(tags=["fleet"])


class StoreOut(BaseModel):
    name: str
    timezone: str
    opened: dt.date
    opened_at: dt.datetime
    doors: int
    sensor_ids: list[int]
    open_hour: int
    close_hour: int
    closed_weekdays: list[int]
    visits_per_hour: float
    noise: str
    dispersion: float
    day_dispersion: float


class AxisOut(BaseModel):
    name: str
    mean: float
    std: float


class RobotOut(BaseModel):
    id: str
    installed: dt.date
    sample_seconds: int
    axes: list[AxisOut]


class FleetOut(BaseModel):
    seed: int
    now: str
    doors_until: str
    stores: list[StoreOut]
    robots: list[RobotOut]


class HealthOut(BaseModel):
    status: str
    now: str
    doors_until: str


@router.get("/v1/fleet", response_model=FleetOut, summary="Stores, doors and robots")
def read_fleet(sim: SimulationDep) -> FleetOut:
    """The fleet the simulator serves, with the data clock (`now`; doors up to `doors_until`)."""
    f, m = sim.fleet, sim.fleet.doors
    stores = [
        StoreOut(
            name=s.name, timezone=s.timezone, opened=s.opened, opened_at=s.opened_at, doors=s.doors,
            sensor_ids=list(range(s.doors)), open_hour=s.open_hour, close_hour=s.close_hour,
            closed_weekdays=list(s.closed_weekdays), visits_per_hour=s.visits_per_hour, noise=m.noise,
            dispersion=s.dispersion, day_dispersion=s.day_dispersion,
        )
        for s in f.stores
    ]  # fmt: skip
    axes = [AxisOut(name=a.name, mean=a.mean, std=a.std) for a in f.robots.axes]
    robots = [
        RobotOut(id=r.id, installed=r.installed, sample_seconds=f.robots.sample_seconds, axes=axes) for r in f.units
    ]
    return FleetOut(seed=f.seed, now=iso(sim.now_us()), doors_until=iso(sim.doors_until_hour() * 3600 * 10**6),
                    stores=stores, robots=robots)  # fmt: skip


@router.get("/health", response_model=HealthOut, summary="Liveness and the data clock")
async def read_health(sim: SimulationDep) -> HealthOut:
    return HealthOut(status="ok", now=iso(sim.now_us()), doors_until=iso(sim.doors_until_hour() * 3600 * 10**6))
