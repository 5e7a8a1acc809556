"""Benchmark of the streaming job: events per second end to end, beside river's HalfSpaceTrees alone.

Run from the repo root:  .venv/bin/python bench/stream_bench.py [--json PATH]

It starts its own API on a free local port serving ../shared's SKAB valve1 files and the
PurpleAir snapshot as replays (read by path; nothing is copied; SHARED_DATA says where
../shared/data is when the repo is a git worktree elsewhere), then measures:

* the detector alone: river HalfSpaceTrees (the job's recipe) scoring and learning the very
  feature vectors the job feeds it, per key, in a plain loop, in CPU time: the ceiling; timed
  just before and just after each job run (the machine's load drifts), the job compared with
  the mean of the two times;
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
import datetime as dt
import json
import os
import pickle
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from etl.stream import settle_collector  # noqa: E402
from etl.stream.detectors import DETECTORS  # noqa: E402
from etl.stream.records import parse as parse_line  # noqa: E402
from etl.stream.records import replay_shape  # noqa: E402
from etl.stream.step import Reading, StepParams, impute, init_state, scale, step  # noqa: E402
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


def scaled_vectors(rs: list, n_features: int) -> list[tuple[str, list[float]]]:
    """The job's own scaled feature vectors (impute, then scale, per key), in the readings' order."""
    params = StepParams(n_features)
    states, vectors = {}, []
    for r in rs:
        s = states.setdefault(r.sensor, init_state(params))
        vectors.append((r.sensor, scale(s, impute(s, r.values), params.clip_sigmas)))
        s["n"] += 1
    return vectors


def hst_seconds(vectors: list[tuple[str, list[float]]], n_features: int) -> float:
    """CPU seconds of HalfSpaceTrees scoring and learning the vectors, a fresh model per key."""
    hst = DETECTORS["hst"]
    models = {k: hst.init({}, n_features) for k, _ in vectors}
    settle_collector()  # the collector's settings of the job (etl stream), for a like comparison
    began = time.process_time()
    for key, u in vectors:
        _, models[key] = hst.step(models[key], u)
    return time.process_time() - began


def hst_seconds_fresh(vectors_file: Path, n_features: int) -> float:
    """hst_seconds in a fresh interpreter, as the job runs in one, so that both start from a fresh
    heap and layout. (A check timed both ways alike, 15-17k/s on SKAB: this removes a difference of
    conditions, not a bias measured.)"""
    out = subprocess.run([sys.executable, __file__, "--hst-alone", str(vectors_file), str(n_features)], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return float(out.split()[-1])


def detector_alone(rs: list, n_features: int, vectors_file: Path) -> dict:
    """HalfSpaceTrees on the job's own scaled vectors, per key, in CPU time (the vectors are made first),
    and the per-key step alone."""
    hst_s = hst_seconds_fresh(vectors_file, n_features)
    keys = {r.sensor for r in rs}
    steps, params = {}, StepParams(n_features, same_ts_ok=len(keys) == 1)
    settle_collector()  # as the job does (the step alone runs in this process)
    began = time.process_time()
    for r in rs:
        steps[r.sensor], _ = step(steps.get(r.sensor), r, params)
    step_s = time.process_time() - began
    return {"events": len(rs), "keys": len(keys), "hst_before_s": hst_s, "step_per_s": len(rs) / step_s}


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
            "peak_mb": peak / 2**20, "cpu_s": cpu, "job_cpu_s": state["cpu_seconds"],
            "dead_letters": state["dead_letters"],
            "job_cpu_rate": state["records_in"] / max(1e-9, state["cpu_seconds"])}  # fmt: skip


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


def robot_lines(path: Path, keys: int, per_key: int) -> None:
    """Robot-like NDJSON (8 axes, each moving 7 samples of 20 and exactly 0 at rest) for `keys` robots."""
    rng = np.random.default_rng(1)
    with path.open("w") as out:
        for t in range(per_key):
            stamp = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=10 * t)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            noise = rng.normal(size=(keys, 8))
            for k in range(keys):
                axes = {
                    f"axis{i + 1}": (round(5 + noise[k, i], 4) if (t + 3 * i + k) % 20 < 7 else 0.0) for i in range(8)
                }
                out.write(json.dumps({"ts": stamp, "sensor": f"robot-{k}", **axes}) + "\n")


def memory(tmp: Path, api: ApiServer) -> dict:
    """Peak RSS of the job with 1 key and with 1,000 (the same 100,000 readings), per detector."""
    out = {}
    for keys in (1, 1000):
        path = tmp / f"robots-{keys}.ndjson"
        robot_lines(path, keys, 100_000 // keys)
        for detector in ("motion", "hst"):
            lake = tmp / f"mem-{keys}-{detector}"
            source = [f"file:{path}"]
            extra = ["--kind", "replay", "--fields", ",".join(f"axis{i}" for i in range(1, 9)), "--detector", detector]
            run = run_job(api, lake, source, extra)
            out[f"{keys} keys, {detector}"] = run
            print(f"memory, {keys} keys, {detector}: {run['peak_mb']:.0f} MB peak, {run['records']:,} records, "
                  f"{run['dead_letters']:,} dead letters (over the budget)", flush=True)  # fmt: skip
    return out


QUALITY_DETECTORS = ("hst", "zscore", "hotelling", "motion")
BUCKET_US = 600_000_000  # etl quality's robot bucket: 10 minutes


def step_levels(detector: str, keys: list[str], ts: np.ndarray, rows: list[tuple]) -> tuple[list[dict], list[str]]:
    """The job's per-key step over readings in time order (in process: the function the engine calls):
    its alerts (latest version per key) and each reading's level."""
    params = StepParams(len(rows[0]), DETECTORS[detector])
    states, alerts, levels = {}, {}, []
    for key, t, values in zip(keys, ts.tolist(), rows, strict=True):
        states[key], out = step(states.get(key), Reading(key, t, "", values, 0.0), params)
        for kind, row in out:
            if kind == "alert":
                alerts[row["key"]] = row
            elif kind == "score":
                levels.append(row[3])
    return list(alerts.values()), levels


def robot_buckets(alerts: list[dict], robots: list[str], ts: np.ndarray, events: list[dict]) -> dict:
    """Per robot and 10-minute bucket, as etl quality's stream_points.sql: labelled when an injected anomaly
    block overlaps it, alarmed when an alert does; a robot's first 2 hours are left out (robot_fits needs
    12 buckets of trend before it judges)."""
    us = lambda text: int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000)  # noqa: E731
    robot_of = np.array(robots)
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for robot in sorted(set(robots)):
        mine = ts[robot_of == robot]
        b0, b1 = mine.min() // BUCKET_US + 12, mine.max() // BUCKET_US
        label, alarm = np.zeros(b1 - b0 + 1, bool), np.zeros(b1 - b0 + 1, bool)
        for e in events:
            if e["type"] == "anomaly" and e["robot_id"] == robot:
                label[max(0, us(e["start"]) // BUCKET_US - b0) : max(0, (us(e["end"]) - 1) // BUCKET_US - b0 + 1)] = (
                    True
                )
        for a in alerts:
            if a["sensor"] == robot:
                end = a["end"] if a["end"] is not None else int(mine.max())
                alarm[max(0, a["start"] // BUCKET_US - b0) : max(0, end // BUCKET_US - b0 + 1)] = True
        for k, v in (("tp", label & alarm), ("fp", ~label & alarm), ("fn", label & ~alarm), ("tn", ~label & ~alarm)):
            counts[k] += int(v.sum())
    counts["f1"] = 2 * counts["tp"] / max(1, 2 * counts["tp"] + counts["fp"] + counts["fn"])
    return counts


def quality(skab: Path) -> int:
    """The stream detectors' quality: the simulator's robots (7 days, per robot bucket against /v1/events)
    and SKAB (SKAB's protocol, bench/skab_bench.py's scoring: the step's first 400 readings train)."""
    from bench.skab_bench import TRAIN_ROWS, load
    from bench.skab_bench import scores as skab_scores

    with ApiServer() as api:  # SIM_NOW pinned at 2025-01-01
        span = {"start": "2024-12-25T00:00:00Z", "end": "2025-01-01T00:00:00Z"}
        table = pa.ipc.open_stream(api.get("/v1/readings/robots", **span, format="arrow").content).read_all()
        events = api.get("/v1/events", kind="robots", **span).json()
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    robots = table.column("robot_id").to_pylist()
    rows = list(zip(*(table.column(f"axis{i}").to_pylist() for i in range(1, 9)), strict=True))
    print(f"robots: {len(ts):,} readings of {len(set(robots))} robots, "
          f"{sum(e['type'] == 'anomaly' for e in events)} anomaly blocks")  # fmt: skip
    for name in QUALITY_DETECTORS:
        alerts, _ = step_levels(name, robots, ts, rows)
        c = robot_buckets(alerts, robots, ts, events)
        print(f"| robots, {name} | {c['f1']:.3f} | {c['tp']} | {c['fp']} | {c['fn']} | {len(alerts)} |", flush=True)
    series, _, _ = load(skab)
    print(f"SKAB: {len(series)} labelled files")
    for name in QUALITY_DETECTORS:
        alarms = []
        for s in series:
            _, levels = step_levels(name, ["k"] * len(s.rows), np.arange(len(s.rows)) * 1_000_000,
                                    [tuple(r) for r in s.rows.tolist()])  # fmt: skip
            alarms.append(np.array([lv != "" for lv in levels[TRAIN_ROWS:]]))
        r = skab_scores(series, alarms)
        print(f"| SKAB, {name} | {r['f1']:.3f} | {r['far']:.2f} | {r['mar']:.2f} | {r['standard']:.2f} |", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--runs", type=int, default=3, help="repeats of the detector alone and the 1-worker job")
    parser.add_argument("--quality", action="store_true", help="only the detectors' quality (robots, SKAB)")
    parser.add_argument("--ratio-only", action="store_true", help="only the detector alone and the 1-worker job")
    parser.add_argument("--hst-alone", nargs=2, metavar=("VECTORS", "N"), help=argparse.SUPPRESS)  # one timing
    args = parser.parse_args()
    if args.hst_alone:
        with open(args.hst_alone[0], "rb") as f:
            vectors = pickle.load(f)
        print(hst_seconds(vectors, int(args.hst_alone[1])))
        return 0
    if not SKAB.exists() or not AIR.exists():
        print(f"error: needs {SKAB} and {AIR}", file=sys.stderr)
        return 2
    if args.quality:
        return quality(SHARED / "skab")
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
            rs = readings(api, names, fields, one_key)
            vectors_file = tmp / f"{label[:4]}-vectors.pickle"
            vectors_file.write_bytes(pickle.dumps(scaled_vectors(rs, len(fields))))
            repeats = []
            for n in range(args.runs):  # the detector alone, the job, the detector alone again: N times
                row = detector_alone(rs, len(fields), vectors_file)
                lake = tmp / f"{label[:4]}-1_worker-{n}".replace(" ", "_")
                row["1 worker"] = run = run_job(api, lake, sources, extra, 1)
                # the machine is shared: its load drifts, so the detector is timed on both sides of
                # the job, and the job compared with their mean time
                row["hst_after_s"] = hst_seconds_fresh(vectors_file, len(fields))
                row["hst_per_s"] = len(rs) / ((row["hst_before_s"] + row["hst_after_s"]) / 2)
                row["hst_before_per_s"], row["hst_after_per_s"] = (
                    len(rs) / row[k] for k in ("hst_before_s", "hst_after_s")
                )
                run["cpu_rate"] = run["records"] / max(1e-9, run["cpu_s"] - baseline)
                row["ratio_cpu"] = run["job_cpu_rate"] / row["hst_per_s"]
                row["ratio_wall"] = run["rate"] / row["hst_per_s"]
                repeats.append(row)
                print(f"{label} run {n + 1}: {json.dumps(row, default=float)}", flush=True)
            row = dict(repeats[0])
            row["runs"] = repeats
            row["median_ratio_cpu"] = statistics.median(r["ratio_cpu"] for r in repeats)
            row["median_ratio_wall"] = statistics.median(r["ratio_wall"] for r in repeats)
            row["hst_per_s"] = statistics.median(r["hst_per_s"] for r in repeats)
            row["step_per_s"] = statistics.median(r["step_per_s"] for r in repeats)
            row["1 worker"] = {k: statistics.median(r["1 worker"][k] for r in repeats)
                               for k in ("rate", "cpu_rate", "job_cpu_rate", "peak_mb")}  # fmt: skip
            for runs, flags, procs in (
                () if args.ratio_only else (("2 workers", ["-w", "2"], 1), ("2 processes", [], 2))
            ):
                lake = tmp / f"{label[:4]}-{runs}".replace(" ", "_")
                row[runs] = run = run_job(api, lake, sources, extra + flags, procs)
                run["cpu_rate"] = run["records"] / max(1e-9, run["cpu_s"] - procs * baseline)
            results[label] = row
        if args.ratio_only:
            print_ratios(results)
            return 0
        reference = tmp / "SKAB-1_worker-0"
        results["recovery"] = recovery(api, tmp, cases["SKAB valve1 (16 keys x 8 fields)"][0], reference)
        results["memory"] = memory(tmp, api)
    print_table(results)
    print_ratios(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


def print_ratios(results: dict) -> None:
    print("\njob (1 worker) / HalfSpaceTrees alone, each run; per CPU second of the job's run, and wall")
    for label, r in results.items():
        if isinstance(r, dict) and "runs" in r:
            cpu = ", ".join(f"{x['ratio_cpu']:.0%}" for x in r["runs"])
            wall = ", ".join(f"{x['ratio_wall']:.0%}" for x in r["runs"])
            print(f"{label:38} CPU {cpu} (median {r['median_ratio_cpu']:.0%}); wall {wall} "
                  f"(median {r['median_ratio_wall']:.0%})")  # fmt: skip


def print_table(results: dict) -> None:
    print("\nevents per second (wall / per CPU second of the job's run, start-up left out); medians of the runs")
    print(f"{'data set':38} {'HST alone':>9} {'step':>7} {'1 worker':>15} {'2 workers':>15} {'2 procs':>15} "
          f"{'1w/HST CPU':>10} {'1w/HST wall':>11} {'peak MB':>12}")  # fmt: skip
    for label, r in results.items():
        if not isinstance(r, dict) or "hst_per_s" not in r:
            continue
        runs = [r[k] for k in ("1 worker", "2 workers", "2 processes")]
        print(f"{label:38} {r['hst_per_s']:>9,.0f} {r['step_per_s']:>7,.0f} "
              + " ".join(f"{x['rate']:>7,.0f}/{x['job_cpu_rate']:<7,.0f}" for x in runs)
              + f" {r['median_ratio_cpu']:>10.0%} {r['median_ratio_wall']:>11.0%} "
              + "/".join(f"{x['peak_mb']:.0f}" for x in runs).rjust(12))  # fmt: skip
    rec = results["recovery"]
    print(f"\nrecovery: killed at {rec['killed_at']:,} of {rec['total']:,} records; restart resumed in "
          f"{rec['resume_s']:.1f} s (process start included), re-read {rec['reprocessed']:,} records, "
          f"counted {rec['records_in']:,}; alerts equal to an uninterrupted run: {rec['same_alerts']}")  # fmt: skip
    print("\npeak RSS (MB), 100,000 robot-like readings, ETL_MEMORY_BUDGET_MB as set:")
    for label, run in results["memory"].items():
        print(f"  {label:22} {run['peak_mb']:6.0f} MB   scored {run['records'] - run['dead_letters']:,}, "
              f"refused over the budget {run['dead_letters']:,}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
