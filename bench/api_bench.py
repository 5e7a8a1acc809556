"""Benchmark of the simulator API: bulk formats, the legacy route and server memory.

Run from the repo root:  .venv/bin/python bench/api_bench.py [--runs N] [--json PATH]
                         .venv/bin/python bench/api_bench.py --fleet-factor 1 10 100 1000 [--runs N]

It starts its own uvicorn server on a free local port (pinned data clock, raised
row cap), measures with a lean client and always stops the server. It prints one
table of figures against their targets and exits 0 even when a target is missed.
With --fleet-factor it measures instead, for copies of the default fleet with every
store's doors multiplied by each factor (one server each): start-up, one day of doors
(arrow), the same rows over fewer doors and more days, the legacy route, and the
server's peak RSS while API_MAX_STREAMS answers stream at once.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so that `api` and `etl` import when run as a script

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import requests  # noqa: E402

from api.fleet import load_fleet  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench.fleets import write_widened  # noqa: E402
from contract.schemas import DOOR_READINGS, ROBOT_READINGS  # noqa: E402
from etl.wire import decode  # noqa: E402
from tests.support import free_port, stop  # noqa: E402

HOST = "127.0.0.1"
SERVER_ENV = {"SIM_NOW": "2025-01-01T00:00:00Z", "API_MAX_ROWS": "20000000"}
HEALTH_TIMEOUT_S = 30.0
BULK_TIMEOUT_S = 300.0
READ_BLOCK = 1 << 20

YEAR_2024 = {"start": "2024-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}
DOOR_ROWS_2024 = 342_576
DOOR_TARGETS = {"arrow": 5e6, "parquet": 5e6, "csv": 1e6, "ndjson": 0.8e6, "json": 0.8e6}

ROBOT_DAY = {"start": "2024-03-05T00:00:00Z", "end": "2024-03-06T00:00:00Z"}
ROBOT_DAY_ROWS = 34_560
ROBOT_DAY_TARGET_S = 0.1

LEGACY_REQUESTS = 2000
LEGACY_WARMUP = 100
LEGACY_SEED = 20240730
LEGACY_TARGET_MS = 2.0

# 4 robots x 2,500,000 samples of 10 s = 10,000,000 rows; all robots are installed by 2024-01-01.
BIG_START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
BIG_SPAN = {
    "start": BIG_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "end": (BIG_START + dt.timedelta(seconds=25_000_000)).strftime("%Y-%m-%dT%H:%M:%SZ"),
}
BIG_ROWS = 10_000_000
RSS_POLL_S = 0.02
RSS_TARGET_MB = 500.0
ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the Arrow IPC stream's end-of-stream marker

MB = 1024 * 1024


@dataclass
class Figure:
    """One line of the report. `ok` is None for figures without a target."""

    name: str
    value: float
    unit: str
    target: str = "-"
    ok: bool | None = None


# -- the server ----------------------------------------------------------------------------


def start_server(port: int, log: BinaryIO, fleet_file: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, **SERVER_ENV)
    # The default fleet, clock speed, chunking and budget: what the targets were set for.
    for name in ("FLEET_FILE", "SIM_SPEED", "API_CHUNK_ROWS", "API_MEMORY_BUDGET_MB", "API_MAX_STREAMS"):
        env.pop(name, None)
    if fleet_file is not None:
        env["FLEET_FILE"] = str(fleet_file)
    app = ["api.app:app", "--host", HOST, "--port", str(port), "--log-level", "warning"]
    cmd = [sys.executable, "-m", "uvicorn", *app]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_healthy(session: requests.Session, base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with code {server.returncode} before /health answered")
        try:
            if session.get(f"{base}/health", timeout=1.0).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"/health did not answer within {HEALTH_TIMEOUT_S:.0f} s")


def lean_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy lookups or .netrc reads on every request
    return session


# -- bulk readings -------------------------------------------------------------------------


def fetch_table(session: requests.Session, url: str, params: dict, schema: pa.Schema) -> pa.Table:
    """One request, from sending it to the decoded table."""
    with session.get(url, params=params, stream=True, timeout=BULK_TIMEOUT_S) as r:
        r.raise_for_status()
        body = b"".join(r.iter_content(READ_BLOCK))
    return decode(body, params["format"], schema)


def median_seconds(session: requests.Session, url: str, params: dict, schema: pa.Schema, rows: int, runs: int) -> float:
    """Median wall time over `runs` requests after one warm-up; every answer must hold `rows` rows."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        table = fetch_table(session, url, params, schema)
        elapsed = time.perf_counter() - t0
        if table.num_rows != rows:
            raise AssertionError(f"{url} {params}: {table.num_rows:,} rows, expected {rows:,}")
        if i > 0:
            times.append(elapsed)
    return statistics.median(times)


def bench_doors(session: requests.Session, base: str, runs: int) -> tuple[list[Figure], float]:
    """One year of every door in each format; also returns arrow's readings/s for the ratio."""
    figures, rates = [], {}
    for fmt, target in DOOR_TARGETS.items():
        params = {**YEAR_2024, "format": fmt}
        seconds = median_seconds(session, f"{base}/v1/readings/doors", params, DOOR_READINGS, DOOR_ROWS_2024, runs)
        rates[fmt] = DOOR_ROWS_2024 / seconds
        wanted = f">= {target / 1e6:g}M readings/s"
        figures.append(Figure(f"doors 1 year {fmt}: time", seconds, "s"))
        figures.append(Figure(f"doors 1 year {fmt}: rate", rates[fmt], "readings/s", wanted, rates[fmt] >= target))
    return figures, rates["arrow"]


def bench_robot_day(session: requests.Session, base: str, runs: int) -> list[Figure]:
    params = {**ROBOT_DAY, "format": "arrow"}
    seconds = median_seconds(session, f"{base}/v1/readings/robots", params, ROBOT_READINGS, ROBOT_DAY_ROWS, runs)
    return [Figure("robots 1 day arrow: time", seconds, "s", f"< {ROBOT_DAY_TARGET_S} s", seconds < ROBOT_DAY_TARGET_S)]


# -- the legacy route ----------------------------------------------------------------------


def hour_exists(timezone: str, day: dt.date, hour: int) -> bool:
    """False for the local hour skipped when clocks go forward (the API answers 422 there)."""
    tz = ZoneInfo(timezone)
    local = dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz)
    return local.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)


def legacy_paths(count: int, seed: int, fleet_file: Path | None = None) -> list[str]:
    """`count` valid legacy queries: random store, 2024 date, local hour and door, reproducibly drawn."""
    stores = (load_fleet(fleet_file) if fleet_file else load_fleet()).stores  # names, time zones, door counts
    rng = np.random.default_rng(seed)
    first = dt.date(2024, 1, 1)
    paths: list[str] = []
    for _ in range(count * 2):  # a skipped hour is rare: twice the draws is plenty
        store = stores[rng.integers(len(stores))]
        day = first + dt.timedelta(days=int(rng.integers(366)))
        hour, door = int(rng.integers(24)), int(rng.integers(store.doors))
        if day < store.opened or not hour_exists(store.timezone, day, hour):
            continue
        query = {"store_name": store.name, "year": day.year, "month": day.month, "day": day.day, "hour": hour}
        paths.append("/?" + urlencode({**query, "sensor_id": door}))
        if len(paths) == count:
            return paths
    raise RuntimeError(f"drew only {len(paths)} valid legacy queries out of {count * 2}")


def legacy_latencies(port: int, paths: list[str]) -> list[float]:
    """Seconds per request over one keep-alive connection (http.client: the leanest client)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    latencies = []
    try:
        for path in paths:
            t0 = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            latencies.append(time.perf_counter() - t0)
            if response.status != 200:
                raise AssertionError(f"{path}: HTTP {response.status} {body[:200]!r}")
            json.loads(body)  # an integer, or null for a failed door
    finally:
        conn.close()
    return latencies


def bench_legacy(port: int, arrow_rate: float) -> list[Figure]:
    paths = legacy_paths(LEGACY_WARMUP + LEGACY_REQUESTS, LEGACY_SEED)
    legacy_latencies(port, paths[:LEGACY_WARMUP])
    t0 = time.perf_counter()
    latencies = np.array(legacy_latencies(port, paths[LEGACY_WARMUP:])) * 1000
    rate = LEGACY_REQUESTS / (time.perf_counter() - t0)  # sequential: one reading per request
    median = float(np.median(latencies))
    return [
        Figure("legacy: median latency", median, "ms", f"< {LEGACY_TARGET_MS} ms", median < LEGACY_TARGET_MS),
        Figure("legacy: p95 latency", float(np.percentile(latencies, 95)), "ms"),
        Figure("legacy: single-reading rate", rate, "readings/s"),
        Figure("bulk arrow rate / single rate", arrow_rate / rate, "x"),
    ]


# -- server memory -------------------------------------------------------------------------


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and its children."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # gone between listing and reading
            total += child.memory_info().rss
    return total


class RssSampler(threading.Thread):
    """Polls the server's RSS every RSS_POLL_S until stopped; keeps the peak."""

    def __init__(self, proc: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.peak = tree_rss(proc)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(RSS_POLL_S):
            try:
                self.peak = max(self.peak, tree_rss(self.proc))
            except psutil.NoSuchProcess:
                return


def stream_and_count(session: requests.Session, url: str, params: dict) -> tuple[int, int]:
    """Read a body without keeping it: (bytes, X-Row-Count), checking the stream is complete."""
    size, tail = 0, b""
    with session.get(url, params=params, stream=True, timeout=BULK_TIMEOUT_S) as r:
        r.raise_for_status()
        rows = int(r.headers["X-Row-Count"])
        for block in r.iter_content(READ_BLOCK):
            size += len(block)
            tail = (tail + block)[-len(ARROW_EOS) :]
    if tail != ARROW_EOS:
        raise AssertionError("the arrow stream ended without its end-of-stream marker")
    return size, rows


def bench_memory(session: requests.Session, base: str, server_pid: int) -> list[Figure]:
    proc = psutil.Process(server_pid)
    baseline = tree_rss(proc)
    sampler = RssSampler(proc)
    sampler.start()
    t0 = time.perf_counter()
    try:
        size, rows = stream_and_count(session, f"{base}/v1/readings/robots", {**BIG_SPAN, "format": "arrow"})
    finally:
        sampler.stopped.set()
        sampler.join(timeout=5)
    elapsed = time.perf_counter() - t0
    if rows != BIG_ROWS:
        raise AssertionError(f"X-Row-Count is {rows:,}, expected {BIG_ROWS:,}")
    peak = sampler.peak / MB
    return [
        Figure("10M-row arrow stream: baseline RSS", baseline / MB, "MB"),
        Figure("10M-row arrow stream: peak RSS", peak, "MB", f"< {RSS_TARGET_MB:.0f} MB", peak < RSS_TARGET_MB),
        Figure("10M-row arrow stream: time", elapsed, "s"),
        Figure("10M-row arrow stream: body", size / MB, "MB"),
    ]


# -- wider fleets (--fleet-factor) ---------------------------------------------------------

FLEET_DAY = {"start": "2024-07-16T00:00:00Z", "end": "2024-07-17T00:00:00Z"}  # a Tuesday: every store open
FLEET_RATE_TARGET = 5e6
FLEET_LEGACY_REQUESTS = 500
FLEET_EQUAL_ROWS_DAYS = 1000  # days x factor: about the rows of one day of the 1000x fleet at every factor
DEFAULTS = Settings()  # API_MAX_STREAMS answers at once must keep the server within API_MEMORY_BUDGET_MB
LEGACY_WANTED = "< 2.0 ms"


def factor_fleet(factor: int, folder: Path) -> Path:
    """A copy of the default fleet with every store's doors multiplied by `factor`."""
    return write_widened(factor, folder / f"fleet_x{factor}.toml")


def span_of_days(days: int) -> dict:
    end = dt.datetime(2024, 7, 17, tzinfo=dt.UTC)
    start = end - dt.timedelta(days=days)
    return {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}


def door_rows(fleet_file: Path, span: dict) -> int:
    """Rows the server answers for every door over `span`: each door's hours since its store opened."""
    h0 = int(dt.datetime.fromisoformat(span["start"]).timestamp()) // 3600
    h1 = int(dt.datetime.fromisoformat(span["end"]).timestamp()) // 3600
    opened = lambda s: int(s.opened_at.timestamp()) // 3600  # noqa: E731
    return sum(s.doors * max(0, h1 - max(h0, opened(s))) for s in load_fleet(fleet_file).stores)


def parallel_peak(base: str, server_pid: int, params: dict, streams: int) -> float:
    """The server's peak RSS (MB) while `streams` clients read an answer at once."""
    sampler = RssSampler(psutil.Process(server_pid))
    sampler.start()
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with lean_session() as session, session.get(f"{base}/v1/readings/doors", params=params, stream=True,
                                                         timeout=BULK_TIMEOUT_S) as r:  # fmt: skip
                r.raise_for_status()
                for _ in r.iter_content(READ_BLOCK):
                    pass
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(streams)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sampler.stopped.set()
        sampler.join(timeout=5)
    if errors:
        raise errors[0]
    return sampler.peak / MB


def bench_factor(factor: int, folder: Path, runs: int) -> list[Figure]:
    fleet_file = factor_fleet(factor, folder)
    port = free_port()
    base = f"http://{HOST}:{port}"
    session = lean_session()
    day_rows = door_rows(fleet_file, FLEET_DAY)
    equal = span_of_days(max(1, math.ceil(FLEET_EQUAL_ROWS_DAYS / factor)))
    equal_rows = door_rows(fleet_file, equal)
    wanted = f">= {FLEET_RATE_TARGET / 1e6:g}M readings/s"
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        server = start_server(port, log, fleet_file)
        try:
            wait_healthy(session, base, server)
            started = time.perf_counter() - t0
            idle = tree_rss(psutil.Process(server.pid)) / MB
            url = f"{base}/v1/readings/doors"
            day_s = median_seconds(session, url, {**FLEET_DAY, "format": "arrow"}, DOOR_READINGS, day_rows, runs)
            equal_s = median_seconds(session, url, {**equal, "format": "arrow"}, DOOR_READINGS, equal_rows, runs)
            paths = legacy_paths(LEGACY_WARMUP + FLEET_LEGACY_REQUESTS, LEGACY_SEED, fleet_file)
            legacy_latencies(port, paths[:LEGACY_WARMUP])
            legacy_ms = float(np.median(legacy_latencies(port, paths[LEGACY_WARMUP:]))) * 1000
            streams = DEFAULTS.max_streams
            peak = parallel_peak(base, server.pid, {**equal, "format": "json"}, streams)
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            session.close()
            stop(server)
    day_rate, equal_rate = day_rows / day_s, equal_rows / equal_s
    name, budget = f"{factor}x", f"< {DEFAULTS.memory_budget_mb} MB"
    return [
        Figure(f"{name}: start-up to /health", started, "s"),
        Figure(f"{name}: idle RSS", idle, "MB"),
        Figure(f"{name}: 1 day arrow ({day_rows:,} rows): time", day_s, "s"),
        Figure(f"{name}: 1 day arrow: rate", day_rate, "readings/s", wanted, day_rate >= FLEET_RATE_TARGET),
        Figure(
            f"{name}: {equal_rows:,} rows arrow: rate",
            equal_rate,
            "readings/s",
            wanted,
            equal_rate >= FLEET_RATE_TARGET,
        ),
        Figure(f"{name}: legacy median latency", legacy_ms, "ms", LEGACY_WANTED, legacy_ms < LEGACY_TARGET_MS),
        Figure(
            f"{name}: peak RSS, {streams} json answers at once", peak, "MB", budget, peak < DEFAULTS.memory_budget_mb
        ),
    ]


def run_factors(factors: list[int], runs: int) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as folder:
        for factor in factors:
            figures += bench_factor(factor, Path(folder), runs)
    return figures


# -- report --------------------------------------------------------------------------------


def format_value(figure: Figure) -> str:
    if figure.unit == "readings/s":
        return f"{figure.value / 1e6:.2f}M readings/s" if figure.value >= 1e5 else f"{figure.value:,.0f} readings/s"
    if figure.unit == "s":
        return f"{figure.value:.3f} s"
    if figure.unit == "ms":
        return f"{figure.value:.2f} ms"
    if figure.unit == "x":
        return f"{figure.value:,.0f} x"
    return f"{figure.value:,.0f} {figure.unit}"


def print_table(figures: list[Figure]) -> None:
    rows = [("figure", "value", "target", "result")]
    for f in figures:
        rows.append((f.name, format_value(f), f.target, "-" if f.ok is None else ("PASS" if f.ok else "FAIL")))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    missed = [f.name for f in figures if f.ok is False]
    print(f"\ntargets missed: {', '.join(missed) if missed else 'none'}")


def run(runs: int) -> list[Figure]:
    port = free_port()
    base = f"http://{HOST}:{port}"
    session = lean_session()
    with tempfile.TemporaryFile() as log:
        server = start_server(port, log)
        try:
            wait_healthy(session, base, server)
            figures, arrow_rate = bench_doors(session, base, runs)
            figures += bench_robot_day(session, base, runs)
            figures += bench_legacy(port, arrow_rate)
            figures += bench_memory(session, base, server.pid)
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])  # the server's side of the story
            raise
        finally:
            session.close()
            stop(server)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per bulk figure, after one warm-up")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--fleet-factor", type=int, nargs="+", help="measure fleets of N x the default's doors")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.fleet_factor and min(args.fleet_factor) < 1:
        parser.error("--fleet-factor values must be at least 1")
    if args.fleet_factor:
        print(f"API benchmark, fleet factors {args.fleet_factor}: {args.runs} runs per figure (median)\n")
        figures = run_factors(args.fleet_factor, args.runs)
    else:
        print(f"API benchmark: {args.runs} runs per bulk figure (median), {LEGACY_REQUESTS} legacy requests\n")
        figures = run(args.runs)
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in figures], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
