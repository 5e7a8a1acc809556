"""All of the API's configuration: environment variables with defaults, read once."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from api.fleet import DEFAULT_FLEET_FILE
from contract.times import parse_instant


@dataclass(frozen=True)
class Clock:
    """The simulation's "now": the wall clock, or pinned at `anchor`, optionally sped up.

    With an anchor and speed 1 the clock stands still (reproducible runs); with a
    speed above 1 it starts at the anchor (or the wall clock) and runs faster.
    """

    anchor: dt.datetime | None = None
    speed: float = 1.0
    started: float = field(default_factory=time.time)

    def now(self) -> dt.datetime:
        wall = time.time()
        if self.anchor is None and self.speed == 1.0:
            return dt.datetime.fromtimestamp(wall, dt.UTC)
        base = self.anchor or dt.datetime.fromtimestamp(self.started, dt.UTC)
        if self.speed == 1.0:
            return base
        return base + dt.timedelta(seconds=(wall - self.started) * self.speed)


@dataclass(frozen=True)
class Settings:
    fleet_file: Path = DEFAULT_FLEET_FILE
    clock: Clock = field(default_factory=Clock)
    max_rows: int = 10_000_000
    chunk_rows: int = 262_144
    memory_budget_mb: int = 1024  # the most the API may hold at once: chunks and streams sized from it by rows
    max_streams: int = 4  # bulk answers streaming at once; each holds a producer thread and a few chunks
    send_timeout: float = 60.0  # seconds a bulk answer's chunk may wait for the client before the answer ends
    # The plausible time window of data: every time parameter lies in
    # [min_time, clock + max_ahead_days], so no request reaches dates whose arithmetic overflows.
    min_time: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    max_ahead_days: float = 3660.0
    api_key: str = field(default="", repr=False)  # API_KEY: when set, requests need X-API-Key; never logged
    replay_paths: tuple[Path, ...] = ()  # recorded data sets served as live streams (files or folders)
    stream_max_seconds: float = 3600.0  # the longest a stream connection stays open

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """FLEET_FILE, SIM_NOW (ISO 8601), SIM_SPEED, API_MAX_ROWS, API_CHUNK_ROWS, API_MEMORY_BUDGET_MB,
        API_MAX_STREAMS, API_MIN_TIME, API_MAX_AHEAD_DAYS, API_KEY, API_SEND_TIMEOUT_SECONDS,
        API_REPLAY_PATHS (colon-separated files or folders), API_STREAM_MAX_SECONDS."""
        env = dict(os.environ if env is None else env)
        min_time = _instant(env, "API_MIN_TIME") or cls.min_time
        return cls(
            fleet_file=Path(env.get("FLEET_FILE") or DEFAULT_FLEET_FILE),
            clock=Clock(anchor=_instant(env, "SIM_NOW"), speed=_positive(env, "SIM_SPEED", 1.0, float)),
            max_rows=_positive(env, "API_MAX_ROWS", cls.max_rows, int),
            chunk_rows=_positive(env, "API_CHUNK_ROWS", cls.chunk_rows, int),
            memory_budget_mb=_positive(env, "API_MEMORY_BUDGET_MB", cls.memory_budget_mb, int),
            max_streams=_positive(env, "API_MAX_STREAMS", cls.max_streams, int),
            send_timeout=_positive(env, "API_SEND_TIMEOUT_SECONDS", cls.send_timeout, float),
            min_time=min_time,
            max_ahead_days=_positive(env, "API_MAX_AHEAD_DAYS", cls.max_ahead_days, float),
            api_key=env.get("API_KEY", "").strip(),
            replay_paths=tuple(Path(p) for p in env.get("API_REPLAY_PATHS", "").split(":") if p.strip()),
            stream_max_seconds=_positive(env, "API_STREAM_MAX_SECONDS", cls.stream_max_seconds, float),
        )


def _instant(env: dict[str, str], name: str) -> dt.datetime | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        value = parse_instant(raw)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{name}={raw!r} is not an ISO 8601 time such as 2025-01-01T00:00:00Z: {exc}") from exc
    if not dt.datetime(1900, 1, 1, tzinfo=dt.UTC) <= value <= dt.datetime(2200, 1, 1, tzinfo=dt.UTC):
        raise ValueError(f"{name}={raw!r} is outside 1900-2200")
    return value


def _positive(env: dict[str, str], name: str, default, kind):
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive {kind.__name__}")
    return value
