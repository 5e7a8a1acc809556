"""Streamlit Community Cloud: the committed snapshot alone, with only dashboard/requirements.txt.

The test runs the app on `streamlit_data/` as committed, in a process where every package that
dashboard/requirements.txt does not bring (Airflow, FastAPI, requests, ...) refuses to import.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unittest

from tests.support import ROOT

SNAPSHOT = ROOT / "streamlit_data"
MAX_SNAPSHOT_BYTES = 20 * 2**20

# Every tab on the committed snapshot, with the packages Cloud would not have refusing to import.
CLOUD_SCRIPT = r"""
import importlib.abc, json, os, re, sys
from importlib import metadata
from packaging.requirements import Requirement

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def closure(names):
    # The distributions pip would install for these requirements (extras left out).
    seen, todo = set(), [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return seen

lean = [line.split("==")[0] for line in open(sys.argv[2]) if "==" in line.split("#")[0]]
allowed = closure(lean)
BLOCKED = {module for module, dists in metadata.packages_distributions().items()
           if not any(canonical(d) in allowed for d in dists)}
assert {"airflow", "fastapi", "psutil"} <= BLOCKED, "the pipeline's packages are not in the lean set"

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is not installed by dashboard/requirements.txt", name=name)
        return None

sys.meta_path.insert(0, Refuse())
os.environ.pop("DASHBOARD_LAKE", None)
os.environ.pop("DASHBOARD_SNAPSHOT", None)  # the default: streamlit_data/ beside the app
from streamlit.testing.v1 import AppTest

report = {}
for tab in ["Traffic", "Trends", "Tables", "Robots", "Live", "Sensor health", "Alarms", "Model quality", "Pipeline"]:
    at = AppTest.from_file(sys.argv[1], default_timeout=120)
    at.query_params["tab"] = tab
    at.run()
    report[tab] = {
        "exceptions": [e.value for e in at.exception],
        "errors": [e.value for e in at.error],
        "charts": len(at.get("vega_lite_chart")),
        "source": at.sidebar.radio(key="source").value if at.sidebar.radio else None,
    }
print(json.dumps(report))
"""


def pins(path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==") for line in lines if "==" in line)


class CloudTest(unittest.TestCase):
    def test_the_committed_snapshot_is_small_and_complete(self) -> None:
        size = sum(p.stat().st_size for p in SNAPSHOT.rglob("*") if p.is_file())
        self.assertLess(size, MAX_SNAPSHOT_BYTES)
        info = json.loads((SNAPSHOT / "snapshot.json").read_text())
        self.assertTrue(info["status"]["doors"]["watermark"])
        for table in ("door_hourly_sensor", "door_daily_store", "door_anomalies", "door_health", "robot_fits"):
            with self.subTest(table=table):
                self.assertTrue(list((SNAPSHOT / "marts" / table).glob("*/data.parquet")))

    def test_the_dashboard_requirements_match_the_projects_pins(self) -> None:
        lean, full = pins(ROOT / "dashboard" / "requirements.txt"), pins(ROOT / "requirements.txt")
        self.assertNotIn("apache-airflow", lean)
        for package, version in lean.items():
            if package in full:
                self.assertEqual(version, full[package], f"{package} drifted from requirements.txt")
        self.assertTrue(all(re.fullmatch(r"[\d.]+", v) for v in lean.values()), "every package pinned")

    def test_every_tab_runs_on_the_snapshot_without_the_pipelines_packages(self) -> None:
        app, lean = ROOT / "dashboard" / "app.py", ROOT / "dashboard" / "requirements.txt"
        result = subprocess.run(
            [sys.executable, "-c", CLOUD_SCRIPT, str(app), str(lean)],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        report = json.loads(result.stdout.strip().splitlines()[-1])
        for tab, seen in report.items():
            with self.subTest(tab=tab):
                self.assertEqual(seen["exceptions"], [])
                self.assertEqual(seen["errors"], [])
                self.assertEqual(seen["source"], "snapshot")
        self.assertGreater(report["Traffic"]["charts"], 0, "a first visit shows a chart")
        self.assertGreater(report["Robots"]["charts"], 0)


if __name__ == "__main__":
    unittest.main()
