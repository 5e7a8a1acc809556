"""Soak and fault bench of the ETL and the API: what breaks, and what the lake looks like after.

Run from the repo root:  .venv/bin/python bench/soak.py [--quick] [--outage SECONDS] [--json PATH]

Everything runs on 127.0.0.1 against its own API servers (pinned data clock), in a temporary
folder, bounded in count and time (about 10 minutes; --quick: about 3). Sections:

  kills      random SIGKILLs during pulls, imports and transforms, each followed by a rerun; at
             the end the lake must equal a clean pull of the same interval (raw and marts, byte for byte)
  side       doors and robots pulls and a transform started side by side, repeatedly
  outage     the API down for a while mid-pull, then back; and down for longer than the retries
  faults     5xx, stalled and cut answers (tests/support.py FaultyProxy), then a storm of 100 %
  disk       a 20 MB tmpfs filled mid-pull and mid-transform (needs root to mount; skipped otherwise)
  downloads  8 parallel year-long robot downloads and 100 aborted ones: the server's peak memory
  legacy     20,000 legacy requests at 500/s (open loop): p50/p99 latency

It prints one line per figure and a table at the end; it exits 1 when a guarantee failed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so that `etl`, `tests.support` and `bench` import when run as a script

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import requests  # noqa: E402

from bench.api_bench import RssSampler, legacy_paths, tree_rss  # noqa: E402
from etl.datasets import DOORS, ROBOTS, Dataset  # noqa: E402
from etl.wire import decode  # noqa: E402
from tests.support import ApiServer, FaultyProxy  # noqa: E402

MB = 1024 * 1024
DOOR_MAP = "ts=ts,store=store,sensor_id=sensor_id,count=count"


@dataclass
class Figure:
    section: str
    name: str
    value: float | str
    unit: str = ""
    ok: bool | None = None  # a guarantee: met or not; None for a plain measurement


FIGURES: list[Figure] = []


def report(section: str, name: str, value: float | str, unit: str = "", ok: bool | None = None) -> None:
    FIGURES.append(Figure(section, name, value, unit, ok))
    mark = "" if ok is None else ("  ok" if ok else "  FAILED")
    shown = f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
    print(f"[{section}] {name}: {shown} {unit}{mark}", flush=True)


# -- helpers ---------------------------------------------------------------------------------


def etl(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "etl", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def run_etl(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "etl", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def error_lines(stderr: str) -> list[str]:
    """stderr without the retry log: what a failed run says."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("retrying GET")]


def clean_failure(result, code: int = 1) -> bool:
    """Exit `code`, one line `error: ...`, no traceback."""
    lines = error_lines(result.stderr if isinstance(result.stderr, str) else "")
    return (
        result.returncode == code
        and len(lines) == 1
        and lines[0].startswith("error: ")
        and "Traceback" not in result.stderr
    )


def api_table(base: str, data: Dataset, start: str, end: str) -> pa.Table:
    session = requests.Session()
    session.trust_env = False
    r = session.get(base + data.route, params={"start": start, "end": end, "format": "arrow"}, timeout=120)
    r.raise_for_status()
    return decode(r.content, "arrow", data.schema).sort_by([(k, "ascending") for k in data.key])


def lake_table(root: Path, data: Dataset, start: str | None = None, end: str | None = None) -> pa.Table:
    files = sorted(Path(root, "raw", data.kind).glob("*/*.parquet"))
    if not files:
        return data.schema.empty_table()
    table = pa.concat_tables(pq.ParquetFile(f).read() for f in files).cast(data.schema)
    if start and end:
        ts = table.column("ts")
        lo, hi = (
            pa.scalar(dt.datetime.fromisoformat(start), ts.type),
            pa.scalar(dt.datetime.fromisoformat(end), ts.type),
        )
        table = table.filter(pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))
    return table.sort_by([(k, "ascending") for k in data.key])


def readable(root: Path) -> bool:
    """Every visible Parquet file of the lake reads whole."""
    try:
        for path in Path(root).rglob("*.parquet"):
            pq.ParquetFile(path).read()
    except Exception:  # any failure to read is the finding
        return False
    return True


def temporaries(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if ".tmp-" in p.name]


def tree_files(root: Path, *parts: str) -> dict[str, bytes]:
    base = Path(root, *parts)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*.parquet"))}


@contextlib.contextmanager
def api_on(port: int | None = None, **env: str):
    server = ApiServer(**env)
    if port is not None:
        server.port, server.base = port, f"http://127.0.0.1:{port}"
    with server:
        yield server


# -- kills -------------------------------------------------------------------------------------


def export_csv(base: str, path: Path, start: str, end: str) -> None:
    """Door readings as a recorded CSV (ISO times): an import of it writes what a pull writes."""
    table = api_table(base, DOORS, start, end)
    ts = pc.strftime(table.column("ts"), format="%Y-%m-%dT%H:%M:%SZ")
    pacsv.write_csv(table.set_column(0, "ts", ts), path)


def soak_kills(base: str, work: Path, wanted: int, budget: float, rng: random.Random) -> None:
    section = "kills"
    start, end = "2024-05-01T00:00:00Z", "2024-05-15T00:00:00Z"
    lake, clean = work / "killed", work / "clean"
    csv = work / "doors.csv"
    export_csv(base, csv, "2024-05-08T00:00:00Z", "2024-05-12T00:00:00Z")
    span = ["--api", base, "--start", start, "--end", end]
    ops = {
        "pull robots": ["pull", *span, "--lake", str(lake), "--kind", "robots"],
        "pull doors": ["pull", *span, "--lake", str(lake), "--kind", "doors"],
        "import-csv": ["import-csv", "--kind", "doors", str(csv), "--map", DOOR_MAP, "--lake", str(lake)],
        "transform": ["transform", "--lake", str(lake)],
        "transform --full": ["transform", "--lake", str(lake), "--full"],
    }
    env = {"ETL_PAGE_ROWS": "100000"}  # 3 days of robots a page: several pages, many writes
    durations = {}
    for name, args in ops.items():  # each once to the end: how long it takes, a full lake
        began = time.monotonic()
        done = run_etl(*args, env=env)
        durations[name] = time.monotonic() - began
        if done.returncode:
            raise RuntimeError(f"{name}: {done.stderr}")
    kills, early, failures, unreadable = dict.fromkeys(ops, 0), 0, [], 0
    deadline = time.monotonic() + budget
    while sum(kills.values()) < wanted and time.monotonic() < deadline:
        name = rng.choice(list(ops))
        proc = etl(*ops[name], env=env)
        time.sleep(rng.uniform(0.4, 0.8 * durations[name]))  # python's start-up takes about 0.4 s
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills[name] += 1
        else:
            early += 1
        proc.communicate(timeout=600)
        unreadable += not readable(lake)
        began = time.monotonic()
        rerun = run_etl(*ops[name], env=env)
        if rerun.returncode:
            failures.append(f"{name}: {last_line(rerun.stderr)}")
        else:  # the next kill of it aims within its latest duration: a busy machine's pace changes
            durations[name] = time.monotonic() - began
    for name in ("pull robots", "pull doors", "transform"):  # where the lake ends
        done = run_etl(*ops[name], env=env)
        if done.returncode:
            failures.append(f"final {name}: {last_line(done.stderr)}")
    for args in (["pull", *span, "--lake", str(clean)], ["transform", "--lake", str(clean)]):
        done = run_etl(*args)
        if done.returncode:
            raise RuntimeError(f"clean {args[0]}: {done.stderr}")
    total = sum(kills.values())
    report(section, "SIGKILLs", total, f"({', '.join(f'{k} {v}' for k, v in kills.items())})", total >= wanted)
    report(section, "runs that ended before their kill (not counted)", early)
    report(section, "reruns that failed", len(failures), "; ".join(failures[:3]), not failures)
    report(section, "lake unreadable after a kill", unreadable, "times", unreadable == 0)
    raw_same = tree_files(lake, "raw") == tree_files(clean, "raw")
    report(section, "raw files byte-identical to a clean pull", str(raw_same), "", raw_same)
    marts, clean_marts = tree_files(lake, "marts"), tree_files(clean, "marts")
    same = sorted(k for k in marts if marts[k] == clean_marts.get(k))
    report(section, "mart files byte-identical to a clean pull's transform", f"{len(same)} of {len(clean_marts)}",
           "", marts.keys() == clean_marts.keys() and len(same) == len(clean_marts))  # fmt: skip
    left = temporaries(lake)
    report(section, "temporary files left after the final runs", len(left), "", not left)
    report(section, "last duration of each command", ", ".join(f"{k} {v:.1f} s" for k, v in durations.items()))


# -- side by side -----------------------------------------------------------------------------


def side_by_side(base: str, work: Path, trials: int) -> None:
    section = "side"
    start, end = "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"
    failures = []
    began = time.monotonic()
    for trial in range(trials):
        root = work / f"side-{trial}"
        span = ["--api", base, "--lake", str(root), "--start", start, "--end", end]
        robots = etl("pull", *span, "--kind", "robots")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not Path(root, "raw", "robots").exists():
            time.sleep(0.005)
        runs = [("robots pull", robots), ("doors pull", etl("pull", *span, "--kind", "doors"))]
        runs.append(("transform", etl("transform", "--lake", str(root))))
        for what, proc in runs:
            _, err = proc.communicate(timeout=600)
            if proc.returncode:
                failures.append(f"trial {trial} {what}: {last_line(err)}")
        if temporaries(root):
            failures.append(f"trial {trial}: temporary files left")
        shutil.rmtree(root)
    report(section, "trials (robots pull, doors pull, transform)", trials)
    report(section, "runs that failed", len(failures), "; ".join(failures[:3]), not failures)
    report(section, "time per trial", (time.monotonic() - began) / trials, "s")


# -- outage ------------------------------------------------------------------------------------


def outage(work: Path, seconds: float) -> None:
    section = "outage"
    first = ApiServer()
    port = first.port
    root = work / "outage"
    start, end = "2024-01-01T00:00:00Z", "2024-07-01T00:00:00Z"  # 182 pages of a day: about 5 s
    env = {"ETL_PAGE_ROWS": "40000", "ETL_RETRIES": "30", "ETL_BACKOFF_SECONDS": "0.5", "ETL_BACKOFF_MAX_SECONDS": "4"}
    with first:
        base = first.base
        proc = etl("pull", "--api", base, "--lake", str(root), "--kind", "robots", "--start", start, "--end", end,
                   env=env)  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(root.glob("raw/robots/*/data.parquet"))) < 3:
            time.sleep(0.01)
    down_at = time.monotonic()  # the server is stopped: mid-pull
    time.sleep(seconds)
    with api_on(port) as second:
        up_at = time.monotonic()
        out, err = proc.communicate(timeout=600)
        done_at = time.monotonic()
        retries = sum(line.startswith("retrying GET") for line in err.splitlines())
        ok = proc.returncode == 0 and lake_table(root, ROBOTS).equals(api_table(second.base, ROBOTS, start, end))
        report(section, f"pull across a {seconds:.0f} s outage", "completed" if ok else f"exit {proc.returncode}",
               "", ok)  # fmt: skip
        report(section, "retries logged (one stderr line each)", retries)
        report(section, "pull finished after the API came back", done_at - up_at, "s")
        report(section, "outage as the pull saw it", up_at - down_at, "s")
        report(section, "what the user sees", last_line(out))
    # down for longer than the retries: a failed run, one line, the pages before kept
    lost = work / "lost"
    began = time.monotonic()
    failed = run_etl("pull", "--api", f"http://127.0.0.1:{port}", "--lake", str(lost), "--kind", "doors",
                     env={"ETL_RETRIES": "3", "ETL_BACKOFF_SECONDS": "0.2"})  # fmt: skip
    report(section, "API down past the retries: clean failure (exit 1, one line)", last_line(failed.stderr)[:90],
           "", clean_failure(failed))  # fmt: skip
    report(section, "... gave up after", time.monotonic() - began, "s")


# -- faults ------------------------------------------------------------------------------------


def quiet(proxy: FaultyProxy) -> FaultyProxy:
    """The proxy without socketserver's traceback when a client hangs up on a stalled answer."""
    proxy.server.handle_error = lambda request, address: None
    return proxy


def faults(base: str, work: Path) -> None:
    section = "faults"
    start, end = "2024-06-01T00:00:00Z", "2024-06-11T00:00:00Z"
    root = work / "faulty"
    env = {"ETL_PAGE_ROWS": "40000", "ETL_READ_TIMEOUT": "1", "ETL_RETRIES": "12", "ETL_BACKOFF_SECONDS": "0.05"}
    with quiet(FaultyProxy(base, fail_rate=0.3, stall_seconds=2.0)) as proxy:
        began = time.monotonic()
        done = run_etl("pull", "--api", proxy.base, "--lake", str(root), "--start", start, "--end", end, env=env)
        seconds = time.monotonic() - began
    exact = all(lake_table(root, d).equals(api_table(base, d, start, end)) for d in (DOORS, ROBOTS))
    report(section, "30 % faulty answers: exactly once", str(done.returncode == 0 and exact), "", done.returncode == 0
           and exact)  # fmt: skip
    report(section, "faults met (500 / stall / cut)", f"{proxy.counts['500']} / {proxy.counts['stall']} / "
           f"{proxy.counts['cut']} of {sum(proxy.counts.values())} requests")  # fmt: skip
    report(section, "pull of 10 days, both kinds, through the faults", seconds, "s")
    before = tree_files(root, "raw")
    with quiet(FaultyProxy(base, fail_rate=1.0, stall_seconds=0.5)) as storm:
        began = time.monotonic()
        failed = run_etl("pull", "--api", storm.base, "--lake", str(root), "--start", start, "--end", end,
                         env={**env, "ETL_RETRIES": "4", "ETL_READ_TIMEOUT": "0.3"})  # fmt: skip
        seconds = time.monotonic() - began
    report(section, "a storm of 100 % faults: clean failure", last_line(failed.stderr)[:90], "", clean_failure(failed))
    report(section, "... lake unchanged", str(tree_files(root, "raw") == before), "", tree_files(root, "raw") == before)
    report(section, "... gave up after", seconds, "s")


# -- disk full ---------------------------------------------------------------------------------


def disk_full(base: str, work: Path, size_mb: int = 20) -> None:
    section = "disk"
    small = work / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(small)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode:
        report(section, "skipped: cannot mount a tmpfs", last_line(mounted.stderr))
        return
    try:
        root = small / "lake"
        start, end = "2024-03-01T00:00:00Z", "2024-06-01T00:00:00Z"  # 92 days of robots: about 80 MB
        full = run_etl("pull", "--api", base, "--lake", str(root), "--kind", "robots", "--start", start, "--end", end,
                       env={"ETL_PAGE_ROWS": "100000"})  # fmt: skip
        report(section, f"pull into a {size_mb} MB tmpfs: clean failure", last_line(full.stderr)[:100], "",
               clean_failure(full))  # fmt: skip
        report(section, "... lake readable", str(readable(root)), "", readable(root))
        report(section, "... temporary files left", len(temporaries(root)), "", not temporaries(root))
        state = json.loads(Path(root, "_state", "robots.json").read_text())
        watermark = state.get("watermark")
        if watermark:
            complete = lake_table(root, ROBOTS, start, watermark).equals(api_table(base, ROBOTS, start, watermark))
            report(section, f"... every reading before the watermark ({watermark}) there", str(complete), "",
                   complete)  # fmt: skip
        report(section, "... the run recorded as", str(state["runs"][0]["status"])[:80])
        used = shutil.disk_usage(small)
        report(section, "... disk used", used.used / MB, "MB")
        transformed = run_etl("transform", "--lake", str(root))
        report(section, "transform on the full disk", last_line(transformed.stderr or transformed.stdout)[:100], "",
               clean_failure(transformed) or transformed.returncode == 0)  # fmt: skip
        report(section, "... lake readable", str(readable(root)), "", readable(root))
        report(section, "... temporary files left", len(temporaries(root)), "", not temporaries(root))
    finally:
        subprocess.run(["umount", str(small)], check=False)


# -- downloads ---------------------------------------------------------------------------------


def downloads(quick: bool) -> None:
    section = "downloads"
    parallel, aborted = (2, 20) if quick else (8, 100)
    span = ("2024-12-01T00:00:00Z" if quick else "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z")
    with api_on() as server:
        proc = psutil.Process(server.process.pid)
        baseline = tree_rss(proc)
        sampler = RssSampler(proc)
        sampler.start()
        results: list[tuple[int, int, float]] = []
        lock = threading.Lock()

        busy = [0]  # 503s answered (API_MAX_STREAMS), each retried after its Retry-After, as the ETL does

        def download(robot: str) -> None:
            session = requests.Session()
            session.trust_env = False
            began, size, status = time.monotonic(), 0, -1
            params = {"start": span[0], "end": span[1], "robot_id": robot, "format": "arrow"}
            for _ in range(100):  # bounded: 100 tries of at most a few seconds each
                try:
                    with session.get(server.base + ROBOTS.route, params=params, stream=True, timeout=600) as r:
                        status = r.status_code
                        if status == 503:
                            with lock:
                                busy[0] += 1
                            time.sleep(float(r.headers.get("Retry-After", "2")))
                            continue
                        for block in r.iter_content(1 << 20):
                            size += len(block)
                        break
                except requests.RequestException:
                    status = -1
                    break
            with lock:
                results.append((status, size, time.monotonic() - began))

        began = time.monotonic()
        threads = [threading.Thread(target=download, args=(f"robot-{i % 4 + 1}",)) for i in range(parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - began
        statuses = sorted({s for s, _, _ in results})
        report(section, f"{parallel} parallel downloads of {span[0][:10]} .. {span[1][:10]} (one robot each)",
               f"HTTP {statuses}", f"{sum(b for _, b, _ in results) / MB:,.0f} MB in {seconds:.1f} s",
               statuses == [200])  # fmt: skip
        report(section, "503s on the way (over API_MAX_STREAMS, retried after Retry-After)", busy[0], "")
        peak_parallel = sampler.peak
        began = time.monotonic()
        todo = iter(range(aborted))

        def abort() -> None:
            while (i := next(todo, None)) is not None:
                session = requests.Session()  # a new connection each: the server sees it go
                session.trust_env = False
                params = {"start": span[0], "end": span[1], "robot_id": f"robot-{i % 4 + 1}", "format": "arrow"}
                with session.get(server.base + ROBOTS.route, params=params, stream=True, timeout=60) as r:
                    next(r.iter_content(64 * 1024), None)  # a first block, then the client goes away
                session.close()

        aborting = [threading.Thread(target=abort) for _ in range(4)]  # 4 at a time
        for t in aborting:
            t.start()
        for t in aborting:
            t.join()
        report(section, f"{aborted} downloads aborted after 64 KB, 4 at a time", time.monotonic() - began, "s")
        session = requests.Session()
        session.trust_env = False
        time.sleep(2)
        sampler.stopped.set()
        sampler.join(timeout=5)
        settled = tree_rss(proc)
        time.sleep(10)
        settled_later = tree_rss(proc)
        healthy = session.get(server.base + "/health", timeout=10).ok
        whole = session.get(server.base + ROBOTS.route, params={"start": span[0], "end": span[1], "format": "arrow"},
                            stream=True, timeout=60)  # fmt: skip
        whole_status = whole.status_code
        whole.close()
        report(section, "server RSS before", baseline / MB, "MB")
        report(section, "server peak RSS, parallel downloads", peak_parallel / MB, "MB")
        report(section, "server peak RSS, whole section", sampler.peak / MB, "MB")
        report(section, "server RSS 2 s after the aborts", settled / MB, "MB")
        report(section, "server RSS 12 s after the aborts", settled_later / MB, "MB")
        report(section, "server healthy after", str(healthy), "", healthy)
        report(section, "all 4 robots over the span in one answer (a year: 12.6 M rows)", f"HTTP {whole_status}")


# -- legacy ------------------------------------------------------------------------------------


def legacy(count: int, rate: float, workers: int = 16) -> None:
    section = "legacy"
    warmup = 200
    paths = legacy_paths(count + warmup, seed=16)
    with api_on() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for path in paths[:warmup]:  # the first requests of a fresh server are slower: not what is measured
            conn.request("GET", path)
            conn.getresponse().read()
        conn.close()
        paths = paths[warmup:]
        latencies = np.zeros(count)
        statuses = np.zeros(count, dtype=int)
        cursor = iter(range(count))
        lock = threading.Lock()
        t0 = time.perf_counter() + 0.5

        def worker() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    break
                due = t0 + i / rate  # open loop: a request's latency counts from when it was due
                with contextlib.suppress(ValueError):
                    time.sleep(due - time.perf_counter())
                try:
                    conn.request("GET", paths[i])
                    response = conn.getresponse()
                    response.read()
                    statuses[i] = response.status
                except (OSError, http.client.HTTPException):
                    statuses[i] = -1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                latencies[i] = time.perf_counter() - due
            conn.close()

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    ms = latencies * 1000
    report(section, f"{count:,} requests offered at {rate:.0f}/s", count / elapsed, "req/s achieved")
    report(section, "p50 latency", float(np.percentile(ms, 50)), "ms")
    report(section, "p99 latency", float(np.percentile(ms, 99)), "ms")
    report(section, "max latency", float(ms.max()), "ms")
    bad = int((statuses != 200).sum())
    codes = sorted(set(statuses.tolist()) - {200})
    report(section, "answers other than 200", bad, f"{codes}" if codes else "", bad == 0)


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer kills, trials and requests (about 3 minutes)")
    parser.add_argument("--outage", type=float, default=None, help="seconds the API is down (default 30; quick 5)")
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs wanted (default 50; quick 10)")
    parser.add_argument("--only", nargs="*", help="sections to run (default all)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    quick = args.quick
    outage_s = args.outage if args.outage is not None else (5.0 if quick else 30.0)
    kills = args.kills if args.kills is not None else (10 if quick else 50)
    sections = set(args.only or ["kills", "side", "outage", "faults", "disk", "downloads", "legacy"])
    rng = random.Random(args.seed)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, api_on() as server:
        work = Path(tmp)
        timings = {}
        steps = [
            ("kills", lambda: soak_kills(server.base, work, kills, 180 if quick else 600, rng)),
            ("side", lambda: side_by_side(server.base, work, 3 if quick else 20)),
            ("outage", lambda: outage(work, outage_s)),
            ("faults", lambda: faults(server.base, work)),
            ("disk", lambda: disk_full(server.base, work)),
            ("downloads", lambda: downloads(quick)),
            ("legacy", lambda: legacy(2_000 if quick else 20_000, 500.0)),
        ]
        for name, step in steps:
            if name in sections:
                t = time.monotonic()
                step()
                timings[name] = time.monotonic() - t
    print(f"\nsoak: {time.monotonic() - began:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items())})")
    failed = [f for f in FIGURES if f.ok is False]
    print(f"{len([f for f in FIGURES if f.ok])} guarantees held, {len(failed)} failed")
    for f in failed:
        print(f"  FAILED [{f.section}] {f.name}: {f.value} {f.unit}")
    if args.json:
        args.json.write_text(json.dumps([asdict(f) for f in FIGURES], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
