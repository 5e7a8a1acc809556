"""Benchmark of the lake's pull: 1-year backfill time and memory, memory against the span, hourly increment.

Run from the repo root:  .venv/bin/python bench/etl_bench.py [--runs N] [--span-runs N] [--increment-runs N]

It starts its own API servers on free local ports (pinned data clocks), runs the ETL
CLI as a child process into fresh temporary lakes and, for the increment, also calls
`pull()` in-process. It always stops the servers and deletes the lakes, prints one
table of figures against their targets and exits 0 even when a target is missed.

Peak memory is the child's peak RSS as the kernel records it (`ru_maxrss` from
`os.wait4`), so that spikes shorter than any polling interval count; a psutil poll
every 20 ms runs alongside as a cross-check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so that `etl` and `tests.support` import when run as a script

import psutil  # noqa: E402

from tests.support import ApiServer  # noqa: E402

BACKFILL_NOW = "2025-01-01T00:00:00Z"
INCREMENT_NOW = "2025-01-01T01:00:00Z"
YEAR = ("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
SPANS = {
    "3 months": ("2024-10-01T00:00:00Z", "2025-01-01T00:00:00Z"),
    "2 years": ("2023-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
}
YEAR_ROWS = {"doors": 342_576, "robots": 12_648_960}
INCREMENT_ROWS = {"doors": 39, "robots": 4 * 360}  # 39 doors x 1 hour; 4 robots x 360 samples of 10 s

BACKFILL_TARGET_S = 30.0
INCREMENT_TARGET_S = 1.0
RSS_TARGET_MB = 500.0
FLAT_RATIO = 1.2  # our reading of "flat in the span": 2 years may use at most 20 % more than 3 months

CHILD_TIMEOUT_S = 600.0
RSS_POLL_S = 0.02
MB = 1024 * 1024

# The targets are for the default fleet, API chunking and ETL page size: ignore local overrides.
IGNORED_ENV = ("FLEET_FILE", "SIM_SPEED", "API_MAX_ROWS", "API_CHUNK_ROWS")


@dataclass
class Child:
    """One finished `python -m etl ...` process."""

    seconds: float
    peak_mb: float  # ru_maxrss from wait4
    polled_mb: float  # highest psutil sample
    cpu_seconds: float


@dataclass
class Figure:
    """One line of the report: the median of `values`; `limit` None means no target."""

    name: str
    values: list[float]
    unit: str
    target: str = "-"
    limit: float | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def ok(self) -> bool | None:
        return None if self.limit is None else self.median <= self.limit


@dataclass
class Backfills:
    """Per-run measurements of one span's backfill."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    polled_mb: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    server_cpu_seconds: list[float] = field(default_factory=list)


# -- child processes -----------------------------------------------------------------------


def reset_own_peak_rss() -> None:
    """Forget this process's RSS high-water mark.

    subprocess spawns with vfork, and at exec Linux folds the parent's high-water mark
    into the child's ru_maxrss: without this, a child would report at least our own peak.
    """
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class RssPoller(threading.Thread):
    """Samples a process's RSS every RSS_POLL_S until it exits; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
            while not self.stopped.is_set():
                self.peak = max(self.peak, proc.memory_info().rss)
                self.stopped.wait(RSS_POLL_S)
        except psutil.Error:
            pass  # the child exited (or is a zombie) between two samples


def run_etl(*args: str) -> Child:
    """Run `python -m etl ARGS` to the end: wall time, peak RSS and CPU time. Fails on a non-zero exit."""
    reset_own_peak_rss()
    with tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        cmd = [sys.executable, "-m", "etl", *args]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        poller = RssPoller(proc.pid)
        poller.start()
        # wait4 blocks without a timeout of its own: a timer kills a child that hangs.
        watchdog = threading.Timer(CHILD_TIMEOUT_S, proc.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: leave no child writing into a lake about to be deleted
            proc.kill()
            proc.wait(timeout=10)
            raise
        finally:
            watchdog.cancel()
            poller.stopped.set()
            poller.join(timeout=5)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"python -m etl {' '.join(args)} exited {proc.returncode}:\n{stderr[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Child(seconds, usage.ru_maxrss * 1024 / MB, poller.peak / MB, cpu)  # ru_maxrss is in KiB


def lake_status(lake: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "etl", "status", "--lake", str(lake), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def lake_rows(lake: Path, watermark: str) -> dict[str, int]:
    """Rows per kind in the lake, checking that the pull completed cleanly up to `watermark`."""
    status = lake_status(lake)
    for kind, s in status.items():
        if s["watermark"] != watermark or s["quarantined_rows"] != 0:
            raise AssertionError(f"{kind}: watermark {s['watermark']}, {s['quarantined_rows']} quarantined rows")
    return {kind: s["rows"] for kind, s in status.items()}


# -- backfills -----------------------------------------------------------------------------


def backfill(server: ApiServer, lake: Path, span: tuple[str, str], result: Backfills) -> None:
    """One CLI backfill of both kinds into `lake`, appended to `result`."""
    server_proc = psutil.Process(server.process.pid)
    server_cpu = sum(server_proc.cpu_times()[:2])
    child = run_etl("pull", "--api", server.base, "--lake", str(lake), "--start", span[0], "--end", span[1])
    result.server_cpu_seconds.append(sum(server_proc.cpu_times()[:2]) - server_cpu)
    rows = lake_rows(lake, span[1])
    if result.rows and rows != result.rows:
        raise AssertionError(f"backfill {span}: {rows} rows, an earlier run pulled {result.rows}")
    result.rows = rows
    result.seconds.append(child.seconds)
    result.peak_mb.append(child.peak_mb)
    result.polled_mb.append(child.polled_mb)
    result.cpu_seconds.append(child.cpu_seconds)
    print(
        f"  backfill {span[0][:10]}..{span[1][:10]}: {sum(rows.values()):,} rows, {child.seconds:.2f} s, "
        f"peak RSS {child.peak_mb:.0f} MB (poll {child.polled_mb:.0f} MB), CPU {child.cpu_seconds:.1f} s",
        flush=True,
    )


def bench_backfills(server: ApiServer, work: Path, runs: int, span_runs: int) -> tuple[dict[str, Backfills], Path]:
    """The 1-year backfill `runs` times, then each other span; returns the results and one 1-year lake."""
    results = {"1 year": Backfills()}
    for run in range(runs):
        lake = work / f"year-{run}"
        backfill(server, lake, YEAR, results["1 year"])
        if run + 1 < runs:
            shutil.rmtree(lake)
    if results["1 year"].rows != YEAR_ROWS:
        raise AssertionError(f"1-year backfill: {results['1 year'].rows} rows, expected {YEAR_ROWS}")
    for name, span in SPANS.items():
        results[name] = Backfills()
        for run in range(span_runs):
            lake = work / f"span-{run}"
            backfill(server, lake, span, results[name])
            shutil.rmtree(lake)
    return results, work / f"year-{runs - 1}"


# -- the hourly increment ------------------------------------------------------------------


def increment_in_process(base_url: str, lake: Path) -> tuple[float, dict[str, float]]:
    """What the Airflow task does: one client, pull() of each kind from the watermark to the API's clock."""
    from etl.client import ApiClient
    from etl.datasets import DOORS, ROBOTS
    from etl.lake import Lake
    from etl.pull import pull
    from etl.settings import EtlSettings

    began = time.perf_counter()
    settings = EtlSettings(api_url=base_url, lake=str(lake))
    client = ApiClient(settings, log=lambda line: None)
    try:
        summaries = [pull(client, Lake(str(lake)), data, settings) for data in (DOORS, ROBOTS)]
    finally:
        client.close()
    seconds = time.perf_counter() - began
    rows = {s.kind: s.rows for s in summaries}
    if rows != INCREMENT_ROWS:
        raise AssertionError(f"in-process increment pulled {rows}, expected {INCREMENT_ROWS}")
    return seconds, {s.kind: s.seconds for s in summaries}


def increment_cli(base_url: str, lake: Path) -> float:
    seconds = run_etl("pull", "--api", base_url, "--lake", str(lake)).seconds
    rows = lake_rows(lake, INCREMENT_NOW)
    expected = {kind: YEAR_ROWS[kind] + INCREMENT_ROWS[kind] for kind in YEAR_ROWS}
    if rows != expected:
        raise AssertionError(f"CLI increment: the lake holds {rows} rows, expected {expected}")
    return seconds


@contextlib.contextmanager
def lake_copy(year_lake: Path, work: Path) -> Iterator[Path]:
    """A fresh copy of the backfilled lake, so that every increment does the same work."""
    lake = work / "increment"
    shutil.copytree(year_lake, lake)
    try:
        yield lake
    finally:
        shutil.rmtree(lake)


def bench_increment(year_lake: Path, work: Path, runs: int) -> list[Figure]:
    # Imported before timing, as in an Airflow worker; pandas is not (pyarrow imports it on first use).
    import etl.pull  # noqa: F401

    in_process, per_kind, cli = [], {"doors": [], "robots": []}, []
    with ApiServer(SIM_NOW=INCREMENT_NOW) as server:
        # The first pull() in a process pays for lazy imports: reported apart from the steady state.
        with lake_copy(year_lake, work) as lake:
            first, _ = increment_in_process(server.base, lake)
        for run in range(runs):
            with lake_copy(year_lake, work) as lake:
                seconds, kinds = increment_in_process(server.base, lake)
            in_process.append(seconds)
            for kind, s in kinds.items():
                per_kind[kind].append(s)
            with lake_copy(year_lake, work) as lake:
                cli.append(increment_cli(server.base, lake))
            print(f"  increment run {run + 1}: in-process {in_process[-1]:.3f} s, CLI {cli[-1]:.3f} s", flush=True)
        startup = [run_etl("pull", "--help").seconds for _ in range(runs)]
    target = f"<= {INCREMENT_TARGET_S:g} s"
    return [
        Figure("hourly increment, in-process pull() x 2 kinds", in_process, "s", target, INCREMENT_TARGET_S),
        Figure("  of which pull(DOORS) (39 rows)", per_kind["doors"], "s"),
        Figure("  of which pull(ROBOTS) (1,440 rows)", per_kind["robots"], "s"),
        Figure("  first pull() x 2 kinds in this process", [first], "s", target, INCREMENT_TARGET_S),
        Figure("hourly increment, CLI wall time (both kinds)", cli, "s", target, INCREMENT_TARGET_S),
        Figure("  CLI start-up alone (python -m etl pull --help)", startup, "s"),
    ]


# -- report --------------------------------------------------------------------------------


def backfill_figures(results: dict[str, Backfills]) -> list[Figure]:
    figures = []
    for name, result in results.items():
        rows = f"{sum(result.rows.values()):,} rows"
        target = (f"<= {BACKFILL_TARGET_S:g} s", BACKFILL_TARGET_S) if name == "1 year" else ("-", None)
        figures.append(Figure(f"backfill {name}, CLI wall time ({rows})", result.seconds, "s", *target))
        if name == "1 year":
            figures.append(Figure("  ETL child CPU time (user + system)", result.cpu_seconds, "s"))
            figures.append(Figure("  API server CPU time meanwhile", result.server_cpu_seconds, "s"))
    for name, result in results.items():
        rows = f"{sum(result.rows.values()):,} rows"
        polled = f"poll {statistics.median(result.polled_mb):.0f} MB"
        target = (f"<= {RSS_TARGET_MB:g} MB", RSS_TARGET_MB) if name == "1 year" else ("-", None)
        figures.append(Figure(f"backfill {name}, peak RSS ({rows})", result.peak_mb, "MB", *target, polled))
    ratio = statistics.median(results["2 years"].peak_mb) / statistics.median(results["3 months"].peak_mb)
    figures.append(
        Figure("peak RSS, 2 years / 3 months", [ratio], "x", f"<= {FLAT_RATIO:g} x (flat)", FLAT_RATIO, "medians")
    )
    return figures


def format_value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if unit == "x":
        return f"{value:.2f} x"
    return f"{value:,.0f} {unit}"


def spread(figure: Figure) -> str:
    if len(figure.values) == 1:
        return "1 run"
    low, high = format_value(min(figure.values), figure.unit), format_value(max(figure.values), figure.unit)
    return f"{low} - {high} ({len(figure.values)} runs)"


def print_table(figures: list[Figure]) -> None:
    rows = [("figure", "median", "spread", "target", "result", "note")]
    for f in figures:
        result = "-" if f.ok is None else ("PASS" if f.ok else "FAIL")
        rows.append((f.name, format_value(f.median, f.unit), spread(f), f.target, result, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1], strict=True)), row[-1]]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    missed = [f.name.strip() for f in figures if f.ok is False]
    print(f"\ntargets missed: {', '.join(missed) if missed else 'none'}")


def run(runs: int, span_runs: int, increment_runs: int) -> list[Figure]:
    for name in IGNORED_ENV:
        os.environ.pop(name, None)
    for name in [n for n in os.environ if n.startswith("ETL_")]:
        os.environ.pop(name)
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        work = Path(tmp)
        print(f"backfills (API clock {BACKFILL_NOW}):", flush=True)
        with ApiServer(SIM_NOW=BACKFILL_NOW) as server:
            results, year_lake = bench_backfills(server, work, runs, span_runs)
        print(f"hourly increments (API clock {INCREMENT_NOW}):", flush=True)
        figures = backfill_figures(results) + bench_increment(year_lake, work, increment_runs)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="1-year backfills (median and spread)")
    parser.add_argument("--span-runs", type=int, default=1, help="backfills of 3 months and of 2 years, each")
    parser.add_argument("--increment-runs", type=int, default=7, help="hourly increments per mode (use 5 or more)")
    args = parser.parse_args()
    if min(args.runs, args.span_runs, args.increment_runs) < 1:
        parser.error("every run count must be at least 1")
    print(
        f"ETL benchmark: {args.runs} x 1-year backfill, {args.span_runs} x each other span, "
        f"{args.increment_runs} x hourly increment\n",
        flush=True,
    )
    figures = run(args.runs, args.span_runs, args.increment_runs)
    print()
    print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
