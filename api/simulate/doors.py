"""People counters on store doors: hourly visits as a pure function of (seed, door, hour).

Time is counted in whole UTC hours since the Unix epoch ("hour index"). A door's
expected traffic is the store's level (its visits an hour at opening, growing by
growth_per_year, times expansion phases) x the door's usage weight x the store's
weekday and intra-day profiles x its events: a store-wide surge or day off, a door's
burst or dip, an anomalous hour at 10 %. The reading is a gamma-Poisson count of that
(noise "negbin": a door-hour factor and a store-day factor, each of mean 1), or, as
the original, the expectation with Normal noise of noise_cv (noise "normal"). A failed
sensor reads null at any hour, a working one reads 0 while the store is closed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from api.fleet import DoorModel, Fleet, Store
from api.simulate.columns import repeat_names, tile_names
from api.simulate.rng import Stream, between, gamma_factor, hash_keys, name_key, normal, poisson, rehash, uniform
from contract.schemas import DOOR_READINGS, events_table

HOUR_S = 3600
HOURS_PER_YEAR = 8766.0
US_PER_HOUR = HOUR_S * 1_000_000
# Schedules (expansions, sensor replacements) are laid out this far after opening.
_SCHEDULE_STEPS = 200
_FEW_HOURS = 48


@dataclass(frozen=True)
class DoorSensor:
    sensor_id: int
    key: int
    weight: float
    installed_hours: np.ndarray  # hour indices at which a new sensor was fitted, ascending


@dataclass(frozen=True)
class StoreSim:
    store: Store
    key: int
    opened_hour: int
    doors: tuple[DoorSensor, ...]
    expansion_hours: np.ndarray
    expansion_gains: np.ndarray
    weekday_factor: np.ndarray  # (7,) mean 1 over the open weekdays
    hour_factor: np.ndarray  # (24,) mean 1 over the open hours, 0 outside
    open_weekday: np.ndarray  # (7,) bool


@dataclass
class Grid:
    """One store over a run of hours (rows) and some of its doors (columns)."""

    hours: np.ndarray  # (H,)
    is_open: np.ndarray  # (H,)
    local_day: np.ndarray  # (H,) days since 1970-01-01 in the store's calendar
    surge: np.ndarray  # (H,) multiplier, 1 outside surges
    day_off: np.ndarray  # (H,) bool: an open hour of a day the store stays closed
    burst: np.ndarray  # (H, D) multiplier of a door's bursts (> 1) and dips (< 1), 1 elsewhere
    counts: np.ndarray  # (H, D) float, NaN where the sensor failed
    anomaly: np.ndarray  # (H, D) bool
    failed: np.ndarray  # (H, D) bool
    failures: list[tuple[int, int, int]]  # (door column, start hour, end hour)


def local_calendar(timezone: str, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local day number, local hour and weekday (Monday=0) of each UTC hour index."""
    utc_s = hours * HOUR_S
    if len(hours) <= _FEW_HOURS:  # one reading (the legacy route): zoneinfo directly, 5x faster than pandas
        tz = ZoneInfo(timezone)
        offsets = [dt.datetime.fromtimestamp(int(t), tz).utcoffset().total_seconds() for t in utc_s]
        local_s = utc_s + np.array(offsets, dtype=np.int64)
    else:
        utc = pd.DatetimeIndex(utc_s.astype("datetime64[s]")).tz_localize("UTC")
        local_s = utc.tz_convert(timezone).tz_localize(None).as_unit("s").asi8
    local_day = local_s // 86400
    local_hour = (local_s % 86400) // HOUR_S
    weekday = (local_day + 3) % 7  # 1970-01-01 was a Thursday
    return local_day, local_hour, weekday


def hour_index(store: Store) -> int:
    return int(store.opened_at.timestamp()) // HOUR_S


class DoorSimulator:
    def __init__(self, fleet: Fleet) -> None:
        self.seed = fleet.seed
        self.model: DoorModel = fleet.doors
        self.stores = tuple(self._store_sim(s) for s in fleet.stores)

    # -- static, seed-derived structure -------------------------------------------------

    def _store_sim(self, store: Store) -> StoreSim:
        m, seed = self.model, self.seed
        key = name_key("store", store.name)
        opened = hour_index(store)
        steps = np.arange(_SCHEDULE_STEPS)
        gaps = between(uniform(hash_keys(seed, Stream.STORE_EXPANSION, key, steps, 0)), m.expansion_every_years)
        gains = between(uniform(hash_keys(seed, Stream.STORE_EXPANSION, key, steps, 1)), m.expansion_gain)
        expansion_hours = opened + np.cumsum(gaps * HOURS_PER_YEAR).astype(np.int64)
        keys = [name_key("door", store.name, i) for i in range(store.doors)]
        weights = np.exp(0.5 * normal(hash_keys(seed, Stream.DOOR_WEIGHT, np.array(keys, np.uint64), 0)))
        underused = uniform(hash_keys(seed, Stream.DOOR_WEIGHT, np.array(keys, np.uint64), 1)) < m.underused_rate
        weights = np.where(underused & (store.doors > 1), weights * m.underused_share, weights)
        weights = weights / weights.mean()
        doors = []
        for i, k in enumerate(keys):
            lifetimes = between(uniform(hash_keys(seed, Stream.DOOR_REPLACE, k, steps)), m.replace_every_years)
            installed = opened + np.concatenate([[0], np.cumsum(lifetimes * HOURS_PER_YEAR)]).astype(np.int64)
            doors.append(DoorSensor(i, k, float(weights[i]), installed))
        open_days = [d for d in range(7) if d not in store.closed_weekdays]
        weekday = np.ones(7)
        weekday[open_days] = _profile(m.weekday_profile, len(open_days))
        hourly = np.zeros(24)
        hourly[store.open_hour : store.close_hour] = _profile(m.hour_profile, store.close_hour - store.open_hour)
        open_weekday = np.isin(np.arange(7), open_days)
        return StoreSim(store, key, opened, tuple(doors), expansion_hours, gains, weekday, hourly, open_weekday)

    def store_sim(self, name: str) -> StoreSim | None:
        return next((s for s in self.stores if s.store.name == name), None)

    # -- the grid ------------------------------------------------------------------------

    def _level(self, ss: StoreSim, hours: np.ndarray) -> np.ndarray:
        """Visits an average door of the store expects in an open hour (trend x expansions)."""
        m = self.model
        years_open = np.maximum(hours - ss.opened_hour, 0) / HOURS_PER_YEAR
        level = ss.store.visits_per_hour / ss.store.doors * (1.0 + m.growth_per_year * years_open)
        ramp = m.expansion_ramp_days * 24.0
        for start, gain in zip(ss.expansion_hours, ss.expansion_gains, strict=True):
            if start >= hours[-1]:
                break
            level = level * (1.0 + gain * np.clip((hours - start) / ramp, 0.0, 1.0))
        return level

    def _surge(self, ss: StoreSim, local_day: np.ndarray, local_hour: np.ndarray, is_open: np.ndarray) -> np.ndarray:
        m = self.model
        h = hash_keys(self.seed, Stream.STORE_SURGE, ss.key, local_day, np.arange(4)[:, None])
        in_surge, factor = _day_spans(h, ss.store, local_hour, m.surge_day_rate, m.surge_hours, m.surge_factor)
        return np.where(in_surge & is_open, factor, 1.0)

    def _bursts(
        self, ss: StoreSim, doors: list[DoorSensor], local_day: np.ndarray, local_hour: np.ndarray
    ) -> np.ndarray:
        """(H, D) multipliers: a door's bursts (a group, a promotion) and dips (its entrance closed)."""
        m = self.model
        out = np.ones((len(local_day), len(doors)))
        if not doors or (m.burst_day_rate <= 0 and m.dip_day_rate <= 0):
            return out
        keys = np.array([d.key for d in doors], np.uint64)[None, :]
        days = np.unique(local_day)  # drawn per door-day, not per hour; local_day is ascending
        for stream, rate, hours, factor in (
            (Stream.DOOR_BURST, m.burst_day_rate, m.burst_hours, m.burst_factor),
            (Stream.DOOR_DIP, m.dip_day_rate, m.dip_hours, m.dip_factor),
        ):
            if rate > 0:
                h = hash_keys(self.seed, stream, keys, days[:, None], np.arange(4)[:, None, None])
                happens, first, length, size = _day_span_draws(h, ss.store, rate, hours, factor)
                for d, c in zip(*np.nonzero(happens), strict=True):  # a loop over events (1 %), not readings
                    lo, hi = np.searchsorted(local_day, days[d], "left"), np.searchsorted(local_day, days[d], "right")
                    span = local_hour[lo:hi]
                    inside = lo + np.nonzero((span >= first[d, c]) & (span < first[d, c] + length[d, c]))[0]
                    out[inside, c] *= size[d, c]
        return out

    def _day_off(self, ss: StoreSim, local_day: np.ndarray) -> np.ndarray:
        """Whether the store stays closed all day (a holiday, a strike), by local day."""
        rate = self.model.day_off_rate
        if rate <= 0:
            return np.zeros(len(local_day), bool)
        return uniform(hash_keys(self.seed, Stream.STORE_DAY_OFF, ss.key, local_day)) < rate

    def failures(self, ss: StoreSim, doors: list[DoorSensor], h0: int, h1: int) -> list[tuple[int, int, int]]:
        """Failure intervals (door column, start, end) of some doors that overlap [h0, h1), merged."""
        m = self.model
        last_day = (h1 - 1) // 24
        lookback = m.failure_hours[1]
        # A chain of overlapping failures can reach back further than one failure lasts:
        # widen the look-back until no chain starts at its edge, so that the intervals
        # reported do not depend on where a request starts.
        for _ in range(64):
            first_day = max(h0 - lookback, ss.opened_hour) // 24
            merged = self._failure_intervals(ss, doors, first_day, last_day)
            edge = first_day * 24 + m.failure_hours[1]
            if first_day * 24 <= ss.opened_hour or all(s >= edge for _, s, _ in merged):
                break
            lookback *= 2
        return [(c, s, e) for c, s, e in merged if e > h0 and s < h1]

    def _failure_intervals(
        self, ss: StoreSim, doors: list[DoorSensor], first_day: int, last_day: int
    ) -> list[tuple[int, int, int]]:
        m = self.model
        if last_day < first_day or not doors:
            return []
        day_start = np.arange(first_day, last_day + 1, dtype=np.int64)[:, None] * 24  # (days, 1)
        fitted = np.full((day_start.shape[0], len(doors)), ss.opened_hour, np.int64)
        for col, door in enumerate(doors):
            for installed in door.installed_hours[1:]:
                if installed > day_start[-1, 0]:
                    break
                fitted[:, col] = np.where(day_start[:, 0] >= installed, installed, fitted[:, col])
        age_years = np.maximum(day_start - fitted, 0) / HOURS_PER_YEAR
        p = m.failure_base * (1.0 + age_years) ** m.failure_age_power
        keys = np.array([d.key for d in doors], np.uint64)[None, :]
        h = hash_keys(self.seed, Stream.DOOR_FAILURE, keys, day_start // 24, np.arange(3)[:, None, None])
        rows, cols = np.nonzero((uniform(h[0]) < p) & (day_start >= ss.opened_hour))
        start = day_start[rows, 0] + (uniform(h[1][rows, cols]) * 24).astype(np.int64)
        log_bounds = (np.log(m.failure_hours[0]), np.log(m.failure_hours[1]))
        end = start + np.exp(between(uniform(h[2][rows, cols]), log_bounds)).astype(np.int64)
        order = np.lexsort((start, cols))
        merged: list[tuple[int, int, int]] = []
        for c, s_, e in zip(cols[order].tolist(), start[order].tolist(), end[order].tolist(), strict=True):
            if merged and merged[-1][0] == c and s_ <= merged[-1][2]:
                merged[-1] = (c, merged[-1][1], max(merged[-1][2], e))
            else:
                merged.append((c, max(s_, ss.opened_hour), e))
        return merged

    def grid(self, ss: StoreSim, h0: int, h1: int, doors: list[DoorSensor]) -> Grid:
        """Readings and injected events of some doors of one store over hours [h0, h1)."""
        m = self.model
        hours = np.arange(max(h0, ss.opened_hour), max(h1, ss.opened_hour), dtype=np.int64)
        n_h, n_d = len(hours), len(doors)
        counts = np.zeros((n_h, n_d))
        anomaly = np.zeros((n_h, n_d), bool)
        failed = np.zeros((n_h, n_d), bool)
        if n_h == 0:
            empty = np.zeros(0)
            flag = empty.astype(bool)
            return Grid(hours, flag, empty.astype(np.int64), empty, flag, counts.copy(), counts, anomaly, failed, [])
        local_day, local_hour, weekday = local_calendar(ss.store.timezone, hours)
        st = ss.store
        is_open = ss.open_weekday[weekday] & (local_hour >= st.open_hour) & (local_hour < st.close_hour)
        surge = self._surge(ss, local_day, local_hour, is_open)
        day_off = self._day_off(ss, local_day) & is_open
        burst = self._bursts(ss, doors, local_day, local_hour)
        burst[~is_open] = 1.0

        rows = np.nonzero(is_open)[0]
        if len(rows):
            typical = (self._level(ss, hours[rows]) * ss.weekday_factor[weekday[rows]])[:, None] * (
                ss.hour_factor[local_hour[rows]][:, None] * np.array([d.weight for d in doors])[None, :]
            )
            keys = np.array([d.key for d in doors], np.uint64)[None, :]
            noise_h = hash_keys(self.seed, Stream.DOOR_NOISE, keys, hours[rows, None])
            noise_z = normal(noise_h)
            is_anomaly = uniform(hash_keys(self.seed, Stream.DOOR_ANOMALY, keys, hours[rows, None])) < m.anomaly_rate
            is_anomaly &= ~day_off[rows, None]
            expected = np.where(is_anomaly, typical * m.anomaly_factor, typical * surge[rows, None])
            if m.burst_day_rate > 0 or m.dip_day_rate > 0:
                expected = expected * burst[rows]
            expected = np.where(day_off[rows, None], 0.0, expected)
            if m.noise == "normal":  # the original: rint(expected x (1 + cv N(0, 1)))
                counts[rows] = np.rint(np.maximum(expected * (1.0 + m.noise_cv * noise_z), 0.0))
            else:  # gamma-Poisson: a factor per door-hour and one per store-day, each of mean 1
                day_z = normal(hash_keys(self.seed, Stream.STORE_DAY, ss.key, local_day[rows]))
                rate = expected * gamma_factor(noise_z, st.dispersion) * gamma_factor(day_z, st.day_dispersion)[:, None]
                counts[rows] = poisson(rehash(noise_h, Stream.DOOR_COUNT), rate)
            anomaly[rows] = is_anomaly

        failures = self.failures(ss, doors, h0, h1)
        for col, s, e in failures:
            failed[max(s, hours[0]) - hours[0] : min(e, h1) - hours[0], col] = True
        counts[failed] = np.nan
        anomaly &= ~failed
        return Grid(hours, is_open, local_day, surge, day_off, burst, counts, anomaly, failed, failures)

    # -- readings ------------------------------------------------------------------------

    def select(self, store: str | None = None, sensor_id: int | None = None) -> list[tuple[StoreSim, list[DoorSensor]]]:
        """The (store, doors) pairs a request covers, in fleet order."""
        chosen = []
        for ss in self.stores:
            if store is not None and ss.store.name != store:
                continue
            doors = list(ss.doors) if sensor_id is None else [ss.doors[sensor_id]]
            chosen.append((ss, doors))
        return chosen

    def row_count(self, h0: int, h1: int, selection: list[tuple[StoreSim, list[DoorSensor]]]) -> int:
        return sum(len(doors) * max(0, h1 - max(h0, ss.opened_hour)) for ss, doors in selection)

    def readings(self, h0: int, h1: int, selection: list[tuple[StoreSim, list[DoorSensor]]]) -> pa.Table:
        """All rows for hours [h0, h1), ordered by ts, then fleet store order, then sensor_id."""
        n_h = max(h1 - h0, 0)
        names = [ss.store.name for ss, doors in selection for _ in doors]
        sensor_ids = np.array([d.sensor_id for _, doors in selection for d in doors], np.int32)
        counts = np.zeros((n_h, len(names)), np.int32)
        failed = np.zeros((n_h, len(names)), bool)
        first_row = np.zeros(len(names), np.int64)  # rows before a store opened do not exist
        col = 0
        for ss, doors in selection:
            g = self.grid(ss, h0, h1, doors)
            offset = g.hours[0] - h0 if len(g.hours) else n_h
            counts[offset:, col : col + len(doors)] = np.nan_to_num(g.counts)
            failed[offset:, col : col + len(doors)] = g.failed
            first_row[col : col + len(doors)] = offset
            col += len(doors)
        hours = h0 + np.arange(n_h, dtype=np.int64)
        if not first_row.any():  # every store open throughout: the grid's rows are all there
            ts, stores = np.repeat(hours, len(names)), tile_names(names, n_h)
            sensors, values, mask = np.tile(sensor_ids, n_h), counts.ravel(), failed.ravel()
        else:
            rows, cols = np.nonzero(np.arange(n_h)[:, None] >= first_row[None, :])
            ts, stores = hours[rows], repeat_names(cols, names)
            sensors, values, mask = sensor_ids[cols], counts[rows, cols], failed[rows, cols]
        return pa.Table.from_arrays(
            [
                pa.array(ts * US_PER_HOUR, DOOR_READINGS.field("ts").type),
                stores,
                pa.array(sensors),
                pa.array(values, mask=mask),
            ],
            schema=DOOR_READINGS,
        )

    def reading_chunks(
        self, h0: int, h1: int, selection: list[tuple[StoreSim, list[DoorSensor]]], chunk_rows: int
    ) -> Iterator[pa.Table]:
        """Readings for [h0, h1) in tables of about chunk_rows rows, so memory stays flat."""
        width = max(1, sum(len(doors) for _, doors in selection))
        step = max(1, chunk_rows // width)
        for start in range(h0, h1, step):
            yield self.readings(start, min(start + step, h1), selection)

    # -- ground truth --------------------------------------------------------------------

    def events(self, h0: int, h1: int, chunk_hours: int = 24 * 92) -> pa.Table:
        """Every injected door event that overlaps [h0, h1)."""
        cols: dict[str, list] = {k: [] for k in ("kind", "id", "start", "end", "type", "level")}
        cols.update({"store": [], "sensor_id": [], "magnitude": []})

        def add(ident: str, start: int, end: int, kind: str, level: str, store: str, sensor, magnitude) -> None:
            for k, v in zip(
                ("kind", "id", "start", "end", "type", "level", "store", "sensor_id", "magnitude"),
                ("doors", ident, start * US_PER_HOUR, end * US_PER_HOUR, kind, level, store, sensor, magnitude),
                strict=True,
            ):
                cols[k].append(v)

        for ss in self.stores:
            name = ss.store.name
            for col, s, e in self.failures(ss, list(ss.doors), h0, h1):
                add(f"{name}/{col}", s, e, "failure", "failed", name, col, None)
            for door in ss.doors:
                for fitted in door.installed_hours[1:]:
                    if h0 <= fitted < h1:
                        add(f"{name}/{door.sensor_id}", int(fitted), int(fitted) + 1, "replacement", "info", name,
                            door.sensor_id, None)  # fmt: skip
            ramp = int(self.model.expansion_ramp_days * 24)
            for start, gain in zip(ss.expansion_hours.tolist(), ss.expansion_gains.tolist(), strict=True):
                if start < h1 and start + ramp > h0:
                    add(name, start, start + ramp, "expansion", "info", name, None, gain)
            surges: list[tuple[int, int, float]] = []
            days_off: list[tuple[int, int, float]] = []
            bursts: list[list[tuple[int, int, float]]] = [[] for _ in ss.doors]
            for c0 in range(h0, h1, chunk_hours):
                g = self.grid(ss, c0, min(c0 + chunk_hours, h1), list(ss.doors))
                for r, c in zip(*np.nonzero(g.anomaly), strict=True):
                    hour = int(g.hours[r])
                    add(f"{name}/{c}", hour, hour + 1, "anomaly", "low", name, int(c), self.model.anomaly_factor)
                _extend_runs(surges, g.hours, g.surge, g.surge > 1.0)
                _extend_runs(days_off, g.hours, np.zeros(len(g.hours)), g.day_off)
                for c, runs in enumerate(bursts):  # a loop over doors, not readings
                    seen = (g.burst[:, c] != 1.0) & ~g.failed[:, c] & ~g.day_off
                    _extend_runs(runs, g.hours, g.burst[:, c], seen)
            for s, e, factor in surges:
                add(name, s, e, "surge", "high", name, None, factor)
            for s, e, _ in days_off:
                add(name, s, e, "day_off", "low", name, None, 0.0)
            for c, runs in enumerate(bursts):
                for s, e, factor in runs:
                    kind, level = ("burst", "high") if factor > 1.0 else ("dip", "low")
                    add(f"{name}/{c}", s, e, kind, level, name, c, factor)
        return events_table(cols)


def _extend_runs(runs: list[tuple[int, int, float]], hours: np.ndarray, value: np.ndarray, where: np.ndarray) -> None:
    """Append maximal runs of consecutive hours (where true) with the same value; a run continues
    one from the previous chunk."""
    for i in np.nonzero(where)[0].tolist():
        hour, v = int(hours[i]), float(value[i])
        if runs and runs[-1][1] == hour and runs[-1][2] == v:
            runs[-1] = (runs[-1][0], hour + 1, v)
        else:
            runs.append((hour, hour + 1, v))


def _profile(values: tuple[float, ...], n: int) -> np.ndarray:
    """A profile normalised to mean 1, resampled to n points when the store's hours or days differ."""
    v = np.array(values, np.float64)
    if len(v) != n:
        v = np.interp(np.linspace(0, len(v) - 1, n), np.arange(len(v)), v) if n > 1 else v[:1] * 0 + 1
    return v / np.mean(v)


def _day_span_draws(
    h: np.ndarray, store: Store, rate: float, hours: tuple[int, int], size: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A day's span within the store's opening hours, from h[0..3]: whether it happens, its first
    local hour, its length, its size."""
    lo_h, hi_h = hours
    span = store.close_hour - store.open_hour
    length = np.minimum(lo_h + (uniform(h[1]) * (hi_h - lo_h + 1)).astype(np.int64), span)
    first = store.open_hour + (uniform(h[2]) * (span - length + 1)).astype(np.int64)
    return uniform(h[0]) < rate, first, length, between(uniform(h[3]), size)


def _day_spans(
    h: np.ndarray, store: Store, local_hour: np.ndarray, rate: float, hours: tuple[int, int], size: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each hour is in its day's span (h drawn per hour), and the span's size."""
    happens, first, length, factor = _day_span_draws(h, store, rate, hours, size)
    return happens & (local_hour >= first) & (local_hour < first + length), factor
