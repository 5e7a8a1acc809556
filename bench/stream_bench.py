"""Benchmark of the streaming job: events per second end to end, beside river's HalfSpaceTrees alone.

Run from the repo root:  .venv/bin/python bench/stream_bench.py [--json PATH]

It starts its own API on a free local port serving ../shared's SKAB valve1 files and the
PurpleAir snapshot as replays (read by path; nothing is copied; SHARED_DATA says where
../shared/data is when the repo is a git worktree elsewhere), then measures:

* the detector alone: river HalfSpaceTrees (the job's recipe) scoring and learning the very
  feature vectors the job feeds it, per key, in a plain loop, in CPU time: the ceiling;
* the per-key step alone (impute, scale, score, threshold), without the engine, in CPU time;
* the job end to end (`python -m etl stream`, replays at full speed over HTTP, alerts to a
  fresh lake) with 1 worker, 2 workers in one process and a 2-process cluster: the rate the
  job's own state file reports (records over the wall time from the source reading its first
  record to the last flush, so interpreter start-up is left out), the rate per CPU second of its processes (less a
  one-line run's start-up CPU: the fair comparison on a machine shared with other work) and the
  peak memory (RSS) of its processes;
* recovery: a run with --recovery killed half way, then restarted: the time from the restart
  to its first flush, and whether the alerts equal an uninterrupted run's.

It prints one table and exits 0 even when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from etl.stream.detectors import DETECTORS  # noqa: E402
from etl.stream.records import parse as parse_line  # noqa: E402
from etl.stream.records import replay_shape  # noqa: E402
from etl.stream.step import StepParams, impute, init_state, scale, step  # noqa: E402
from tests.support import ApiServer, free_port  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA") or ROOT.parent / "shared" / "data")  # ../shared/data beside the repo
SKAB = SHARED / "skab" / "valve1"
AIR = SHARED / "air-quality" / "purpleair-snapshot.json"
AIR_FIELDS = ("pm1.0_cf_1", "humidity", "temperature", "pressure")  # the reference flow's fields


def lines(api: ApiServer, name: str) -> list[bytes]:
    response = api.get(f"/v1/stream/replay/{name}", speed=1e9)
    return [line for line in response.content.split(b"\n") if line]


def readings(api: ApiServer, names: list[str], fields: list[str], one_key: bool) -> list:
    shape = replay_shape(fields)
    out = []
    for name in names:
        for i, line in enumerate(lines(api, name)):
            r = parse_line(name, str(i), line, 0.0, shape)
            if not isinstance(r, dict):
                out.append(dataclasses.replace(r, sensor=name) if one_key else r)
    return out


def detector_alone(rs: list, n_features: int) -> dict:
    """HalfSpaceTrees on the job's own scaled vectors, per key, in CPU time (the vectors are made first)."""
    params = StepParams(n_features)
    states, vectors = {}, []
    for r in rs:
        s = states.setdefault(r.sensor, init_state(params))
        vectors.append((r.sensor, scale(s, impute(s, r.values), params.clip_sigmas)))
        s["n"] += 1
    hst = DETECTORS["hst"]
    models = {k: hst.init({}, n_features) for k in states}
    began = time.process_time()
    for key, u in vectors:
        _, models[key] = hst.step(models[key], u)
    hst_s = time.process_time() - began
    same_ts_ok = len(states) == 1
    steps, params = {}, StepParams(n_features, same_ts_ok=same_ts_ok)
    began = time.process_time()
    for r in rs:
        steps[r.sensor], _ = step(steps.get(r.sensor), r, params)
    step_s = time.process_time() - began
    return {"events": len(rs), "keys": len(states), "hst_per_s": len(rs) / hst_s, "step_per_s": len(rs) / step_s}


def child_cpu() -> float:
    """CPU seconds of every child process waited for so far (the API server is still running: not in it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_job(api: ApiServer, lake: Path, sources: list[str], extra: list[str], processes: int = 1) -> dict:
    base = [sys.executable, "-m", "etl", "stream", "--api", api.base, "--lake", str(lake), "--speed", "1e9",
            "--quiet", *(a for s in sources for a in ("--source", s)), *extra]  # fmt: skip
    if processes > 1:
        addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
        cmds = [[*base, "-i", str(i), "-a", addresses] for i in range(processes)]
    else:
        cmds = [base]
    cpu0 = child_cpu()
    procs = [subprocess.Popen(c, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    peak = 0
    while any(p.poll() is None for p in procs):
        rss = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):  # it just ended
                rss += psutil.Process(p.pid).memory_info().rss
        peak = max(peak, rss)
        time.sleep(0.1)
    for p in procs:
        if p.returncode != 0:
            raise RuntimeError(f"job failed: {p.stderr.read().decode()[-1500:]}")
    cpu = child_cpu() - cpu0
    state = json.loads((lake / "_state" / "stream.json").read_text())
    return {"rate": state["rate_per_second"], "records": state["records_in"], "alerts": state["alerts"],
            "peak_mb": peak / 2**20, "cpu_s": cpu}  # fmt: skip


def startup_cpu(api: ApiServer, tmp: Path) -> float:
    """CPU seconds of a job that reads one line: the interpreter, imports and engine start-up."""
    one = tmp / "one.ndjson"
    one.write_text('{"ts": "2025-01-01T00:00:00Z", "sensor": "x", "v": 1.0}\n')
    cpu0 = child_cpu()
    subprocess.run([sys.executable, "-m", "etl", "stream", "--source", f"file:{one}", "--kind", "replay", "--fields",
                    "v", "--lake", str(tmp / "one-lake"), "--quiet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return child_cpu() - cpu0


def alerts_of(lake: Path) -> pa.Table:
    files = sorted((lake / "alerts" / "stream").glob("date=*/part-*.parquet"))
    return pa.concat_tables([pq.ParquetFile(f).read() for f in files]).sort_by("key")


def recovery(api: ApiServer, tmp: Path, sources: list[str], reference: Path) -> dict:
    """Kill a run half way (replays at a pace that makes it last ~10 s), restart it, time the resume."""
    lake, folder = tmp / "recovery-lake", tmp / "recovery"
    cmd = [sys.executable, "-m", "etl", "stream", "--api", api.base, "--lake", str(lake), "--quiet",
           "--recovery", str(folder), "--snapshot-seconds", "1",
           *(a for s in sources for a in ("--source", s))]  # fmt: skip
    first = subprocess.Popen([*cmd, "--speed", "120"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = lake / "_state" / "stream.json"
    total = json.loads((reference / "_state" / "stream.json").read_text())["records_in"]
    while first.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text())["records_in"] > total / 2:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = json.loads(state_file.read_text())["records_in"]
    began = time.monotonic()
    again = subprocess.Popen([*cmd, "--speed", "1e9"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    resumed, wall = None, time.time()
    while again.poll() is None:
        parts = [json.loads(p.read_text()) for p in (lake / "_state" / "stream").glob("part-*.json")]
        if resumed is None and any((p.get("run_started") or 0) > wall for p in parts):
            resumed = time.monotonic() - began  # the restart's first record reached a sink
        time.sleep(0.02)
    if again.returncode != 0:
        raise RuntimeError(again.stderr.read().decode()[-1500:])
    state = json.loads(state_file.read_text())
    return {"killed_at": killed_at, "total": total, "resume_s": resumed or time.monotonic() - began,
            "reprocessed": state["this_run"], "records_in": state["records_in"],
            "same_alerts": alerts_of(lake).equals(alerts_of(reference))}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not SKAB.exists() or not AIR.exists():
        print(f"error: needs {SKAB} and {AIR}", file=sys.stderr)
        return 2
    skab_names = [f"valve1-{p.stem}" for p in sorted(SKAB.glob("*.csv"))]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name, ApiServer(API_REPLAY_PATHS=f"{SKAB}:{AIR}") as api:
        tmp = Path(tmp_name)
        listing = {r["name"]: r for r in api.get("/v1/replays").json()}
        cases = {
            "SKAB valve1 (16 keys x 8 fields)": (
                [f"replay:{n}" for n in skab_names],
                [],
                False,
                listing[skab_names[0]]["columns"],
            ),
            "PurpleAir snapshot (1 key x 4 fields)": (
                ["replay:purpleair-snapshot"],
                ["--one-key", "--fields", ",".join(AIR_FIELDS)],
                True,
                list(AIR_FIELDS),
            ),
        }
        baseline = startup_cpu(api, tmp)
        results["startup_cpu_s"] = baseline
        for label, (sources, extra, one_key, fields) in cases.items():
            names = [s.removeprefix("replay:") for s in sources]
            row = detector_alone(readings(api, names, fields, one_key), len(fields))
            for runs, flags, procs in (("1 worker", [], 1), ("2 workers", ["-w", "2"], 1), ("2 processes", [], 2)):
                lake = tmp / f"{label[:4]}-{runs}".replace(" ", "_")
                row[runs] = run = run_job(api, lake, sources, extra + flags, procs)
                run["cpu_rate"] = run["records"] / max(1e-9, run["cpu_s"] - procs * baseline)
            results[label] = row
            print(f"{label}: {json.dumps(row, default=float)}", flush=True)
        reference = tmp / "SKAB-1_worker"
        results["recovery"] = recovery(api, tmp, cases["SKAB valve1 (16 keys x 8 fields)"][0], reference)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


def print_table(results: dict) -> None:
    print(f"\nevents per second (wall; per CPU second, start-up of {results['startup_cpu_s']:.1f} CPU s left out)")
    print(f"{'data set':38} {'HST alone':>9} {'step':>7} {'1 worker':>15} {'2 workers':>15} {'2 procs':>15} "
          f"{'1w CPU/HST':>10} {'peak MB':>12}")  # fmt: skip
    for label, r in results.items():
        if not isinstance(r, dict) or "hst_per_s" not in r:
            continue
        runs = [r[k] for k in ("1 worker", "2 workers", "2 processes")]
        print(f"{label:38} {r['hst_per_s']:>9,.0f} {r['step_per_s']:>7,.0f} "
              + " ".join(f"{x['rate']:>7,.0f}/{x['cpu_rate']:<7,.0f}" for x in runs)
              + f" {runs[0]['cpu_rate'] / r['hst_per_s']:>10.0%} "
              + "/".join(f"{x['peak_mb']:.0f}" for x in runs).rjust(12))  # fmt: skip
    rec = results["recovery"]
    print(f"\nrecovery: killed at {rec['killed_at']:,} of {rec['total']:,} records; restart resumed in "
          f"{rec['resume_s']:.1f} s (process start included), re-read {rec['reprocessed']:,} records, "
          f"counted {rec['records_in']:,}; alerts equal to an uninterrupted run: {rec['same_alerts']}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
