"""Transform speed: a full rebuild, and one hourly increment on a short and a long history.

    .venv/bin/python bench/transform_bench.py [--runs 5] [--before CHECKOUT] [--whole-only]

Builds lakes straight from the simulator (no HTTP: this measures the transform, not
the pull): 1 year (2024) of doors, and of doors and robots, for the full rebuild; 3
months and 3 years of both for the increment at 1 January, whose cost must not grow with
history; 3 months ending 17 December for an increment mid-month (1 January is the door
tables' best case: they recompute their month from its first day).
The target figure is the whole process: `python -m etl transform --full --lake DIR` on the
year of doors, start-up and imports included (--before CHECKOUT times another checkout's
command too, alternating on the same lake; --whole-only measures only that).
Each figure is the median of --runs runs. A full rebuild runs in a fresh child process:
its time is transform()'s own (no start-up), its peak memory is the child's ru_maxrss
(the kernel's high-water mark, imports included), so that building the lakes in this
process does not count.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.fleet import DEFAULT_FLEET_FILE, load_fleet  # noqa: E402
from api.simulate.doors import DoorSimulator  # noqa: E402
from api.simulate.robots import RobotSimulator  # noqa: E402
from etl.datasets import DOORS, ROBOTS  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.transform import TransformParams, transform  # noqa: E402

HOUR = dt.timedelta(hours=1)
CLOCK = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
MID_MONTH = dt.datetime(2024, 12, 17, tzinfo=dt.UTC)


def hour_index(value: dt.datetime) -> int:
    return int(value.timestamp()) // 3600


def bench_fleet():
    """The fleet the API would serve: FLEET_FILE's, as `uvicorn api.app:app` reads it, or the default."""
    return load_fleet(os.environ.get("FLEET_FILE") or DEFAULT_FLEET_FILE)


def build_lake(root: Path, start: dt.datetime, end: dt.datetime, robots: bool) -> Lake:
    """Raw doors (and robots) for [start, end) and the fleet reference, as a pull leaves them."""
    fleet = bench_fleet()
    lake = Lake(str(root))
    stores = [{"name": s.name, "timezone": s.timezone, "doors": s.doors} for s in fleet.stores]
    axes = [{"name": a.name, "mean": a.mean, "std": a.std} for a in fleet.robots.axes]
    units = [{"id": r.id, "axes": axes} for r in fleet.units]
    lake.write_bytes(lake.fleet_file(), json.dumps({"stores": stores, "robots": units}).encode())
    cursor = start
    while cursor < end:
        stop = min(end, cursor + dt.timedelta(days=14))
        add_span(lake, cursor, stop, robots)
        cursor = stop
    return lake


def add_span(lake: Lake, start: dt.datetime, end: dt.datetime, robots: bool) -> None:
    fleet = bench_fleet()
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


CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from etl.lake import Lake
from etl.transform import TransformParams, transform
began = time.perf_counter()
transform(Lake(sys.argv[2]), TransformParams(), full=True)
print(time.perf_counter() - began)
"""


def reset_own_peak_rss() -> None:
    """Forget this process's RSS high-water mark: at exec, Linux folds the parent's into the
    child's ru_maxrss (subprocess spawns with vfork), and this process built lakes."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def marts_digest(lake: Path) -> str:
    """One hash of every mart file's path and bytes: equal after two rebuilds when the
    transform writes the same bits whatever its threads did."""
    digest = hashlib.sha256()
    for path in sorted(Path(lake, "marts").rglob("*.parquet")):
        digest.update(str(path.relative_to(lake)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def full_rebuild(lake: Path) -> tuple[float, float]:
    """(seconds, peak MB) of one full rebuild in a fresh process."""
    reset_own_peak_rss()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(lake)], stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"full rebuild of {lake} exited with status {status}")
    return float(out.split()[-1]), usage.ru_maxrss / 1024


def whole_process(root: Path, lake: Path) -> tuple[float, float]:
    """(seconds, peak MB) of `python -m etl transform --full --lake LAKE` run from the checkout
    `root` (its etl package): the whole process, start-up and imports included."""
    reset_own_peak_rss()
    began = time.perf_counter()
    command = [sys.executable, "-m", "etl", "transform", "--full", "--lake", str(lake)]
    proc = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} in {root} exited with status {status}")
    return seconds, usage.ru_maxrss / 1024


def whole_rows(lake: Path, runs: int, before: Path | None) -> list[tuple[str, str, str]]:
    """The whole-process figures of this checkout (and of `before`, alternating with it)."""
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(whole_process(ROOT, lake))
        if before:
            theirs.append(whole_process(before, lake))
    seconds = [s for s, _ in ours]
    rows = [
        ("Whole process transform --full, 1 year of doors", f"{statistics.median(seconds):.2f} s", "<= 1.2 s"),
        ("  spread over runs", f"{min(seconds):.2f} - {max(seconds):.2f} s", ""),
        ("  peak RSS", f"{statistics.median(m for _, m in ours):.0f} MB", ""),
    ]
    if before:
        old = [s for s, _ in theirs]
        rows += [
            (f"  the same, {before}", f"{statistics.median(old):.2f} s", ""),
            ("  spread over runs", f"{min(old):.2f} - {max(old):.2f} s", ""),
            ("  peak RSS", f"{statistics.median(m for _, m in theirs):.0f} MB", ""),
            (
                "  before / now (median of the paired runs)",
                f"{statistics.median(b / a for a, b in zip(seconds, old, strict=True)):.2f} x",
                "",
            ),
        ]
    return rows


def increment_seconds(base: Path, runs: int, at: dt.datetime = CLOCK) -> list[float]:
    """Copy the lake, add the hour from `at` (its end), time the incremental transform; `runs` times."""
    seconds = []
    for i in range(runs):
        work = base.parent / f"{base.name}-run{i}"
        shutil.copytree(base, work)
        lake = Lake(str(work))
        add_span(lake, at, at + HOUR, robots=True)
        seconds.append(timed(lambda lake=lake: transform(lake, TransformParams())))
        shutil.rmtree(work)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout whose whole process is timed alongside")
    parser.add_argument("--whole-only", action="store_true", help="only the whole-process full rebuild of the doors")
    args = parser.parse_args()
    year_start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory() as tmp:
        build_lake(Path(tmp, "doors-year"), year_start, CLOCK, robots=False)
        whole = whole_rows(Path(tmp, "doors-year"), args.runs, args.before)
        if args.whole_only:
            return report(args.runs, whole)
        doors_full, doors_peaks = zip(*(full_rebuild(Path(tmp, "doors-year")) for _ in range(args.runs)), strict=True)
        build_lake(Path(tmp, "year"), year_start, CLOCK, robots=True)
        full, peaks, digests = [], [], set()
        for _ in range(args.runs):
            seconds, peak = full_rebuild(Path(tmp, "year"))
            full.append(seconds)
            peaks.append(peak)
            digests.add(marts_digest(Path(tmp, "year")))
        shutil.rmtree(Path(tmp, "year"))
        short = Path(tmp, "3-months")
        build_lake(short, CLOCK - dt.timedelta(days=92), CLOCK, robots=True)
        transform(Lake(str(short)), TransformParams())
        long = Path(tmp, "3-years")
        build_lake(long, CLOCK - dt.timedelta(days=3 * 366), CLOCK, robots=True)
        transform(Lake(str(long)), TransformParams())
        # Alternated, so that a busy spell of the machine hits both lakes alike.
        incs = [(increment_seconds(short, 1)[0], increment_seconds(long, 1)[0]) for _ in range(args.runs)]
        # 1 January is the door tables' best case (they recompute their month from its first
        # day): the same hour mid-month, 16 days into December, on a 3-month lake ending there.
        mid = Path(tmp, "3-months-mid")
        build_lake(mid, MID_MONTH - dt.timedelta(days=92), MID_MONTH, robots=True)
        transform(Lake(str(mid)), TransformParams())
        inc_mid = increment_seconds(mid, args.runs, MID_MONTH)
    inc_short, inc_long = (statistics.median(x) for x in zip(*incs, strict=True))
    ratio = statistics.median(b / a for a, b in incs)

    def spread(values, unit: str, digits: int = 2) -> str:
        return f"{min(values):.{digits}f} - {max(values):.{digits}f} {unit}"

    rows = [
        *whole,
        ("Full rebuild, 1 year of doors (342,576 rows)", f"{statistics.median(doors_full):.2f} s", "<= 3 s"),
        ("  spread over runs", spread(doors_full, "s"), ""),
        ("  peak RSS of the rebuild's process", f"{statistics.median(doors_peaks):.0f} MB", "<= 500 MB"),
        ("Full rebuild, 1 year of doors and robots (13.0M rows)", f"{statistics.median(full):.2f} s", "<= 3 s"),
        ("  spread over runs", spread(full, "s"), ""),
        ("  peak RSS of the rebuild's process", f"{statistics.median(peaks):.0f} MB", "<= 500 MB"),
        ("  spread over runs", spread(peaks, "MB", 0), ""),
        ("  the same files every run", "yes" if len(digests) == 1 else f"no: {len(digests)} versions", "yes"),
        ("Hourly increment (doors + robots), 3-month lake", f"{inc_short:.3f} s", "<= 0.5 s"),
        ("  spread over runs", spread([a for a, _ in incs], "s", 3), ""),
        ("Hourly increment (doors + robots), 3-year lake", f"{inc_long:.3f} s", "<= 0.5 s"),
        ("  spread over runs", spread([b for _, b in incs], "s", 3), ""),
        ("  3 years / 3 months (median of the paired runs)", f"{ratio:.2f} x", "<= 1.2 x"),
        ("Hourly increment mid-month (17 Dec), 3-month lake", f"{statistics.median(inc_mid):.3f} s", "<= 0.5 s"),
        ("  spread over runs", spread(inc_mid, "s", 3), ""),
    ]
    return report(args.runs, rows)


def report(runs: int, rows: list[tuple[str, str, str]]) -> int:
    print(f"transform_bench: medians of {runs} runs")
    for name, value, target in rows:
        print(f"  {name:52s} {value:>16s}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
