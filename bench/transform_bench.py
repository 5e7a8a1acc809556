"""Transform speed: a full rebuild, and one hourly increment on a short and a long history.

    .venv/bin/python bench/transform_bench.py [--runs 5]

Builds door lakes straight from the simulator (no HTTP: this measures the transform,
not the pull): 1 year (2024) for the full rebuild, 3 months and 3 years for the
increment, whose cost must not grow with history. Each figure is the median of
--runs runs; peak memory is the process's own maximum RSS during the rebuild.
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
from etl.datasets import DOORS  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.transform import TransformParams, transform  # noqa: E402

HOUR = dt.timedelta(hours=1)
CLOCK = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def hour_index(value: dt.datetime) -> int:
    return int(value.timestamp()) // 3600


def build_lake(root: Path, start: dt.datetime, end: dt.datetime) -> Lake:
    """Raw doors for [start, end) and the fleet reference, as a pull would leave them."""
    fleet = load_fleet()
    sim = DoorSimulator(fleet)
    lake = Lake(str(root))
    stores = [{"name": s.name, "timezone": s.timezone, "doors": s.doors} for s in fleet.stores]
    lake.write_bytes(lake.path("reference", "fleet.json"), json.dumps({"stores": stores}).encode())
    cursor = start
    while cursor < end:
        stop = min(end, cursor + dt.timedelta(days=30))
        table = sim.readings(hour_index(cursor), hour_index(stop), sim.select())
        lake.replace_interval(DOORS, table, cursor, stop)
        cursor = stop
    return lake


def add_hour(lake: Lake, at: dt.datetime) -> None:
    sim = DoorSimulator(load_fleet())
    table = sim.readings(hour_index(at), hour_index(at) + 1, sim.select())
    lake.replace_interval(DOORS, table, at, at + HOUR)


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
        add_hour(lake, CLOCK)
        seconds.append(timed(lambda lake=lake: transform(lake, TransformParams())))
        shutil.rmtree(work)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        year = build_lake(Path(tmp, "year"), dt.datetime(2024, 1, 1, tzinfo=dt.UTC), CLOCK)
        full = []
        for _ in range(args.runs):
            full.append(timed(lambda: transform(year, TransformParams(), full=True)))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        short = Path(tmp, "3-months")
        build_lake(short, CLOCK - dt.timedelta(days=92), CLOCK)
        transform(Lake(str(short)), TransformParams())
        long = Path(tmp, "3-years")
        build_lake(long, CLOCK - dt.timedelta(days=3 * 366), CLOCK)
        transform(Lake(str(long)), TransformParams())
        inc_short = statistics.median(increment_seconds(short, args.runs))
        inc_long = statistics.median(increment_seconds(long, args.runs))
    rows = [
        ("Full rebuild, 1 year of doors (342,576 rows), median", f"{statistics.median(full):.2f} s", "<= 3 s"),
        ("  spread over runs", f"{min(full):.2f} - {max(full):.2f} s", ""),
        ("Peak RSS of the process (build + rebuilds)", f"{peak_mb:.0f} MB", "<= 500 MB"),
        ("Hourly increment, 3-month lake, median", f"{inc_short:.3f} s", "<= 0.5 s"),
        ("Hourly increment, 3-year lake, median", f"{inc_long:.3f} s", "<= 0.5 s"),
        ("  3 years / 3 months", f"{inc_long / inc_short:.2f} x", "<= 1.2 x"),
    ]
    print(f"transform_bench: {args.runs} runs each; door tables only (robot tables are not built yet)")
    for name, value, target in rows:
        print(f"  {name:52s} {value:>14s}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
