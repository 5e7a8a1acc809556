"""The transform's units: which output days are computed together, and how much each may hold.

A unit is a family's run of whole months (door tables or robot tables), computed in chunks of
output days; units share no mart file, so they run side by side (threads in one process, or
Airflow's mapped tasks on several workers) and write exactly what one run over every date
writes. A unit's size is set by the raw rows it reads, the look-back included, against its
share of ETL_MEMORY_BUDGET_MB, so memory stays flat whatever the fleet's width or the span:
a unit of a narrow fleet holds a year of door months, one of a wide fleet a single month, and a
month too large for the budget is cut into chunks of days (each later chunk reads back the month
file the one before wrote, as an increment does).

Pure planning, no I/O: the transform counts the rows and runs the units (etl/transform.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

# Bytes a unit holds per raw row it reads (DuckDB's working set, the Arrow results being
# written), measured at the default and the 10x fleet (docs/benchmarks.md, "Transform units").
ROW_BYTES = {"doors": 600, "robots": 300}
BASE_MB = 160  # what the process holds before any unit: Python, DuckDB, pyarrow, the queries
DUCKDB_SHARE = 0.6  # of a unit's budget, DuckDB's memory_limit; the rest is the Arrow side of writing
DUCKDB_MIN_MB = 128


@dataclass(frozen=True)
class Share:
    """How a run divides the machine: units at once, DuckDB threads and megabytes for each."""

    at_once: int
    threads: int
    unit_mb: int

    @property
    def duckdb_mb(self) -> int:
        # no less than a robot day's chunk with its look-back needs with two threads (38 MB
        # failed with an OutOfMemoryException): a tiny budget cuts units small, not impossible
        return max(DUCKDB_MIN_MB, int(self.unit_mb * DUCKDB_SHARE))

    @property
    def unit_rows(self) -> int:
        """Raw rows a unit may read, by the heavier family's bytes per row."""
        return max(1, self.unit_mb * 1024 * 1024 // max(ROW_BYTES.values()))


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share(budget_mb: int, at_once: int = 0, cpus: int = 0) -> Share:
    """The budget less the process's base, split between `at_once` units (0: one per core), each
    with its share of the cores for DuckDB, so that threads x units <= cores."""
    cpus = cpus or cores()
    at_once = at_once or cpus
    return Share(at_once, max(1, cpus // at_once), max(64, (budget_mb - BASE_MB) // at_once))


@dataclass(frozen=True)
class Unit:
    """A family's output days [first, until], computed chunk by chunk (inclusive days)."""

    source: str
    chunks: tuple[tuple[int, int], ...]

    @property
    def first(self) -> int:
        return self.chunks[0][0]

    @property
    def until(self) -> int:
        return self.chunks[-1][1]

    def as_dict(self) -> dict:
        return {"source": self.source, "chunks": [list(c) for c in self.chunks]}

    @classmethod
    def from_dict(cls, data: dict) -> Unit:
        return cls(data["source"], tuple((int(a), int(b)) for a, b in data["chunks"]))


def plan_units(
    source: str,
    months: list[tuple[int, int]],
    rows_read: Callable[[int, int], int],
    unit_rows: int,
    min_days: int = 1,
) -> list[Unit]:
    """Group a family's month pieces (first, until) into units whose raw reads fit `unit_rows`
    (`rows_read(first, until)`: the raw rows computing those output days reads, look-back
    included); a month that alone does not fit becomes a unit of day chunks that do, each of at
    least `min_days` days (the family's look-back; see day_chunks)."""
    units: list[Unit] = []
    group: list[tuple[int, int]] = []
    for piece in months:
        if group and rows_read(group[0][0], piece[1]) <= unit_rows:
            group[-1] = (group[-1][0], piece[1])  # one chunk: its month files written once each
            continue
        if group:
            units.append(Unit(source, tuple(group)))
        group = [piece] if rows_read(*piece) <= unit_rows else day_chunks(piece, rows_read, unit_rows, min_days)
        if len(group) > 1:  # cut into days: a unit of its own
            units.append(Unit(source, tuple(group)))
            group = []
    if group:
        units.append(Unit(source, tuple(group)))
    return units


def day_chunks(
    piece: tuple[int, int], rows_read: Callable[[int, int], int], unit_rows: int, min_days: int = 1
) -> list[tuple[int, int]]:
    """[first, until] in runs of days whose raw reads fit `unit_rows`, at least `min_days` each.

    Every chunk reads its look-back again: a chunk of one output day under a look-back of 58
    read 59 days for one, and a year of a 10x fleet at a budget that cut it so took 546 s instead
    of 24 s. A chunk at least as long as the look-back reads at most twice its own days; past
    the estimate, DuckDB's memory_limit (which spills to the unit's temp_directory) is the bound."""
    chunks = []
    first, until = piece
    while first <= until:
        end = min(until, first + max(1, min_days) - 1)
        while end < until and rows_read(first, end + 1) <= unit_rows:
            end += 1
        chunks.append((first, end))
        first = end + 1
    return chunks
