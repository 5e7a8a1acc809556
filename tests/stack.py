"""The whole stack as a new user starts it: a temporary clone, `make up` on free ports, `make down`.

Shared by tests/test_stack.py and bench/stack_bench.py. The clone is of the repository's last
commit (what CI and a new user get), and uses this process's virtual environment (`VENV=`, with
`make -o` so that it is not reinstalled) unless told to make its own.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from tests.support import ROOT, free_port

PASSWORDS = "simple_auth_manager_passwords.json.generated"  # Airflow's simple auth manager, in AIRFLOW_HOME
URL = re.compile(r"http://127\.0\.0\.1:\d+/\S*")


class Stack:
    """A clone of the repository with `make up` running in it (a context manager that always stops it)."""

    def __init__(self, own_venv: bool = False) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="stack-"))
        self.repo = self.tmp / "repo"
        ports = ("API_PORT", "AIRFLOW_PORT", "DASHBOARD_PORT", "MLFLOW_PORT")
        self.ports = {name: free_port() for name in ports}
        venv = Path(sys.prefix) if not own_venv else self.repo / ".venv"  # sys.prefix: the running venv
        self.make_args = [f"{k}={v}" for k, v in self.ports.items()] + [f"VENV={venv}"]
        if not own_venv:  # the running venv is installed already: never rebuild it from the clone
            self.make_args = ["-o", f"{venv}/.installed", *self.make_args]
            # MLflow's own environment: made once beside this checkout's (ignored), then reused by every clone
            mlflow_venv = ROOT / ".venv-mlflow"
            self.make_args.append(f"MLFLOW_VENV={mlflow_venv}")
            if (mlflow_venv / ".installed").exists():
                self.make_args = ["-o", f"{mlflow_venv}/.installed", *self.make_args]
        self.session = requests.Session()
        self.session.trust_env = False
        self.output = ""

    def clone(self) -> Stack:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(self.repo)], check=True, timeout=120)
        return self

    def make(self, target: str, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(["make", target, *self.make_args], cwd=self.repo, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
        self.output += done.stdout + done.stderr
        return done

    def up(self) -> float:
        """`make up`; returns its wall time. Raises with its output when it fails."""
        began = time.monotonic()
        done = self.make("up")
        if done.returncode != 0:
            logs = "".join(
                f"\n--- {log.name}:\n{log.read_text()[-3000:]}" for log in (self.repo / ".run").glob("*.log")
            )
            raise RuntimeError(
                f"make up failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}{logs}"
            )
        return time.monotonic() - began

    def urls(self) -> list[str]:
        """Every URL `make up` printed, in order, without duplicates."""
        return list(dict.fromkeys(u.rstrip(").,") for u in URL.findall(self.output)))

    def airflow_token(self) -> str:
        passwords = json.loads(
            (self.repo / "airflow_home" / "simple_auth_manager_passwords.json.generated").read_text()
        )
        user, password = next(iter(passwords.items()))
        base = f"http://127.0.0.1:{self.ports['AIRFLOW_PORT']}"
        answer = self.session.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=60)
        answer.raise_for_status()
        return answer.json()["access_token"]

    def dag_runs(self, token: str) -> list[dict]:
        base = f"http://127.0.0.1:{self.ports['AIRFLOW_PORT']}"
        headers, params = {"Authorization": f"Bearer {token}"}, {"order_by": "-start_date"}
        answer = self.session.get(f"{base}/api/v2/dags/sensor_pipeline/dagRuns", headers=headers, params=params,
                                  timeout=60)  # fmt: skip
        answer.raise_for_status()
        return answer.json()["dag_runs"]

    def wait_for_dag_run(self, timeout: float) -> dict:
        """The first DAG run that succeeds; raises when one fails or none succeeds in time."""
        token, deadline = self.airflow_token(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                runs = self.dag_runs(token)
            except requests.Timeout:  # a busy api-server: ask again, within the deadline
                continue
            if any(r["state"] == "failed" for r in runs):
                raise RuntimeError(f"a DAG run failed: {runs}")
            done = [r for r in runs if r["state"] == "success"]
            if done:
                return done[0]
            time.sleep(3)
        raise TimeoutError(f"no DAG run succeeded within {timeout:.0f} s: {self.dag_runs(token)}")

    def git_status(self) -> str:
        return subprocess.run(["git", "status", "--porcelain"], cwd=self.repo, capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    def processes(self) -> list[psutil.Process]:
        """Processes running in the clone (what make up started, and their children)."""
        found = []
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if Path(process.cwd()).is_relative_to(self.repo):
                    found.append(process)
        return found

    def __enter__(self) -> Stack:
        return self.clone()

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.make("down", timeout=120)
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                process.kill()
        self.session.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
