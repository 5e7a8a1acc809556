"""Transform speed: a full rebuild, and one hourly increment on a short and a long history.

    .venv/bin/python bench/transform_bench.py [--runs 5]

Builds lakes straight from the simulator (no HTTP: this measures the transform, not
the pull): 1 year (2024) of doors, and of doors and robots, for the full rebuild; 3
months and 3 years of both for the increment, whose cost must not grow with history.
Each figure is the median of --runs runs; peak memory is the process's maximum RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.fleet import load_fleet  # noqa: E402
from api.simulate.doors import DoorSimulator  # noqa: E402
from api.simulate.robots import RobotSimulator  # noqa: E402
from etl.datasets import DOORS, ROBOTS  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.transform import TransformParams, transform  # noqa: E402

HOUR = dt.timedelta(hours=1)
CLOCK = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def hour_index(value: dt.datetime) -> int:
    return int(value.timestamp()) // 3600


def build_lake(root: Path, start: dt.datetime, end: dt.datetime, robots: bool) -> Lake:
    """Raw doors (and robots) for [start, end) and the fleet reference, as a pull leaves them."""
    fleet = load_fleet()
    lake = Lake(str(root))
    stores = [{"name": s.name, "timezone": s.timezone, "doors": s.doors} for s in fleet.stores]
    axes = [{"name": a.name, "mean": a.mean, "std": a.std} for a in fleet.robots.axes]
    units = [{"id": r.id, "axes": axes} for r in fleet.units]
    lake.write_bytes(lake.path("reference", "fleet.json"), json.dumps({"stores": stores, "robots": units}).encode())
    cursor = start
    while cursor < end:
        stop = min(end, cursor + dt.timedelta(days=14))
        add_span(lake, cursor, stop, robots)
        cursor = stop
    return lake


def add_span(lake: Lake, start: dt.datetime, end: dt.datetime, robots: bool) -> None:
    fleet = load_fleet()
    doors = DoorSimulator(fleet)
    lake.replace_interval(DOORS, doors.readings(hour_index(start), hour_index(end), doors.select()), start, end)
    if robots:
        sim = RobotSimulator(fleet)
        n0, n1 = int(start.timestamp()) // 10, int(end.timestamp()) // 10
        lake.replace_interval(ROBOTS, sim.readings(n0, n1, sim.select()), start, end)


def timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def increment_seconds(base: Path, runs: int) -> list[float]:
    """Copy the lake, add the next hour, time the incremental transform; `runs` times."""
    seconds = []
    for i in range(runs):
        work = base.parent / f"{base.name}-run{i}"
        shutil.copytree(base, work)
        lake = Lake(str(work))
        add_span(lake, CLOCK, CLOCK + HOUR, robots=True)
        seconds.append(timed(lambda lake=lake: transform(lake, TransformParams())))
        shutil.rmtree(work)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    year_start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        doors_year = build_lake(Path(tmp, "doors-year"), year_start, CLOCK, robots=False)
        doors_full = [timed(lambda: transform(doors_year, TransformParams(), full=True)) for _ in range(args.runs)]
        doors_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        year = build_lake(Path(tmp, "year"), year_start, CLOCK, robots=True)
        full = [timed(lambda: transform(year, TransformParams(), full=True)) for _ in range(max(1, args.runs // 2))]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        shutil.rmtree(Path(tmp, "year"))
        short = Path(tmp, "3-months")
        build_lake(short, CLOCK - dt.timedelta(days=92), CLOCK, robots=True)
        transform(Lake(str(short)), TransformParams())
        long = Path(tmp, "3-years")
        build_lake(long, CLOCK - dt.timedelta(days=3 * 366), CLOCK, robots=True)
        transform(Lake(str(long)), TransformParams())
        inc_short = statistics.median(increment_seconds(short, args.runs))
        inc_long = statistics.median(increment_seconds(long, args.runs))
    rows = [
        ("Full rebuild, 1 year of doors (342,576 rows)", f"{statistics.median(doors_full):.2f} s", "<= 3 s"),
        ("  spread over runs", f"{min(doors_full):.2f} - {max(doors_full):.2f} s", ""),
        ("  peak RSS so far", f"{doors_peak_mb:.0f} MB", "<= 500 MB"),
        ("Full rebuild, 1 year of doors and robots (13.0M rows)", f"{statistics.median(full):.2f} s", "<= 3 s"),
        ("  peak RSS so far", f"{peak_mb:.0f} MB", "<= 500 MB"),
        ("Hourly increment (doors + robots), 3-month lake", f"{inc_short:.3f} s", "<= 0.5 s"),
        ("Hourly increment (doors + robots), 3-year lake", f"{inc_long:.3f} s", "<= 0.5 s"),
        ("  3 years / 3 months", f"{inc_long / inc_short:.2f} x", "<= 1.2 x"),
    ]
    print(f"transform_bench: medians of {args.runs} runs (the doors-and-robots rebuild: {max(1, args.runs // 2)})")
    for name, value, target in rows:
        print(f"  {name:52s} {value:>14s}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
