"""The transform in units: a full rebuild of a year (2024) of doors and robots, at the default fleet
and at 10x its doors, one unit at a time (the default) and one per core side by side, against a
checkout's single run per family (before the units).

    flock /tmp/bench.lock .venv/bin/python bench/units_bench.py [--runs 3] [--fleets 1,10] [--before ../main]

Lakes come straight from the simulator (no HTTP), as bench/transform_bench.py builds them; the
10x fleet is a copy of api/fleet.toml with every store's `doors` multiplied. Each rebuild runs in
a fresh process with the default ETL_MEMORY_BUDGET_MB (1024): its time is the whole process
(Python's start-up included) and transform()'s own; its peak is the process's ru_maxrss.
`--before` names a checkout whose etl/ runs the same rebuild for comparison (its transform takes
no settings: one run per family, as before the units). Prints medians and every run's figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.fleet import load_fleet  # noqa: E402
from api.simulate.doors import DoorSimulator  # noqa: E402
from api.simulate.robots import RobotSimulator  # noqa: E402
from bench.fleets import write_widened  # noqa: E402
from etl.datasets import DOORS, ROBOTS  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.units import cores  # noqa: E402

START, END = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from etl.lake import Lake
from etl.transform import TransformParams, transform
began = time.perf_counter()
if sys.argv[3] == "before":
    transform(Lake(sys.argv[2]), TransformParams(), full=True)
else:
    from etl.settings import EtlSettings
    transform(Lake(sys.argv[2]), TransformParams(), full=True, settings=EtlSettings(), at_once=int(sys.argv[3]))
print(time.perf_counter() - began)
"""


def wide_fleet(factor: int, folder: Path) -> Path:
    """A copy of the default fleet file with every store's doors multiplied by `factor`."""
    return write_widened(factor, folder / f"fleet-{factor}x.toml")


def build_lake(root: Path, fleet_file: Path) -> tuple[Lake, int]:
    """A year of raw doors and robots and the fleet reference, as a pull leaves them; the rows."""
    fleet = load_fleet(fleet_file)
    lake = Lake(str(root))
    stores = [{"name": s.name, "timezone": s.timezone, "doors": s.doors} for s in fleet.stores]
    axes = [{"name": a.name, "mean": a.mean, "std": a.std} for a in fleet.robots.axes]
    units = [{"id": r.id, "axes": axes} for r in fleet.units]
    lake.write_bytes(lake.fleet_file(), json.dumps({"stores": stores, "robots": units}).encode())
    doors, robots, rows = DoorSimulator(fleet), RobotSimulator(fleet), 0
    cursor = START
    while cursor < END:
        stop = min(END, cursor + dt.timedelta(days=14))
        table = doors.readings(int(cursor.timestamp()) // 3600, int(stop.timestamp()) // 3600, doors.select())
        lake.replace_interval(DOORS, table, cursor, stop)
        samples = robots.readings(int(cursor.timestamp()) // 10, int(stop.timestamp()) // 10, robots.select())
        lake.replace_interval(ROBOTS, samples, cursor, stop)
        rows += table.num_rows + samples.num_rows
        cursor = stop
    return lake, rows


def reset_own_peak_rss() -> None:
    """Forget this process's RSS high-water mark (Linux folds it into a vforked child's)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def rebuild(code: Path, lake: Path, at_once: str) -> tuple[float, float, float]:
    """(whole process s, transform() s, peak MB) of one full rebuild in a fresh process."""
    reset_own_peak_rss()
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(code), str(lake), at_once], stdout=subprocess.PIPE,
                            env={k: v for k, v in os.environ.items() if not k.startswith("ETL_")})  # fmt: skip
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"rebuild of {lake} ({at_once}) exited with status {status}")
    return time.perf_counter() - began, float(out.split()[-1]), usage.ru_maxrss / 1024


def digest(lake: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(Path(lake, "marts").rglob("*.parquet")):
        h.update(str(path.relative_to(lake)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fleets", default="1,10", help="door multipliers, comma-separated")
    parser.add_argument("--before", type=Path, help="a checkout to compare with (e.g. ../main)")
    args = parser.parse_args()
    configs = [("1 unit at a time (default)", ROOT, "1"), (f"{cores()} side by side (--at-once)", ROOT, str(cores()))]
    if args.before:
        configs.append(("before (one run per family)", args.before.resolve(), "before"))
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (int(f) for f in args.fleets.split(",")):
            lake, rows = build_lake(Path(tmp, f"lake-{factor}x"), wide_fleet(factor, Path(tmp)))
            print(f"{factor}x fleet: {rows:,} raw rows of 2024 (doors and robots)", flush=True)
            for label, code, at_once in configs:
                runs, digests = [], set()
                for _ in range(args.runs):  # alternating configs would share a busy spell; runs are short
                    runs.append(rebuild(code, Path(lake.root), at_once))
                    digests.add(digest(Path(lake.root)))
                whole, own, peak = (statistics.median(r[i] for r in runs) for i in range(3))
                every = ", ".join(f"{w:.2f} s/{p:.0f} MB" for w, _, p in runs)
                print(f"  {label:30s} whole {whole:6.2f} s  transform {own:6.2f} s  peak {peak:6.0f} MB"
                      f"  marts {'/'.join(sorted(digests))}  ({every})", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
