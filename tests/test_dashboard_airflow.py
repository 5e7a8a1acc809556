"""The Pipeline tab's view of the hourly DAG: Airflow's REST API (stubbed on 127.0.0.1, see
tests/dashboard_support.AirflowStub), and what the page says when Airflow cannot answer."""

from __future__ import annotations

import os
import socket
import time
import unittest
from pathlib import Path
from unittest import mock

from streamlit.testing.v1 import AppTest

from dashboard import dag_runs
from dashboard.config import DashboardSettings
from tests.dashboard_support import AirflowStub, built_snapshot
from tests.support import free_port

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


class DagRunsTest(unittest.TestCase):
    def test_the_last_runs_come_newest_first_with_a_sentence(self) -> None:
        with AirflowStub() as stub:
            result = dag_runs.last_runs(stub.url, stub.USER, stub.PASSWORD)
        self.assertEqual(result.state, "ok")
        self.assertEqual([r["state"] for r in result.runs], ["failed", "success"])
        self.assertIn(
            "The last run (scheduled__2024-12-10T01:00:00+00:00) failed at 2024-12-10 01:03 UTC", result.message
        )
        self.assertIn("1 of the last 2 runs failed", result.message)
        method, path, params = stub.seen[-1]
        self.assertEqual((method, path), ("GET", "/api/v2/dags/sensor_pipeline/dagRuns"))
        self.assertEqual(params, {"order_by": ["-run_after"], "limit": ["10"]}, "the newest runs, not the oldest")

    def test_a_dag_that_never_ran(self) -> None:
        with AirflowStub(runs=[]) as stub:
            result = dag_runs.last_runs(stub.url, stub.USER, stub.PASSWORD)
        self.assertEqual((result.state, result.runs), ("ok", []))
        self.assertIn("has not run yet", result.message)

    def test_refused_credentials_are_named(self) -> None:
        with AirflowStub() as stub:
            result = dag_runs.last_runs(stub.url, stub.USER, "wrong")
        self.assertEqual(result.state, "auth refused")
        self.assertIn("DASHBOARD_AIRFLOW_PASSWORD", result.message)

    def test_an_unreachable_airflow_is_a_sentence_not_a_hang(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        result = dag_runs.last_runs(url, "u", "p")
        self.assertEqual(result.state, "unreachable")
        self.assertIn(f"Airflow at {url} is unreachable", result.message)

    def test_an_airflow_that_never_answers_costs_the_page_seconds_not_minutes(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never replies
            url = f"http://127.0.0.1:{silent.getsockname()[1]}"
            began = time.monotonic()
            result = dag_runs.last_runs(url, "u", "p")
        self.assertEqual(result.state, "unreachable")
        self.assertLess(time.monotonic() - began, dag_runs.TIMEOUT_SECONDS + 2)

    def test_a_server_that_is_not_airflow(self) -> None:
        with AirflowStub() as stub:
            result = dag_runs.last_runs(stub.url + "/nothing", stub.USER, stub.PASSWORD)
        self.assertEqual(result.state, "error")
        self.assertIn("404", result.message)

    def test_the_settings_come_from_the_environment(self) -> None:
        env = {"DASHBOARD_AIRFLOW_URL": " http://127.0.0.1:8080/ ", "DASHBOARD_AIRFLOW_USER": "admin",
               "DASHBOARD_AIRFLOW_PASSWORD": "p w"}  # fmt: skip
        settings = DashboardSettings.from_env(env)
        self.assertEqual((settings.airflow_url, settings.airflow_user, settings.airflow_password),
                         ("http://127.0.0.1:8080", "admin", "p w"))  # fmt: skip
        self.assertEqual(DashboardSettings.from_env({}).airflow_url, "", "unset: not configured")

    def test_not_configured(self) -> None:
        result = dag_runs.last_runs("", "", "")
        self.assertEqual(result.state, "not configured")
        self.assertIn("DASHBOARD_AIRFLOW_URL", result.message)


class PipelineTabTest(unittest.TestCase):
    def run_tab(self, **env: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["tab"] = "Pipeline"
        base = {"DASHBOARD_LAKE": "", "DASHBOARD_SNAPSHOT": str(built_snapshot())}
        with mock.patch.dict(os.environ, base | env):
            at.run()
        self.assertEqual([e.value for e in at.exception], [])
        return at

    def test_the_tab_shows_the_dags_runs_and_that_the_last_failed(self) -> None:
        with AirflowStub() as stub:
            at = self.run_tab(DASHBOARD_AIRFLOW_URL=stub.url, DASHBOARD_AIRFLOW_USER=stub.USER,
                              DASHBOARD_AIRFLOW_PASSWORD=stub.PASSWORD)  # fmt: skip
        self.assertIn("The hourly DAG (sensor_pipeline)", [s.value for s in at.subheader])
        self.assertTrue(any(") failed at" in w.value for w in at.warning), "a failed last run is a warning")
        runs = at.dataframe[0].value
        self.assertEqual(list(runs.state), ["failed", "succeeded"])

    def test_the_tab_says_when_airflow_is_not_there(self) -> None:
        at = self.run_tab(DASHBOARD_AIRFLOW_URL=f"http://127.0.0.1:{free_port()}", DASHBOARD_AIRFLOW_USER="u",
                          DASHBOARD_AIRFLOW_PASSWORD="p")  # fmt: skip
        self.assertTrue(any("is unreachable" in w.value for w in at.warning))
        at = self.run_tab(DASHBOARD_AIRFLOW_URL="")
        self.assertTrue(any("Airflow is not configured" in i.value for i in at.info))


if __name__ == "__main__":
    unittest.main()
