"""The stack as a new user meets it: a temporary clone, `make up` on free ports, one DAG run, `make down`.

Slow (a few minutes: Airflow starts and runs the DAG once), and whole: every URL that `make up`
prints answers, the API's docs load their assets from the API itself, nothing tracked changes,
and `make down` leaves no process behind; then the committed-snapshot test passes in the clone.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from urllib.parse import urljoin, urlparse

from tests import test_quality_registry  # a module import: pytest collects none of its tests here
from tests.stack import Stack

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


class StackTest(unittest.TestCase):
    def test_make_up_runs_the_dag_changes_no_tracked_file_and_make_down_stops_everything(self) -> None:
        with Stack() as stack:
            stack.up()
            urls = stack.urls()
            api = f"http://127.0.0.1:{stack.ports['API_PORT']}/"
            self.assertIn(api + "docs", urls)
            self.assertIn(api + "health", urls)
            self.assertIn(f"http://127.0.0.1:{stack.ports['DASHBOARD_PORT']}/", urls)
            self.assertIn(f"http://127.0.0.1:{stack.ports['AIRFLOW_PORT']}/", urls)
            self.assertIn(f"http://127.0.0.1:{stack.ports['MLFLOW_PORT']}/", urls)
            for url in urls:
                with self.subTest(url=url):
                    self.assertEqual(stack.session.get(url, timeout=30).status_code, 200, url)
            self.check_docs_assets(stack, api + "docs")
            self.check_mlflow_shows_a_trained_model(stack)
            run = stack.wait_for_dag_run(timeout=420)
            self.assertEqual(run["state"], "success")
            self.assertEqual(stack.git_status(), "", "make up changed tracked files (or left untracked ones)")
            self.assertTrue(stack.processes(), "make up left nothing running")
            down = stack.make("down", timeout=120)
            self.assertEqual(down.returncode, 0, down.stderr)
            deadline = time.monotonic() + 20
            while stack.processes() and time.monotonic() < deadline:
                time.sleep(0.5)
            left = [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in stack.processes()]
            self.assertEqual(left, [], "make down left processes running")
            self.assertEqual(stack.git_status(), "")
            cloud = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                    "tests/test_dashboard_cloud.py"], cwd=stack.repo, capture_output=True, text=True,
                                   timeout=300)  # fmt: skip
            self.assertEqual(cloud.returncode, 0, cloud.stdout[-3000:])

    def check_mlflow_shows_a_trained_model(self, stack: Stack) -> None:
        """`models train` into the stack's lake (mlflow-skinny, .venv); MLflow's server (its own venv) lists it."""
        with tempfile.TemporaryDirectory() as tmp:
            made = test_quality_registry.skab_file
            files = [made(Path(tmp, f"{i}.csv"), i, f"2020-03-09 1{i}:00:00") for i in range(4)]
            csvs = [a for f in files for a in ("--csv", str(f))]
            trained = subprocess.run([sys.executable, "-m", "etl", "models", "train", "--lake", "lake",
                                      "--name", "stack-model", *csvs], cwd=stack.repo, capture_output=True,
                                     text=True, timeout=300)  # fmt: skip
        self.assertEqual(trained.returncode, 0, trained.stderr[-3000:])
        base = f"http://127.0.0.1:{stack.ports['MLFLOW_PORT']}/api/2.0/mlflow"
        found = stack.session.get(f"{base}/registered-models/search", timeout=30)
        self.assertEqual(found.status_code, 200, found.text[:500])
        models = {m["name"]: m for m in found.json().get("registered_models", [])}
        self.assertIn("stack-model", models)
        version = models["stack-model"]["latest_versions"][0]
        self.assertEqual(version["version"], "1")
        run = stack.session.get(f"{base}/runs/get", params={"run_id": version["run_id"]}, timeout=30).json()["run"]
        self.assertIn("f1", {m["key"] for m in run["data"]["metrics"]})  # the held-out scores, as registered
        self.assertIn("columns", {p["key"] for p in run["data"]["params"]})

    def check_docs_assets(self, stack: Stack, docs: str) -> None:
        """The docs page and every script and style it loads come from the API itself (no CDN)."""
        page = stack.session.get(docs, timeout=30)
        self.assertEqual(page.status_code, 200)
        assets = [urljoin(docs, a) for a in ASSET.findall(page.text)]
        self.assertTrue(any(a.endswith(".js") for a in assets), assets)
        for asset in assets:
            with self.subTest(asset=asset):
                self.assertEqual(urlparse(asset).netloc, urlparse(docs).netloc, f"{asset} is not served by the API")
                self.assertEqual(stack.session.get(asset, timeout=30).status_code, 200, asset)


if __name__ == "__main__":
    unittest.main()
