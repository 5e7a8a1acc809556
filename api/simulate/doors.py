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
import pyarrow.compute as pc

from api.fleet import DoorModel, Fleet, Store
from api.simulate.columns import repeat_names, tile_runs
from api.simulate.rng import (
    Stream,
    between,
    gamma_factor,
    hash_keys,
    hash_on,
    name_key,
    normal,
    poisson,
    rehash,
    uniform,
)
from contract.schemas import DOOR_READINGS, EVENTS, events_table

HOUR_S = 3600
HOURS_PER_YEAR = 8766.0
US_PER_HOUR = HOUR_S * 1_000_000
# Schedules (expansions, sensor replacements) are laid out this far after opening.
_SCHEDULE_STEPS = 200
_FEW_HOURS = 48
# The per-door draws, whose (seed, stream, door key) prefix each store keeps.
_DOOR_STREAMS = (Stream.DOOR_NOISE, Stream.DOOR_ANOMALY, Stream.DOOR_FAILURE, Stream.DOOR_BURST, Stream.DOOR_DIP)


# A door's failure draws are made over at most this many door-days at once, so that a long span
# of a wide fleet stays within a few MB.
_FAILURE_BLOCK_CELLS = 1 << 18
# Sensor replacements are kept up to this hour (the year 2400): the API serves no later hour (its
# clock stops by 2200, plus API_MAX_AHEAD_DAYS), and a wide fleet keeps ~100, not 201, a door.
_INSTALLED_UNTIL_HOUR = int(dt.datetime(2400, 1, 1, tzinfo=dt.UTC).timestamp()) // HOUR_S

# Failure chains (door id, start hour, end hour), sorted by door, then start.
Failures = tuple[np.ndarray, np.ndarray, np.ndarray]
# The doors a request covers: each store with the ids of its doors, ascending.
Selection = list[tuple["StoreSim", np.ndarray]]


@dataclass(frozen=True)
class StoreSim:
    store: Store
    key: int
    opened_hour: int
    door_keys: np.ndarray  # (D,) uint64: a door's random key
    weights: np.ndarray  # (D,) a door's share of the store's traffic, mean 1
    installed: np.ndarray  # (D, K) hour indices at which a new sensor was fitted, ascending per door
    prefixes: dict[int, np.ndarray]  # stream -> (D,) hash_keys(seed, stream, door key), mixed once at start
    expansion_hours: np.ndarray
    expansion_gains: np.ndarray
    weekday_factor: np.ndarray  # (7,) mean 1 over the open weekdays
    hour_factor: np.ndarray  # (24,) mean 1 over the open hours, 0 outside
    open_weekday: np.ndarray  # (7,) bool

    @property
    def n_doors(self) -> int:
        return len(self.door_keys)


@dataclass
class Grid:
    """One store over a run of hours (rows) and some of its doors (columns)."""

    hours: np.ndarray  # (H,)
    is_open: np.ndarray  # (H,)
    local_day: np.ndarray  # (H,) days since 1970-01-01 in the store's calendar
    surge: np.ndarray  # (H,) multiplier, 1 outside surges
    day_off: np.ndarray  # (H,) bool: an open hour of a day the store stays closed
    burst: np.ndarray  # (H, D) multiplier of a door's bursts (> 1) and dips (< 1), 1 elsewhere
    counts: np.ndarray  # (H, D) float, NaN where the sensor failed (zeros when not asked for)
    anomaly: np.ndarray  # (H, D) bool
    failed: np.ndarray  # (H, D) bool


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
        self._by_name = {ss.store.name: ss for ss in self.stores}

    # -- static, seed-derived structure -------------------------------------------------

    def _store_sim(self, store: Store) -> StoreSim:
        """A store's schedules and doors, drawn for all its doors at once (linear in the doors)."""
        m, seed = self.model, self.seed
        key = name_key("store", store.name)
        opened = hour_index(store)
        steps = np.arange(_SCHEDULE_STEPS)
        gaps = between(uniform(hash_keys(seed, Stream.STORE_EXPANSION, key, steps, 0)), m.expansion_every_years)
        gains = between(uniform(hash_keys(seed, Stream.STORE_EXPANSION, key, steps, 1)), m.expansion_gain)
        expansion_hours = opened + np.cumsum(gaps * HOURS_PER_YEAR).astype(np.int64)
        keys = np.array([name_key("door", store.name, i) for i in range(store.doors)], np.uint64)
        weights = np.exp(0.5 * normal(hash_keys(seed, Stream.DOOR_WEIGHT, keys, 0)))
        underused = uniform(hash_keys(seed, Stream.DOOR_WEIGHT, keys, 1)) < m.underused_rate
        weights = np.where(underused & (store.doors > 1), weights * m.underused_share, weights)
        weights = weights / weights.mean()
        lifetimes = between(uniform(hash_keys(seed, Stream.DOOR_REPLACE, keys[:, None], steps)), m.replace_every_years)
        ages = np.cumsum(lifetimes * HOURS_PER_YEAR, axis=1).astype(np.int64)
        installed = opened + np.concatenate([np.zeros((store.doors, 1), np.int64), ages], axis=1)
        kept = max(1, int((installed <= _INSTALLED_UNTIL_HOUR).sum(axis=1).max()))
        open_days = [d for d in range(7) if d not in store.closed_weekdays]
        weekday = np.ones(7)
        weekday[open_days] = _profile(m.weekday_profile, len(open_days))
        hourly = np.zeros(24)
        hourly[store.open_hour : store.close_hour] = _profile(m.hour_profile, store.close_hour - store.open_hour)
        open_weekday = np.isin(np.arange(7), open_days)
        installed = np.ascontiguousarray(installed[:, :kept])
        prefixes = {stream: hash_keys(seed, stream, keys) for stream in _DOOR_STREAMS}
        return StoreSim(store, key, opened, keys, weights, installed, prefixes, expansion_hours, gains, weekday,
                        hourly, open_weekday)  # fmt: skip

    def store_sim(self, name: str) -> StoreSim | None:
        return self._by_name.get(name)

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

    def _bursts(self, ss: StoreSim, doors: np.ndarray, local_day: np.ndarray, local_hour: np.ndarray) -> np.ndarray:
        """(H, D) multipliers: a door's bursts (a group, a promotion) and dips (its entrance closed).

        Drawn per door-day; the few door-days with one are expanded to their hours at once."""
        m = self.model
        out = np.ones((len(local_day), len(doors)))
        if not len(doors) or (m.burst_day_rate <= 0 and m.dip_day_rate <= 0):
            return out
        days = np.unique(local_day)  # local_day is ascending
        day_lo, day_hi = np.searchsorted(local_day, days, "left"), np.searchsorted(local_day, days, "right")
        for stream, rate, hours, factor in (
            (Stream.DOOR_BURST, m.burst_day_rate, m.burst_hours, m.burst_factor),
            (Stream.DOOR_DIP, m.dip_day_rate, m.dip_hours, m.dip_factor),
        ):
            if rate <= 0:
                continue
            h_day = hash_on(ss.prefixes[stream][doors][None, :], days[:, None])
            d, c = np.nonzero(uniform(hash_on(h_day, 0)) < rate)
            if not len(d):
                continue
            h = np.stack([hash_on(h_day[d, c], k) for k in range(4)])
            _, first, length, size = _day_span_draws(h, ss.store, rate, hours, factor)
            rows, event = _expand(day_lo[d], day_hi[d])
            inside = (local_hour[rows] >= first[event]) & (local_hour[rows] < first[event] + length[event])
            out[rows[inside], c[event[inside]]] *= size[event[inside]]  # one event a door-day: no repeats
        return out

    def _day_off(self, ss: StoreSim, local_day: np.ndarray) -> np.ndarray:
        """Whether the store stays closed all day (a holiday, a strike), by local day."""
        rate = self.model.day_off_rate
        if rate <= 0:
            return np.zeros(len(local_day), bool)
        return uniform(hash_keys(self.seed, Stream.STORE_DAY_OFF, ss.key, local_day)) < rate

    # -- sensor failures -----------------------------------------------------------------

    def failures(self, ss: StoreSim, doors: np.ndarray, h0: int, h1: int) -> Failures:
        """The failure chains (merged overlapping failures) of some doors that overlap [h0, h1).

        A chain can reach back further than one failure lasts. Each door decides its own
        look-back: only the doors whose chain overlapping [h0, h1) starts near the edge of
        the days drawn are drawn again further back, so the chains do not depend on where a
        request starts, and the cost does not depend on the other doors."""
        m = self.model
        doors = np.asarray(doors, np.int64)
        found: list[Failures] = []
        last_day, lookback = (h1 - 1) // 24, m.failure_hours[1]
        while len(doors) and h1 > h0:
            first_day = max(h0 - lookback, ss.opened_hour) // 24
            door, start, end = _chains(*self._failure_draws(ss, doors, first_day, last_day))
            overlaps = (end > h0) & (start < h1)
            unsure = np.zeros(0, np.int64)
            if first_day * 24 > ss.opened_hour:  # a failure before first_day may still reach these chains
                unsure = np.unique(door[overlaps & (start < first_day * 24 + m.failure_hours[1])])
            sure = overlaps & ~np.isin(door, unsure)
            found.append((door[sure], start[sure], end[sure]))
            doors, lookback = unsure, lookback * 2
        if not found:
            return _no_failures()
        door, start, end = (np.concatenate(parts) for parts in zip(*found, strict=True))
        order = np.lexsort((start, door))
        return door[order], start[order], end[order]

    def _failure_draws(self, ss: StoreSim, doors: np.ndarray, first_day: int, last_day: int) -> Failures:
        """Every single failure (door, start, end) starting on days [first_day, last_day], drawn in
        blocks of days so that memory stays small, and the age of a sensor looked up only for the
        door-days that could fail at its oldest."""
        m = self.model
        if last_day < first_day or not len(doors) or m.failure_base <= 0:
            return _no_failures()
        prefix = ss.prefixes[Stream.DOOR_FAILURE][doors][None, :]
        log_bounds = (np.log(m.failure_hours[0]), np.log(m.failure_hours[1]))
        step = max(1, _FAILURE_BLOCK_CELLS // len(doors))
        parts = []
        for d0 in range(first_day, last_day + 1, step):
            days = np.arange(d0, min(d0 + step, last_day + 1), dtype=np.int64)
            h_day = hash_on(prefix, days[:, None])
            u = uniform(hash_on(h_day, 0))
            oldest = np.maximum(days * 24 - ss.opened_hour, 0) / HOURS_PER_YEAR  # a sensor fitted at opening
            p_max = m.failure_base * np.maximum((1.0 + oldest) ** m.failure_age_power, 1.0) * (1 + 1e-9)
            r, c = np.nonzero((u < p_max[:, None]) & (days[:, None] * 24 >= ss.opened_hour))
            day_start = days[r] * 24
            age_years = np.maximum(day_start - self._fitted(ss, doors[c], day_start), 0) / HOURS_PER_YEAR
            fails = u[r, c] < m.failure_base * (1.0 + age_years) ** m.failure_age_power
            r, c, day_start, h = r[fails], c[fails], day_start[fails], h_day[r[fails], c[fails]]
            start = day_start + (uniform(hash_on(h, 1)) * 24).astype(np.int64)
            end = start + np.exp(between(uniform(hash_on(h, 2)), log_bounds)).astype(np.int64)
            parts.append((doors[c], start, end))
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    @staticmethod
    def _fitted(ss: StoreSim, doors: np.ndarray, at: np.ndarray) -> np.ndarray:
        """The hour each door's current sensor was fitted, at hours `at` (at or after opening)."""
        installed = ss.installed[doors]
        index = np.maximum((installed <= at[:, None]).sum(axis=1) - 1, 0)
        return installed[np.arange(len(doors)), index]

    # -- the grid ------------------------------------------------------------------------

    def grid(
        self, ss: StoreSim, h0: int, h1: int, doors: np.ndarray, failures: Failures | None = None, counts: bool = True
    ) -> Grid:
        """Readings and injected events of some doors of one store over hours [h0, h1).

        `failures`: the doors' chains over at least [h0, h1), when the caller has them already
        (drawn once for a whole request, not once per chunk); `counts`: False for the events only."""
        m = self.model
        doors = np.asarray(doors, np.int64)
        hours = np.arange(max(h0, ss.opened_hour), max(h1, ss.opened_hour), dtype=np.int64)
        n_h, n_d = len(hours), len(doors)
        grid_counts = np.zeros((n_h, n_d))
        anomaly = np.zeros((n_h, n_d), bool)
        if n_h == 0:
            empty = np.zeros(0)
            flag = empty.astype(bool)
            return Grid(hours, flag, empty.astype(np.int64), empty, flag, grid_counts.copy(), grid_counts, anomaly,
                        anomaly.copy())  # fmt: skip
        local_day, local_hour, weekday = local_calendar(ss.store.timezone, hours)
        st = ss.store
        is_open = ss.open_weekday[weekday] & (local_hour >= st.open_hour) & (local_hour < st.close_hour)
        surge = self._surge(ss, local_day, local_hour, is_open)
        day_off = self._day_off(ss, local_day) & is_open
        burst = self._bursts(ss, doors, local_day, local_hour)
        burst[~is_open] = 1.0

        rows = np.nonzero(is_open)[0]
        if len(rows):
            anomaly_h = hash_on(ss.prefixes[Stream.DOOR_ANOMALY][doors][None, :], hours[rows, None])
            is_anomaly = uniform(anomaly_h) < m.anomaly_rate
            is_anomaly &= ~day_off[rows, None]
            anomaly[rows] = is_anomaly
            if counts:
                calendar = (hours[rows], local_day[rows], local_hour[rows], weekday[rows])
                events = (surge[rows], day_off[rows], burst[rows], is_anomaly)
                grid_counts[rows] = self._counts(ss, doors, calendar, *events)

        if failures is None:
            failures = self.failures(ss, doors, h0, h1)
        failed = _failed_cells(failures, doors, hours[0], h1)
        grid_counts[failed] = np.nan
        anomaly &= ~failed
        return Grid(hours, is_open, local_day, surge, day_off, burst, grid_counts, anomaly, failed)

    def _counts(
        self, ss: StoreSim, doors: np.ndarray, calendar: tuple[np.ndarray, ...], surge: np.ndarray,
        day_off: np.ndarray, burst: np.ndarray, is_anomaly: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """The counts of some doors over open hours (rows: hour, local day, local hour, weekday),
        before failures."""
        m, st = self.model, ss.store
        hours, local_day, local_hour, weekday = calendar
        typical = (self._level(ss, hours) * ss.weekday_factor[weekday])[:, None] * (
            ss.hour_factor[local_hour][:, None] * ss.weights[doors][None, :]
        )
        noise_h = hash_on(ss.prefixes[Stream.DOOR_NOISE][doors][None, :], hours[:, None])
        noise_z = normal(noise_h)
        expected = np.where(is_anomaly, typical * m.anomaly_factor, typical * surge[:, None])
        if m.burst_day_rate > 0 or m.dip_day_rate > 0:
            expected = expected * burst
        expected = np.where(day_off[:, None], 0.0, expected)
        if m.noise == "normal":  # the original: rint(expected x (1 + cv N(0, 1)))
            return np.rint(np.maximum(expected * (1.0 + m.noise_cv * noise_z), 0.0))
        # gamma-Poisson: a factor per door-hour and one per store-day, each of mean 1
        day_z = normal(hash_keys(self.seed, Stream.STORE_DAY, ss.key, local_day))
        rate = expected * gamma_factor(noise_z, st.dispersion) * gamma_factor(day_z, st.day_dispersion)[:, None]
        return poisson(rehash(noise_h, Stream.DOOR_COUNT), rate)

    # -- readings ------------------------------------------------------------------------

    def select(self, store: str | None = None, sensor_id: int | None = None) -> Selection:
        """The (store, door ids) pairs a request covers, in fleet order."""
        chosen = []
        for ss in self.stores:
            if store is not None and ss.store.name != store:
                continue
            doors = np.arange(ss.n_doors) if sensor_id is None else np.array([sensor_id])
            chosen.append((ss, doors))
        return chosen

    def row_count(self, h0: int, h1: int, selection: Selection) -> int:
        return sum(len(doors) * max(0, h1 - max(h0, ss.opened_hour)) for ss, doors in selection)

    def readings(self, h0: int, h1: int, selection: Selection, failures: list[Failures] | None = None) -> pa.Table:
        """All rows for hours [h0, h1), ordered by ts, then fleet store order, then sensor_id.

        `failures`: each selected store's chains over at least [h0, h1), if drawn already."""
        n_h = max(h1 - h0, 0)
        width = sum(len(doors) for _, doors in selection)
        names = [ss.store.name for ss, _ in selection]
        widths = [len(doors) for _, doors in selection]
        sensor_ids = np.concatenate([doors for _, doors in selection] or [np.zeros(0)]).astype(np.int32)
        counts = np.zeros((n_h, width), np.int32)
        failed = np.zeros((n_h, width), bool)
        first_row = np.zeros(width, np.int64)  # rows before a store opened do not exist
        col = 0
        for i, (ss, doors) in enumerate(selection):
            g = self.grid(ss, h0, h1, doors, None if failures is None else failures[i])
            offset = g.hours[0] - h0 if len(g.hours) else n_h
            counts[offset:, col : col + len(doors)] = np.nan_to_num(g.counts)
            failed[offset:, col : col + len(doors)] = g.failed
            first_row[col : col + len(doors)] = offset
            col += len(doors)
        hours = h0 + np.arange(n_h, dtype=np.int64)
        if not first_row.any():  # every store open throughout: the grid's rows are all there
            ts, stores = np.repeat(hours, width), tile_runs(names, widths, n_h)
            sensors, values, mask = np.tile(sensor_ids, n_h), counts.ravel(), failed.ravel()
        else:
            rows, cols = np.nonzero(np.arange(n_h)[:, None] >= first_row[None, :])
            ts, stores = hours[rows], repeat_names(np.repeat(np.arange(len(names)), widths)[cols], names)
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

    def reading_chunks(self, h0: int, h1: int, selection: Selection, chunk_rows: int) -> Iterator[pa.Table]:
        """Readings for [h0, h1) in tables of at most about chunk_rows rows, so memory stays flat
        whatever the fleet's width: several hours of a narrow fleet, or one hour of a wide one
        split by doors (its rows stay in order). The failures are drawn once for the request."""
        failures = [self.failures(ss, doors, h0, h1) for ss, doors in selection]
        width = max(1, sum(len(doors) for _, doors in selection))
        if width <= chunk_rows:
            step = chunk_rows // width
            for start in range(h0, h1, step):
                yield self.readings(start, min(start + step, h1), selection, failures)
            return
        pieces = [
            ([(ss, doors[i : i + chunk_rows])], [_only(f, doors[i : i + chunk_rows])])
            for (ss, doors), f in zip(selection, failures, strict=True)
            for i in range(0, len(doors), chunk_rows)
        ]
        for hour in range(h0, h1):
            for piece, piece_failures in pieces:
                yield self.readings(hour, hour + 1, piece, piece_failures)

    # -- ground truth --------------------------------------------------------------------

    def events(self, h0: int, h1: int, chunk_rows: int = 262_144) -> pa.Table:
        """Every injected door event that overlaps [h0, h1), the grids drawn in chunks of about
        chunk_rows door-hours."""
        tables = []
        for ss in self.stores:
            tables += self._store_events(ss, h0, h1, chunk_rows)
        return pa.concat_tables(tables) if tables else events_table({"kind": []})

    def _store_events(self, ss: StoreSim, h0: int, h1: int, chunk_rows: int) -> list[pa.Table]:
        m, name = self.model, ss.store.name
        doors = np.arange(ss.n_doors)
        failures = self.failures(ss, doors, h0, h1)
        out = [_events(name, "failure", "failed", failures[1], failures[2], failures[0], None)]
        later = ss.installed[:, 1:]
        door, k = np.nonzero((later >= h0) & (later < h1))
        fitted = later[door, k]
        out.append(_events(name, "replacement", "info", fitted, fitted + 1, door, None))
        ramp = int(m.expansion_ramp_days * 24)
        grow = (ss.expansion_hours < h1) & (ss.expansion_hours + ramp > h0)
        starts = ss.expansion_hours[grow]
        out.append(_events(name, "expansion", "info", starts, starts + ramp, None, ss.expansion_gains[grow]))
        hours, surge, day_off, anomalies, bursts = [], [], [], [], []
        step = max(1, chunk_rows // ss.n_doors)
        for c0 in range(h0, h1, step):
            g = self.grid(ss, c0, min(c0 + step, h1), doors, failures, counts=False)
            hours.append(g.hours)
            surge.append(g.surge)
            day_off.append(g.day_off)
            r, c = np.nonzero(g.anomaly)
            anomalies.append((g.hours[r], c))
            r, c = np.nonzero((g.burst != 1.0) & ~g.failed & ~g.day_off[:, None])
            bursts.append((c, g.hours[r], g.burst[r, c]))
        if hours:
            at, door = (np.concatenate(p) for p in zip(*anomalies, strict=True))
            out.append(_events(name, "anomaly", "low", at, at + 1, door, np.full(len(at), m.anomaly_factor)))
            hours, surge, day_off = np.concatenate(hours), np.concatenate(surge), np.concatenate(day_off)
            _, s, e, v = _runs(np.zeros(len(hours), np.int64), hours, surge, surge > 1.0)
            out.append(_events(name, "surge", "high", s, e, None, v))
            _, s, e, v = _runs(np.zeros(len(hours), np.int64), hours, np.zeros(len(hours)), day_off)
            out.append(_events(name, "day_off", "low", s, e, None, v))
            door, at, value = (np.concatenate(p) for p in zip(*bursts, strict=True))
            order = np.lexsort((at, door))
            door, s, e, v = _runs(door[order], at[order], value[order], np.ones(len(door), bool))
            high = v > 1.0
            out.append(_events(name, "burst", "high", s[high], e[high], door[high], v[high]))
            out.append(_events(name, "dip", "low", s[~high], e[~high], door[~high], v[~high]))
        return out


def _no_failures() -> Failures:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)


def _chains(door: np.ndarray, start: np.ndarray, end: np.ndarray) -> Failures:
    """Overlapping failures of a door merged into chains, for all doors at once: a running maximum
    of the ends within each door (the door id in the high bits keeps the doors apart)."""
    if not len(door):
        return _no_failures()
    order = np.lexsort((start, door))
    door, start, end = door[order], start[order], end[order]
    high = door << 32  # hours stay below 2**31
    reach = np.maximum.accumulate(high + end) - high
    new = np.ones(len(door), bool)
    new[1:] = (door[1:] != door[:-1]) | (start[1:] > reach[:-1])
    first = np.nonzero(new)[0]
    last = np.append(first[1:] - 1, len(door) - 1)
    return door[first], start[first], reach[last]


def _only(failures: Failures, doors: np.ndarray) -> Failures:
    """The chains of some of the doors."""
    keep = np.isin(failures[0], doors)
    return failures[0][keep], failures[1][keep], failures[2][keep]


def _expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every index of the ranges [lo, hi), with the range each comes from."""
    lengths = hi - lo
    which = np.repeat(np.arange(len(lo)), lengths)
    ends = np.cumsum(lengths)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - lengths - lo, lengths), which


def _failed_cells(failures: Failures, doors: np.ndarray, first_hour: int, h1: int) -> np.ndarray:
    """(H, D) bool: the hours [first_hour, h1) each of `doors` spends failed."""
    failed = np.zeros((h1 - first_hour, len(doors)), bool)
    door, start, end = failures
    col = np.searchsorted(doors, door)
    known = col < len(doors)
    known[known] = doors[col[known]] == door[known]
    lo, hi = np.maximum(start, first_hour) - first_hour, np.minimum(end, h1) - first_hour
    keep = known & (hi > lo)
    rows, which = _expand(lo[keep], hi[keep])
    failed[rows, col[keep][which]] = True
    return failed


def _runs(
    key: np.ndarray, hours: np.ndarray, value: np.ndarray, where: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs (key, start, end, value) of consecutive hours of one key with the same value,
    over the cells where `where`; the cells ordered by key, then hour."""
    key, hours, value = key[where], hours[where], value[where]
    if not len(key):
        return key, hours, hours, value
    new = np.ones(len(key), bool)
    new[1:] = (key[1:] != key[:-1]) | (hours[1:] != hours[:-1] + 1) | (value[1:] != value[:-1])
    first = np.nonzero(new)[0]
    last = np.append(first[1:] - 1, len(key) - 1)
    return key[first], hours[first], hours[last] + 1, value[first]


def _events(
    store: str, kind: str, level: str, start: np.ndarray, end: np.ndarray, door: np.ndarray | None,
    magnitude: np.ndarray | None,
) -> pa.Table:  # fmt: skip
    """Door events of one store as an EVENTS table: a store's own when door is None."""
    n = len(start)
    if door is None:
        ids, sensors = pa.array([store] * n, pa.string()), pa.nulls(n, pa.int32())
    else:
        sensors = pa.array(np.asarray(door, np.int32))
        ids = pc.binary_join_element_wise(store, pc.cast(sensors, pa.string()), "/")
    columns = {
        "kind": pa.array(["doors"] * n, pa.string()),
        "id": ids,
        "start": pa.array(np.asarray(start, np.int64) * US_PER_HOUR, EVENTS.field("start").type),
        "end": pa.array(np.asarray(end, np.int64) * US_PER_HOUR, EVENTS.field("end").type),
        "type": pa.array([kind] * n, pa.string()),
        "level": pa.array([level] * n, pa.string()),
        "store": pa.array([store] * n, pa.string()),
        "sensor_id": sensors,
        "magnitude": pa.nulls(n, pa.float64()) if magnitude is None else pa.array(magnitude, pa.float64()),
    }
    return pa.Table.from_arrays([columns.get(f.name, pa.nulls(n, f.type)) for f in EVENTS], schema=EVENTS)


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
