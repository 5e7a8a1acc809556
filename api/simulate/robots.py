"""8-axis industrial robots: one sample every few seconds, a pure function of (seed, robot, time).

Time is counted in samples since the Unix epoch (`n = unix seconds // sample_seconds`).
Each robot repeats a program cycle; an axis moves during `active_samples` of every
`cycle_samples` (at its own phase) and reads exactly 0 while it rests. While it
moves it reads `mu + sigma * (z + offset) + wear`, where

* mu, sigma are chosen so that the duty cycle gives the fleet file's daily mean and
  standard deviation (means below stds come from the resting samples);
* z is normal noise, standardised over groups of `_GROUP_CYCLES` cycles so that a
  day's mean and std match the reference closely (plain i.i.d. noise would miss
  the 5 % target on small-mean axes by chance alone);
* offset is an injected anomaly block: ALERT (2-4 sigma) or ERROR (> 4 sigma);
* wear is a slow linear drift in some axes, reset by maintenance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from api.fleet import Fleet, Robot, RobotModel
from api.simulate.columns import repeat_names
from api.simulate.rng import Stream, between, hash_keys, name_key, normal, uniform
from contract.schemas import AXES, ROBOT_READINGS, events_table

_GROUP_CYCLES = 20
_WEAR_EPISODES = 2000  # laid out from installation; far beyond any date served
_US = 1_000_000


@dataclass(frozen=True)
class AxisSim:
    index: int
    name: str
    mu: float  # mean while moving
    sigma: float  # noise while moving: the unit of anomaly and wear sizes
    phase: int
    wear_onsets: np.ndarray  # sample indices; empty when the axis does not wear
    wear_ends: np.ndarray  # maintenance: wear back to 0
    wear_sigmas: np.ndarray  # drift reached at maintenance, in sigmas


@dataclass(frozen=True)
class RobotSim:
    robot: Robot
    key: int
    installed: int  # first sample index
    axes: tuple[AxisSim, ...]


@dataclass(frozen=True)
class Blocks:
    """Anomaly blocks of one robot: at most one per hour slot."""

    start: np.ndarray
    end: np.ndarray
    axis: np.ndarray
    sigmas: np.ndarray  # signed offset in sigmas
    is_error: np.ndarray


def active_moments(mean: float, std: float, duty: float) -> tuple[float, float]:
    """(mu, sigma) of the moving samples that give `mean` and `std` over the whole cycle."""
    mu = mean / duty
    second_moment = (std**2 + mean**2) / duty
    return mu, float(np.sqrt(second_moment - mu**2))


class RobotSimulator:
    def __init__(self, fleet: Fleet) -> None:
        self.seed = fleet.seed
        self.model: RobotModel = fleet.robots
        m = self.model
        self.samples_per_slot = max(1, 3600 // m.sample_seconds)
        self.samples_per_day = 86400 / m.sample_seconds
        self.robots = tuple(self._robot_sim(r) for r in fleet.units)

    def _robot_sim(self, robot: Robot) -> RobotSim:
        m, seed = self.model, self.seed
        key = name_key("robot", robot.id)
        installed = int(robot.installed_at.timestamp()) // m.sample_seconds
        axes = []
        steps = np.arange(_WEAR_EPISODES)
        for i, a in enumerate(m.axes):
            mu, sigma = active_moments(a.mean, a.std, m.duty)
            phase = int(hash_keys(seed, Stream.ROBOT_PHASE, key, i)[0] % np.uint64(m.cycle_samples))
            wears = uniform(hash_keys(seed, Stream.ROBOT_WEAR, key, i))[0] < m.wear_axis_rate
            if wears:
                h = hash_keys(seed, Stream.ROBOT_WEAR, key, i, steps, np.arange(3)[:, None])
                gap = between(uniform(h[0]), m.wear_gap_days) * self.samples_per_day
                length = between(uniform(h[1]), m.wear_days) * self.samples_per_day
                onsets = installed + np.cumsum(gap) + np.concatenate([[0], np.cumsum(length)[:-1]])
                onsets = onsets.astype(np.int64)
                ends = onsets + length.astype(np.int64)
                sigmas = between(uniform(h[2]), m.wear_sigmas_at_maintenance)
            else:
                onsets = ends = np.zeros(0, np.int64)
                sigmas = np.zeros(0)
            axes.append(AxisSim(i, a.name, mu, sigma, phase, onsets, ends, sigmas))
        return RobotSim(robot, key, installed, tuple(axes))

    def select(self, robot_id: str | None = None) -> list[RobotSim]:
        return [r for r in self.robots if robot_id is None or r.robot.id == robot_id]

    # -- the signal ----------------------------------------------------------------------

    def blocks(self, rs: RobotSim, n0: int, n1: int) -> Blocks:
        """Anomaly blocks of a robot that start in the hour slots overlapping [n0, n1)."""
        m, per = self.model, self.samples_per_slot
        slots = np.arange(n0 // per, (max(n1, n0 + 1) - 1) // per + 1, dtype=np.int64)
        h = hash_keys(self.seed, Stream.ROBOT_BLOCK, rs.key, slots, np.arange(5)[:, None])
        p_error = m.error_blocks_per_day * per / self.samples_per_day
        p_alert = m.alert_blocks_per_day * per / self.samples_per_day
        u = uniform(h[0])
        is_error, is_alert = u < p_error, (u >= p_error) & (u < p_error + p_alert)
        lo, hi = m.block_samples
        length = np.minimum(lo + (uniform(h[1]) * (hi - lo + 1)).astype(np.int64), per)
        start = slots * per + (uniform(h[2]) * (per - length + 1)).astype(np.int64)
        size = np.where(is_error, between(uniform(h[3]), m.error_sigmas), between(uniform(h[3]), m.alert_sigmas))
        sign = np.where(uniform(h[4]) < 0.5, -1.0, 1.0)
        axis = (h[4] >> np.uint64(8)) % np.uint64(len(m.axes))
        keep = (is_error | is_alert) & (start >= rs.installed)
        return Blocks(start[keep], start[keep] + length[keep], axis[keep].astype(np.int64), (size * sign)[keep],
                      is_error[keep])  # fmt: skip

    def _noise(self, rs: RobotSim, axis: AxisSim, cycle: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Noise of the moving samples, standardised per group of cycles."""
        m = self.model
        group = cycle // _GROUP_CYCLES
        slot = (cycle % _GROUP_CYCLES) * m.active_samples + pos
        groups, where = np.unique(group, return_inverse=True)
        width = _GROUP_CYCLES * m.active_samples
        z = normal(hash_keys(self.seed, Stream.ROBOT_NOISE, rs.key, axis.index, groups[:, None], np.arange(width)))
        z = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)
        return z[where, slot]

    def wear(self, axis: AxisSim, n: np.ndarray) -> np.ndarray:
        """Drift in sigmas at samples n."""
        if len(axis.wear_onsets) == 0:
            return np.zeros(len(n))
        i = np.searchsorted(axis.wear_onsets, n, side="right") - 1
        ok = i >= 0
        i = np.maximum(i, 0)
        onset, end = axis.wear_onsets[i], axis.wear_ends[i]
        wearing = ok & (n < end)
        return np.where(wearing, axis.wear_sigmas[i] * (n - onset) / (end - onset), 0.0)

    def axis_values(self, rs: RobotSim, n: np.ndarray, blocks: Blocks | None = None) -> np.ndarray:
        """(len(n), axes) readings of one robot at sample indices n (all after installation)."""
        m = self.model
        blocks = blocks if blocks is not None else self.blocks(rs, int(n.min()), int(n.max()) + 1)
        out = np.zeros((len(n), len(rs.axes)))
        for axis in rs.axes:
            shifted = n - axis.phase
            cycle, pos = shifted // m.cycle_samples, shifted % m.cycle_samples
            moving = np.nonzero(pos < m.active_samples)[0]
            nm = n[moving]
            z = self._noise(rs, axis, cycle[moving], pos[moving])
            offset = np.zeros(len(nm))
            for b in np.nonzero(blocks.axis == axis.index)[0]:
                offset[(nm >= blocks.start[b]) & (nm < blocks.end[b])] = blocks.sigmas[b]
            out[moving, axis.index] = axis.mu + axis.sigma * (z + offset + self.wear(axis, nm))
        return out

    # -- readings ------------------------------------------------------------------------

    def row_count(self, n0: int, n1: int, robots: list[RobotSim]) -> int:
        return sum(max(0, n1 - max(n0, rs.installed)) for rs in robots)

    def readings(self, n0: int, n1: int, robots: list[RobotSim]) -> pa.Table:
        """Rows for samples [n0, n1), ordered by ts, then fleet robot order."""
        n = np.arange(n0, max(n0, n1), dtype=np.int64)
        values = np.zeros((len(n), len(robots), len(AXES)))
        exists = np.zeros((len(n), len(robots)), bool)
        for j, rs in enumerate(robots):
            live = n >= rs.installed
            if live.any():
                values[live, j, :] = self.axis_values(rs, n[live])
                exists[live, j] = True
        rows, cols = np.nonzero(exists)
        ts = (n0 + rows) * (self.model.sample_seconds * _US)
        arrays = [
            pa.array(ts, ROBOT_READINGS.field("ts").type),
            repeat_names(cols, [rs.robot.id for rs in robots]),
            *(pa.array(values[rows, cols, k]) for k in range(len(AXES))),
        ]
        return pa.Table.from_arrays(arrays, schema=ROBOT_READINGS)

    def reading_chunks(self, n0: int, n1: int, robots: list[RobotSim], chunk_rows: int) -> Iterator[pa.Table]:
        step = max(1, chunk_rows // max(1, len(robots)))
        for start in range(n0, n1, step):
            yield self.readings(start, min(start + step, n1), robots)

    # -- ground truth --------------------------------------------------------------------

    def events(self, n0: int, n1: int) -> pa.Table:
        """Every anomaly block and wear episode that overlaps samples [n0, n1)."""
        sec = self.model.sample_seconds * _US
        cols: dict[str, list] = {k: [] for k in ("kind", "id", "start", "end", "type", "level")}
        cols.update({"robot_id": [], "axis": [], "magnitude": []})

        def add(rs: RobotSim, axis: AxisSim, start: int, end: int, kind: str, level: str, magnitude: float) -> None:
            values = ("robots", f"{rs.robot.id}/{axis.name}", start * sec, end * sec, kind, level, rs.robot.id,
                      axis.name, magnitude)  # fmt: skip
            for k, v in zip(("kind", "id", "start", "end", "type", "level", "robot_id", "axis", "magnitude"), values,
                            strict=True):  # fmt: skip
                cols[k].append(v)

        for rs in self.robots:
            # blocks from the installation on: none starts before it, and a span from 1970
            # would otherwise hash every hour slot of decades without a robot
            b = self.blocks(rs, max(n0, rs.installed), max(n1, rs.installed))
            for i in np.nonzero((b.end > n0) & (b.start < n1))[0]:
                level = "ERROR" if b.is_error[i] else "ALERT"
                add(rs, rs.axes[b.axis[i]], int(b.start[i]), int(b.end[i]), "anomaly", level, float(b.sigmas[i]))
            for axis in rs.axes:
                hit = (axis.wear_onsets < n1) & (axis.wear_ends > n0)
                for on, end, sig in zip(axis.wear_onsets[hit], axis.wear_ends[hit], axis.wear_sigmas[hit],
                                        strict=True):  # fmt: skip
                    add(rs, axis, int(on), int(end), "drift", "wear", float(sig))
        return events_table(cols)
