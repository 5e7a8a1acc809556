"""The platform at 1x, 10x and 100x the fleet's doors (1000x for the API alone), one command:

    flock /tmp/bench.lock .venv/bin/python bench/scale_bench.py [--factors 1,10,100]
        [--api-factors 1,10,100,1000] [--runs 3] [--timeout 1200] [--json FILE]

For each factor N it writes api/fleet.toml with every store's doors x N (bench/fleets.py), starts
the API on 127.0.0.1 with that fleet and SIM_NOW pinned, and measures, as whole processes:

- API: one day of doors (2024-06-03, arrow) per request, readings/s (median of --runs, after one
  warm-up), and the server's peak RSS so far (the kernel's VmHWM);
- pull: `python -m etl pull --kind doors` of the year 2024 into a fresh lake: time, peak RSS;
- full transform: `python -m etl transform --full` of that lake: time, peak RSS;
- hourly increment: the API's clock one hour later, on a copy of the lake, `etl pull --kind doors`
  then `etl transform`: summed time, the higher peak RSS;
- dashboard widget change: bench/dashboard_bench.py --lake on that lake (AppTest reruns).

Peak RSS of a child is its ru_maxrss from os.wait4 (every spike counts). Each figure is the median of
--runs runs (the pull: a fresh lake each run). Beside each: rows, and its growth against the rows
from 1x (time ratio / rows ratio; 1.0 is linear), with the issue's targets (issue 17). Every child
has a timeout (--timeout seconds); a stage that hits it says so and the benchmark goes on.
Run it under the machine-wide lock: the machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so that `etl`, `bench` and `tests.support` import when run as a script

import requests  # noqa: E402

from bench.etl_bench import reset_own_peak_rss  # noqa: E402
from bench.fleets import write_widened  # noqa: E402
from etl.client import iso  # noqa: E402
from etl.datasets import DOORS  # noqa: E402
from etl.wire import decode  # noqa: E402
from tests.support import ApiServer  # noqa: E402

YEAR_NOW = "2025-01-01T00:00:00Z"
NEXT_HOUR_NOW = "2025-01-01T01:00:00Z"
YEAR = ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
DOORS_1X = 39
BULK_ROWS = 342_576  # the 1x year: the request size bench/api_bench.py's 5 M/s target is set for
API_DAY_STAGE = "API, one day of doors (arrow)"
API_BULK_STAGE = "API, >= 342,576 rows a request (arrow)"
PULL_CPU_STAGE = "  the pulling process's CPU time"
MB = 1024 * 1024

API_TARGET = 5_000_000  # readings/s at every fleet size
LINEAR_TARGET = 1.3  # pull and full transform: time ratio / rows ratio, 1x to 100x
RSS_TARGET_MB = 1024.0  # each at 100x
INCREMENT_TARGET_S = 5.0  # at 100x
WIDGET_TARGET_S = 1.0  # at 100x
FULL_1X_TARGET_S = 1.2  # the 1x year's full transform, whole process
TARGET_FACTOR = 100

IGNORED_ENV = ("FLEET_FILE", "SIM_SPEED", "SIM_NOW", "API_MAX_ROWS", "API_CHUNK_ROWS", "DASHBOARD_LAKE")


class StageTimeout(RuntimeError):
    """A child or a request that took longer than its stage's timeout."""


@dataclass
class Child:
    seconds: float
    peak_mb: float
    cpu_seconds: float  # user + system: what the process itself cost, whatever it waited for


@dataclass
class Figure:
    stage: str
    factor: int
    rows: int | None
    values: list[float]  # seconds, or readings/s for the API
    unit: str
    peak_mb: float | None = None
    growth: float | None = None  # (value ratio / rows ratio) against 1x: 1.0 is linear
    target: str = "-"
    met: bool | None = None
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


# -- processes -----------------------------------------------------------------------------


def run_child(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> Child:
    """Run a child to the end: wall time and peak RSS (ru_maxrss). StageTimeout past `timeout`."""
    reset_own_peak_rss()
    with tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=env)
        timer = threading.Timer(timeout, proc.kill)  # wait4 has no timeout of its own
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait(timeout=10)
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if seconds >= timeout and proc.returncode != 0:
        raise StageTimeout(f"{' '.join(cmd[1:4])}: killed after the {timeout:.0f} s timeout")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {stderr.strip()[-600:]}")
    return Child(seconds, usage.ru_maxrss * 1024 / MB, usage.ru_utime + usage.ru_stime)  # ru_maxrss: KiB


def etl(*args: str, timeout: float) -> Child:
    return run_child([sys.executable, "-m", "etl", *args], timeout, child_env())


def child_env() -> dict[str, str]:
    """This environment without the settings a benchmark must not inherit (the defaults are measured)."""
    drop = set(IGNORED_ENV) | {n for n in os.environ if n.startswith("ETL_")}
    return {k: v for k, v in os.environ.items() if k not in drop}


def server_peak_mb(server: ApiServer) -> float:
    """The server process's peak RSS so far (VmHWM, the kernel's high-water mark)."""
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def lake_doors(lake: Path) -> int:
    out = subprocess.run([sys.executable, "-m", "etl", "status", "--lake", str(lake), "--json"], cwd=ROOT,
                         env=child_env(), capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    return json.loads(out.stdout)["doors"]["rows"]


# -- stages --------------------------------------------------------------------------------


def api_stage(server: ApiServer, factor: int, days: int, runs: int, timeout: float) -> Figure:
    """Readings/s of `days` days of doors from 2024-06-03, arrow, whole answers decoded (median of `runs`)."""
    session = requests.Session()
    session.trust_env = False
    start = dt.datetime(2024, 6, 3, tzinfo=dt.UTC) if days == 1 else dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    end = min(start + dt.timedelta(days=days), dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    params = {"start": iso(start), "end": iso(end), "format": "arrow"}
    rates, rows, deadline = [], 0, time.monotonic() + timeout
    try:
        for run in range(runs + 1):  # the first is a warm-up
            if time.monotonic() > deadline:
                raise StageTimeout(f"{timeout:.0f} s timeout after {run} requests")
            began = time.perf_counter()
            answer = session.get(server.base + DOORS.route, params=params, timeout=(5, timeout))
            answer.raise_for_status()
            rows = decode(answer.content, "arrow", DOORS.schema).num_rows
            if run:
                rates.append(rows / (time.perf_counter() - began))
    except requests.Timeout as exc:
        raise StageTimeout(f"no answer within the {timeout:.0f} s timeout") from exc
    finally:
        session.close()
    stage = API_DAY_STAGE if days == 1 and factor * DOORS_1X * 24 < BULK_ROWS else API_BULK_STAGE
    note = f"{(end - start).days} day(s) a request, {median_time(rows, rates)}"
    return Figure(stage, factor, rows, rates, "readings/s", server_peak_mb(server), note=note)


def median_time(rows: int, rates: list[float]) -> str:
    return f"{rows / statistics.median(rates):.3f} s each" if rates else "no answer"


def bulk_days(factor: int) -> int:
    """Days of doors that hold at least BULK_ROWS rows at this width (the 1x year: 366)."""
    return min(366, -(-BULK_ROWS // (factor * DOORS_1X * 24)))


def pull_stage(server: ApiServer, work: Path, factor: int, runs: int, timeout: float) -> tuple[Figure, Path, Figure]:
    """The year 2024 of doors pulled into a fresh lake, `runs` times: the wall time, the last lake, and
    the pulling process's own CPU time (its growth is the pull's own, the API's apart)."""
    seconds, peaks, cpu = [], [], []
    for run in range(runs):
        lake = work / f"lake-{factor}x"
        shutil.rmtree(lake, ignore_errors=True)
        child = etl("pull", "--api", server.base, "--lake", str(lake), "--kind", "doors",
                    "--start", YEAR[0], "--end", YEAR[1], timeout=timeout)  # fmt: skip
        seconds.append(child.seconds)
        peaks.append(child.peak_mb)
        cpu.append(child.cpu_seconds)
        print(f"  pull run {run + 1}: {child.seconds:.2f} s, peak RSS {child.peak_mb:.0f} MB, "
              f"CPU {child.cpu_seconds:.1f} s", flush=True)  # fmt: skip
    rows = lake_doors(lake)
    own = Figure(PULL_CPU_STAGE, factor, rows, cpu, "s", note="user + system: the pull's own cost, the API's apart")
    return Figure("pull of the year (doors)", factor, rows, seconds, "s", max(peaks)), lake, own


def transform_stage(lake: Path, factor: int, rows: int, runs: int, timeout: float) -> Figure:
    seconds, peaks = [], []
    for run in range(runs):
        child = etl("transform", "--full", "--lake", str(lake), timeout=timeout)
        seconds.append(child.seconds)
        peaks.append(child.peak_mb)
        print(f"  transform --full run {run + 1}: {child.seconds:.2f} s, peak RSS {child.peak_mb:.0f} MB", flush=True)
    return Figure("full transform (whole process)", factor, rows, seconds, "s", max(peaks))


def increment_stage(lake: Path, work: Path, fleet: Path, factor: int, runs: int, timeout: float) -> Figure:
    """One more hour: pull (from the watermark) and transform, on a fresh copy of the lake each run."""
    seconds, peaks = [], []
    with ApiServer(SIM_NOW=NEXT_HOUR_NOW, FLEET_FILE=str(fleet)) as server:
        for run in range(runs):
            copy = work / f"increment-{factor}x"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(lake, copy)
            pulled = etl("pull", "--api", server.base, "--lake", str(copy), "--kind", "doors", timeout=timeout)
            transformed = etl("transform", "--lake", str(copy), timeout=timeout)
            seconds.append(pulled.seconds + transformed.seconds)
            peaks.append(max(pulled.peak_mb, transformed.peak_mb))
            print(f"  increment run {run + 1}: pull {pulled.seconds:.2f} s + transform {transformed.seconds:.2f} s, "
                  f"peak RSS {peaks[-1]:.0f} MB", flush=True)  # fmt: skip
            shutil.rmtree(copy)
    hour = factor * 39  # one hour of every door
    return Figure("hourly increment (pull + transform)", factor, hour, seconds, "s", max(peaks))


def dashboard_stage(lake: Path, work: Path, factor: int, rows: int, runs: int, timeout: float) -> Figure:
    out = work / f"dashboard-{factor}x.json"
    cmd = [sys.executable, str(ROOT / "bench" / "dashboard_bench.py"), "--lake", str(lake), "--runs", str(runs)]
    child = run_child([*cmd, "--json", str(out)], timeout, child_env())
    print(f"  dashboard: {out.read_text()}", flush=True)
    medians = json.loads(out.read_text())
    note = f"median of {2 * runs} widget changes; first render {medians['first_render_s']:.2f} s"
    return Figure("dashboard widget change", factor, rows, [medians["widget_change_s"]], "s", child.peak_mb, note=note)


# -- targets -------------------------------------------------------------------------------


def add_growth(figures: list[Figure]) -> None:
    """Each figure's growth against the same stage at 1x: the cost per row at Nx over the cost per
    row at 1x (time ratio / rows ratio; for the API, the inverse ratio of readings/s)."""
    base = {f.stage: f for f in figures if f.factor == 1 and f.median}
    for f in figures:
        b = base.get(f.stage)
        if f.factor == 1 or not (b and f.median and f.rows and b.rows):
            continue
        if f.unit == "readings/s":
            f.growth = b.median / f.median
        else:
            f.growth = (f.median / b.median) / (f.rows / b.rows)


def judge(f: Figure) -> None:
    """Set the figure's target and whether its median meets it (issue 17's targets)."""
    at_target = f.factor == TARGET_FACTOR
    checks: list[tuple[str, bool]] = []
    if f.median is None:
        return
    if f.stage == API_BULK_STAGE:
        checks.append((f">= {API_TARGET / 1e6:g} M/s", f.median >= API_TARGET))
    if f.stage.startswith(("pull", "full transform")) and at_target and f.growth is not None:
        checks.append((f"growth <= {LINEAR_TARGET:g}", f.growth <= LINEAR_TARGET))
    if f.stage.startswith("full transform") and f.factor == 1:
        checks.append((f"<= {FULL_1X_TARGET_S:g} s", f.median <= FULL_1X_TARGET_S))
    if f.stage.startswith("hourly") and at_target:
        checks.append((f"<= {INCREMENT_TARGET_S:g} s", f.median <= INCREMENT_TARGET_S))
    if f.stage.startswith("dashboard") and at_target:
        checks.append((f"<= {WIDGET_TARGET_S:g} s", f.median <= WIDGET_TARGET_S))
    if at_target and f.peak_mb is not None and not f.stage.startswith("dashboard"):
        checks.append((f"peak <= {RSS_TARGET_MB:g} MB", f.peak_mb <= RSS_TARGET_MB))
    if checks:
        f.target = ", ".join(text for text, _ in checks)
        f.met = all(ok for _, ok in checks)


# -- the run -------------------------------------------------------------------------------


def attempt(figures: list[Figure], stage: str, factor: int, fn, *args):
    """Run one stage; a timeout or a failure becomes a figure without values that says why."""
    try:
        result = fn(*args)
    except (StageTimeout, RuntimeError, subprocess.SubprocessError, OSError, requests.RequestException) as exc:
        print(f"  {stage} at {factor}x: {exc}", flush=True)
        figures.append(Figure(stage, factor, None, [], "s", note=str(exc).splitlines()[0][:120]))
        return None
    figure = result[0] if isinstance(result, tuple) else result
    figures.append(figure)
    return result


def bench_factor(factor: int, full: bool, args, work: Path, figures: list[Figure]) -> None:
    """Every stage at one fleet size (`full` False: the API alone)."""
    fleet = write_widened(factor, work / f"fleet-{factor}x.toml")
    print(f"{factor}x ({factor * 39:,} doors){'' if full else ': API only'}", flush=True)
    with ApiServer(SIM_NOW=YEAR_NOW, FLEET_FILE=str(fleet)) as server:
        for days in sorted({1, bulk_days(factor)}):
            stage = API_DAY_STAGE if days == 1 and bulk_days(factor) > 1 else API_BULK_STAGE
            attempt(figures, stage, factor, api_stage, server, factor, days, args.runs, args.timeout)
        if not full:
            return
        pulled = attempt(figures, "pull of the year (doors)", factor, pull_stage, server, work, factor, args.runs,
                         args.timeout)  # fmt: skip
    if pulled is None:
        return
    lake, rows = pulled[1], pulled[0].rows
    figures.append(pulled[2])
    done = attempt(figures, "full transform (whole process)", factor, transform_stage, lake, factor, rows, args.runs,
                   args.timeout)  # fmt: skip
    if done is None:
        return
    attempt(figures, "hourly increment (pull + transform)", factor, increment_stage, lake, work, fleet, factor,
            args.runs, args.timeout)  # fmt: skip
    attempt(figures, "dashboard widget change", factor, dashboard_stage, lake, work, factor, rows, args.runs,
            args.timeout)  # fmt: skip
    shutil.rmtree(lake, ignore_errors=True)


def run(args) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        for factor in sorted(set(args.factors) | set(args.api_factors)):
            began = time.perf_counter()
            bench_factor(factor, factor in args.factors, args, Path(tmp), figures)
            load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
            print(f"  ({factor}x took {time.perf_counter() - began:.0f} s; load average {load})", flush=True)
    add_growth(figures)
    for f in figures:
        judge(f)
    order = {stage: i for i, stage in enumerate(dict.fromkeys(f.stage for f in figures))}
    return sorted(figures, key=lambda f: (order[f.stage], f.factor))


# -- report --------------------------------------------------------------------------------


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "readings/s":
        return f"{value / 1e6:.2f} M/s" if value >= 1e5 else f"{value / 1e3:.1f} k/s"
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def print_table(figures: list[Figure]) -> None:
    header = ("stage", "fleet", "rows", "median", "runs", "peak RSS", "growth", "target", "met", "note")
    rows = [header]
    for f in figures:
        rows.append((
            f.stage, f"{f.factor}x", "-" if f.rows is None else f"{f.rows:,}", format_value(f.median, f.unit),
            str(len(f.values)), "-" if f.peak_mb is None else f"{f.peak_mb:,.0f} MB",
            "-" if f.growth is None else f"{f.growth:.2f}", f.target,
            "-" if f.met is None else ("yes" if f.met else "NO"), f.note,
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print(
            "  ".join(
                c.ljust(w) if j in (0, 7, 9) else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))
    missed = [f"{f.stage} {f.factor}x" for f in figures if f.met is False]
    print(f"\ntargets missed: {', '.join(missed) if missed else 'none'}")
    print("growth: (time at Nx / time at 1x) / (rows at Nx / rows at 1x); for the API, time per reading; 1.0 is linear")


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout  # fmt: skip
    return head.strip() + ("+dirty" if dirty.strip() else "")


def factors(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: factors are whole numbers >= 1")
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=factors, default=[1, 10, 100], help="fleets for every stage")
    parser.add_argument("--api-factors", type=factors, default=[1, 10, 100, 1000], help="fleets for the API stage")
    parser.add_argument("--runs", type=int, default=3, help="runs of each stage (medians)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds any one child or request may take")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.runs < 1 or args.timeout <= 0:
        parser.error("--runs must be at least 1 and --timeout positive")
    if 1 not in args.factors:
        parser.error("--factors must include 1: growth is measured from 1x")
    began = dt.datetime.now(dt.UTC)
    print(f"scale benchmark at {commit()}: factors {args.factors}, API factors {args.api_factors}, "
          f"{args.runs} runs, {args.timeout:g} s timeout\n", flush=True)  # fmt: skip
    figures = run(args)
    print()
    print_table(figures)
    if args.json:
        meta = {"commit": commit(), "started": began.isoformat(timespec="seconds"), "runs": args.runs,
                "load_average_at_end": os.getloadavg()}  # fmt: skip
        args.json.write_text(
            json.dumps({**meta, "figures": [asdict(f) | {"median": f.median} for f in figures]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
