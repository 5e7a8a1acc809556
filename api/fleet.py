"""The fleet file (TOML) -> plain, frozen dataclasses.

The fleet says what exists (stores, doors, robots) and the knobs of the models;
everything random is derived from `seed` by the simulators.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_FLEET_FILE = Path(__file__).with_name("fleet.toml")
FLEETS_DIR = Path(__file__).with_name("fleets")  # presets, e.g. original.toml: the original's scale
NOISES = ("normal", "negbin")


class FleetError(ValueError):
    """The fleet file is unreadable or says something impossible."""


@dataclass(frozen=True)
class Store:
    """A store; its traffic and hours are its own keys in the fleet file, or [doors]' defaults."""

    name: str
    timezone: str
    opened: dt.date
    doors: int
    open_hour: int
    close_hour: int
    closed_weekdays: tuple[int, ...]
    visits_per_hour: float  # all doors together, an average open hour at opening
    dispersion: float  # negbin: var = mu + dispersion mu^2 of a door's hour
    day_dispersion: float  # negbin: variance of a factor shared by the store's hours of a day

    @property
    def opened_at(self) -> dt.datetime:
        """The opening instant: local midnight of the opening date, in UTC."""
        local = dt.datetime.combine(self.opened, dt.time(0), ZoneInfo(self.timezone))
        return local.astimezone(dt.UTC)


@dataclass(frozen=True)
class DoorModel:
    open_hour: int
    close_hour: int
    closed_weekdays: tuple[int, ...]
    visits_per_door_hour: float  # a door's average open hour at opening, for stores without visits_per_hour
    growth_per_year: float  # traffic x (1 + growth_per_year x years open); the original: 1 (k = years open)
    noise: str  # "normal": the original's rint(expected x (1 + noise_cv N(0, 1))); "negbin": gamma-Poisson counts
    noise_cv: float
    dispersion: float
    day_dispersion: float
    underused_share: float
    underused_rate: float
    weekday_profile: tuple[float, ...]
    hour_profile: tuple[float, ...]
    anomaly_rate: float
    anomaly_factor: float
    surge_day_rate: float
    surge_factor: tuple[float, float]
    surge_hours: tuple[int, int]
    burst_day_rate: float  # share of a door's open days with a burst
    burst_factor: tuple[float, float]
    burst_hours: tuple[int, int]
    dip_day_rate: float  # share of a door's open days with a dip (the entrance closed, a queue)
    dip_factor: tuple[float, float]
    dip_hours: tuple[int, int]
    day_off_rate: float  # share of a store's open days it stays closed (a holiday, a strike)
    expansion_every_years: tuple[float, float]
    expansion_gain: tuple[float, float]
    expansion_ramp_days: float
    failure_base: float
    failure_age_power: float
    failure_hours: tuple[int, int]
    replace_every_years: tuple[float, float]


@dataclass(frozen=True)
class Axis:
    name: str
    mean: float
    std: float


@dataclass(frozen=True)
class Robot:
    id: str
    installed: dt.date

    @property
    def installed_at(self) -> dt.datetime:
        return dt.datetime.combine(self.installed, dt.time(0), dt.UTC)


@dataclass(frozen=True)
class RobotModel:
    sample_seconds: int
    cycle_samples: int
    active_samples: int
    alert_blocks_per_day: float
    error_blocks_per_day: float
    block_samples: tuple[int, int]
    alert_sigmas: tuple[float, float]
    error_sigmas: tuple[float, float]
    wear_axis_rate: float
    wear_gap_days: tuple[float, float]
    wear_days: tuple[float, float]
    wear_sigmas_at_maintenance: tuple[float, float]
    axes: tuple[Axis, ...]

    @property
    def duty(self) -> float:
        return self.active_samples / self.cycle_samples


@dataclass(frozen=True)
class Fleet:
    seed: int
    doors: DoorModel
    stores: tuple[Store, ...]
    robots: RobotModel
    units: tuple[Robot, ...]

    def store(self, name: str) -> Store | None:
        return next((s for s in self.stores if s.name == name), None)

    def robot(self, robot_id: str) -> Robot | None:
        return next((r for r in self.units if r.id == robot_id), None)


def load_fleet(path: str | Path = DEFAULT_FLEET_FILE) -> Fleet:
    """Read and check a fleet file; a bad file raises FleetError naming the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FleetError(f"fleet file {path}: {exc}") from exc
    try:
        fleet = _build(raw)
    except (KeyError, TypeError) as exc:
        raise FleetError(f"fleet file {path}: missing or malformed key {exc}") from exc
    _check(fleet, path)
    return fleet


def _pair(value: list) -> tuple:
    lo, hi = value
    return (lo, hi)


def _build(raw: dict) -> Fleet:
    d = raw["doors"]
    doors = DoorModel(
        open_hour=int(d["open_hour"]),
        close_hour=int(d["close_hour"]),
        closed_weekdays=tuple(int(x) for x in d["closed_weekdays"]),
        visits_per_door_hour=float(d["visits_per_door_hour"]),
        growth_per_year=float(d["growth_per_year"]),
        noise=str(d.get("noise", "normal")),
        noise_cv=float(d.get("noise_cv", 0.0)),
        dispersion=float(d.get("dispersion", 0.0)),
        day_dispersion=float(d.get("day_dispersion", 0.0)),
        underused_share=float(d["underused_share"]),
        underused_rate=float(d["underused_rate"]),
        weekday_profile=tuple(float(x) for x in d["weekday_profile"]),
        hour_profile=tuple(float(x) for x in d["hour_profile"]),
        anomaly_rate=float(d["anomaly_rate"]),
        anomaly_factor=float(d["anomaly_factor"]),
        surge_day_rate=float(d["surge_day_rate"]),
        surge_factor=_pair(d["surge_factor"]),
        surge_hours=_pair(d["surge_hours"]),
        burst_day_rate=float(d.get("burst_day_rate", 0.0)),
        burst_factor=_pair(d.get("burst_factor", [1.3, 4.0])),
        burst_hours=_pair(d.get("burst_hours", [1, 4])),
        dip_day_rate=float(d.get("dip_day_rate", 0.0)),
        dip_factor=_pair(d.get("dip_factor", [0.0, 0.3])),
        dip_hours=_pair(d.get("dip_hours", [1, 4])),
        day_off_rate=float(d.get("day_off_rate", 0.0)),
        expansion_every_years=_pair(d["expansion_every_years"]),
        expansion_gain=_pair(d["expansion_gain"]),
        expansion_ramp_days=float(d["expansion_ramp_days"]),
        failure_base=float(d["failure_base"]),
        failure_age_power=float(d["failure_age_power"]),
        failure_hours=_pair(d["failure_hours"]),
        replace_every_years=_pair(d["replace_every_years"]),
    )
    stores = tuple(
        Store(
            name=str(s["name"]),
            timezone=str(s["timezone"]),
            opened=s["opened"],
            doors=int(s["doors"]),
            open_hour=int(s.get("open_hour", doors.open_hour)),
            close_hour=int(s.get("close_hour", doors.close_hour)),
            closed_weekdays=tuple(int(x) for x in s.get("closed_weekdays", doors.closed_weekdays)),
            visits_per_hour=float(s.get("visits_per_hour", doors.visits_per_door_hour * int(s["doors"]))),
            dispersion=float(s.get("dispersion", doors.dispersion)),
            day_dispersion=float(s.get("day_dispersion", doors.day_dispersion)),
        )
        for s in raw["stores"]
    )
    r = raw["robots"]
    robots = RobotModel(
        sample_seconds=int(r["sample_seconds"]),
        cycle_samples=int(r["cycle_samples"]),
        active_samples=int(r["active_samples"]),
        alert_blocks_per_day=float(r["alert_blocks_per_day"]),
        error_blocks_per_day=float(r["error_blocks_per_day"]),
        block_samples=_pair(r["block_samples"]),
        alert_sigmas=_pair(r["alert_sigmas"]),
        error_sigmas=_pair(r["error_sigmas"]),
        wear_axis_rate=float(r["wear_axis_rate"]),
        wear_gap_days=_pair(r["wear_gap_days"]),
        wear_days=_pair(r["wear_days"]),
        wear_sigmas_at_maintenance=_pair(r["wear_sigmas_at_maintenance"]),
        axes=tuple(Axis(str(a["name"]), float(a["mean"]), float(a["std"])) for a in r["axes"]),
    )
    units = tuple(Robot(id=str(u["id"]), installed=u["installed"]) for u in r["units"])
    return Fleet(seed=int(raw["seed"]), doors=doors, stores=stores, robots=robots, units=units)


def _check(fleet: Fleet, path: Path) -> None:
    problems: list[str] = []
    names = [s.name for s in fleet.stores]
    if len(set(names)) != len(names):
        problems.append("store names must be unique")
    for s in fleet.stores:
        if not isinstance(s.opened, dt.date) or isinstance(s.opened, dt.datetime):
            problems.append(f"store {s.name}: opened must be a date like 2024-01-01")
        if s.doors < 1:
            problems.append(f"store {s.name}: doors must be at least 1")
        try:
            ZoneInfo(s.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"store {s.name}: unknown timezone {s.timezone!r}")
        if not 0 <= s.open_hour < s.close_hour <= 24:
            problems.append(f"store {s.name}: need 0 <= open_hour < close_hour <= 24")
        if not set(s.closed_weekdays) <= set(range(7)) or len(set(s.closed_weekdays)) == 7:
            problems.append(f"store {s.name}: closed_weekdays are 0 (Monday) .. 6, and not all of them")
        if s.visits_per_hour < 0 or s.dispersion < 0 or s.day_dispersion < 0:
            problems.append(f"store {s.name}: visits_per_hour, dispersion and day_dispersion must be >= 0")
    d = fleet.doors
    if not 0 <= d.open_hour < d.close_hour <= 24:
        problems.append("doors: need 0 <= open_hour < close_hour <= 24")
    if len(d.hour_profile) != d.close_hour - d.open_hour:
        problems.append("doors.hour_profile needs one value per open hour")
    if len(d.weekday_profile) != 7 - len(d.closed_weekdays):
        problems.append("doors.weekday_profile needs one value per open weekday")
    if d.noise not in NOISES:
        problems.append(f"doors.noise must be one of {', '.join(NOISES)}, got {d.noise!r}")
    for name in ("burst_day_rate", "dip_day_rate", "day_off_rate", "anomaly_rate", "surge_day_rate"):
        if not 0 <= getattr(d, name) <= 1:
            problems.append(f"doors.{name} must be a share between 0 and 1")
    r = fleet.robots
    if not 0 < r.active_samples < r.cycle_samples:
        problems.append("robots: need 0 < active_samples < cycle_samples")
    if r.sample_seconds < 1:
        problems.append("robots.sample_seconds must be at least 1")
    for a in r.axes:
        # A duty cycle can only give mean m and std s if duty > m^2 / (m^2 + s^2).
        if a.std <= 0 or r.duty <= a.mean**2 / (a.mean**2 + a.std**2):
            problems.append(f"robots.axes {a.name}: mean/std not reachable with duty {r.duty}")
    ids = [u.id for u in fleet.units]
    if len(set(ids)) != len(ids):
        problems.append("robot ids must be unique")
    if problems:
        raise FleetError(f"fleet file {path}: " + "; ".join(problems))
