"""A real scheduler run: `airflow standalone` on SQLite runs the DAG's catch-up of the last hours.

    .venv/bin/python bench/airflow_bench.py [--hours 3] [--timeout 900]

Starts the simulator API on the wall clock and `airflow standalone` (scheduler, dag-processor,
api-server, triggerer) in a temporary AIRFLOW_HOME, both on 127.0.0.1; waits for Airflow to be
healthy (start-up time), unpauses `sensor_pipeline` with its start `--hours` back and catchup on,
waits (bounded) for that many runs to succeed, audits the lake for those hours, and prints the
start-up time, the time to finish the runs, and the memory of Airflow's processes (peak of their
summed PSS). Exit 0 when every run succeeded and the lake is complete.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.audit import audit_span  # noqa: E402
from etl.datasets import DATASETS  # noqa: E402
from etl.lake import Lake  # noqa: E402
from tests.support import ApiServer, free_port  # noqa: E402

BIN = Path(sys.executable).parent


def tree_memory(process: psutil.Process) -> tuple[int, int]:
    """(processes, summed PSS) of a process tree. PSS splits shared pages among their sharers:
    Airflow forks its workers, and a sum of RSS would count the shared interpreter many times."""
    count, total = 0, 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a process may end while we look
            total += p.memory_full_info().pss
            count += 1
    return count, total


def wait_for(what: str, check, timeout: float, sample=None) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if sample:
            sample()
        if check():
            return time.monotonic() - began
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def runs(db: Path) -> dict[str, int]:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            rows = con.execute("SELECT state, count(*) FROM dag_run WHERE dag_id = 'sensor_pipeline' GROUP BY state")
            return dict(rows.fetchall())
    except sqlite3.Error:
        return {}


def dag_parsed(db: Path) -> bool:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return bool(con.execute("SELECT count(*) FROM dag WHERE dag_id = 'sensor_pipeline'").fetchone()[0])
    except sqlite3.Error:
        return False


def healthy(url: str) -> bool:
    try:
        body = requests.get(url, timeout=2).json()
        return all(body.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))
    except (requests.RequestException, ValueError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="airflow-bench-"))
    home, lake = tmp / "airflow", tmp / "lake"
    now_hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = now_hour - dt.timedelta(hours=args.hours)
    port = free_port()
    with ApiServer(SIM_NOW="") as api:  # the wall clock, as the scheduler's
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # standalone starts `airflow` commands
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__PARALLELISM": "4",  # as make up: the DAG runs at most 2 tasks at once
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "PYTHONPATH": str(ROOT),
            "SENSOR_DAG_START": start.isoformat(),
            "SENSOR_DAG_CATCHUP": "true",
            "AIRFLOW_VAR_SENSOR_API_URL": api.base,
            "AIRFLOW_VAR_SENSOR_LAKE": str(lake),
            "AIRFLOW_VAR_SENSOR_SNAPSHOT_DIR": str(tmp / "snapshot"),
        }
        log = open(tmp / "standalone.log", "w")  # noqa: SIM115 (closed below, after the process)
        began = time.monotonic()
        standalone = subprocess.Popen(
            [str(BIN / "airflow"), "standalone"], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        process, peak = psutil.Process(standalone.pid), [0, 0]

        def sample() -> None:
            count, pss = tree_memory(process)
            if pss > peak[1]:
                peak[:] = [count, pss]
            if standalone.poll() is not None:
                raise RuntimeError(f"airflow standalone exited; see {tmp / 'standalone.log'}")

        try:
            db = home / "airflow.db"
            health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
            startup = wait_for("airflow healthy", lambda: healthy(health), 180, sample)
            wait_for("DAG parsed", lambda: dag_parsed(db), 120, sample)
            subprocess.run([str(BIN / "airflow"), "dags", "unpause", "sensor_pipeline"], env=env,
                           check=True, capture_output=True, timeout=120)  # fmt: skip
            unpaused = time.monotonic()

            def done() -> bool:
                states = runs(db)
                if states.get("failed"):
                    raise RuntimeError(f"a run failed: {states}; see {home / 'logs'}")
                return states.get("success", 0) >= args.hours

            wait_for(f"{args.hours} successful runs", done, args.timeout, sample)
            runs_seconds = time.monotonic() - unpaused
            steady = tree_memory(process)
        finally:
            os.killpg(standalone.pid, signal.SIGINT)
            try:
                standalone.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(standalone.pid, signal.SIGKILL)
                standalone.wait(timeout=30)
            log.close()
        total = time.monotonic() - began

    audits = [audit_span(Lake(str(lake)), data, start, now_hour) for data in DATASETS.values()]
    for audit in audits:
        print(audit.line())
    print(f"airflow standalone healthy after   {startup:6.1f} s")
    print(f"{args.hours} catch-up runs succeeded in  {runs_seconds:6.1f} s after unpausing")
    print(
        f"memory of Airflow's processes      {peak[1] / 2**20:6.0f} MB peak PSS ({peak[0]} processes), "
        f"{steady[1] / 2**20:.0f} MB at the end ({steady[0]} processes)"
    )
    print(f"total                              {total:6.1f} s   (logs: {tmp})")
    return 0 if all(a.ok for a in audits) else 1


if __name__ == "__main__":
    sys.exit(main())
