"""The dashboard in a real browser: `streamlit run` on 127.0.0.1, Debian's headless Chromium.

Every tab, on a lake pulled from the simulator and transformed (with a stub of Airflow's REST
API) and on the committed snapshot streamlit_data/: a screenshot of each in test-artifacts/, and
what a person would check, read from the charts' SVG marks: the histogram has bars, the dashed
baseline is drawn, the anomaly count in the heading is the number of marks on the chart, Paris
has a trend, Vega logs no warning, there is no "Deploy" button. And an open page picks up new
data by itself (no reload)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import ClassVar

import requests

from dashboard import source
from tests.dashboard_support import AirflowStub, built_lake, copy_of
from tests.support import ROOT, free_port, stop

TABS = ["Traffic", "Trends", "Tables", "Robots", "Live", "Sensor health", "Alarms", "Model quality", "Pipeline"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
CHART = ".vega-embed canvas, .vega-embed svg"
VIEWPORT = {"width": 1400, "height": 2400}  # the app scrolls inside its own frame: a tall page shows every chart
SNAPSHOT = ROOT / "streamlit_data"
# What the page used to show raw: mart column names, the transform's log line, hours as "16,796.6 h".
RAW_NAMES = ["replacement_warning", "failure_rate_", "running_mean", "perc_diff", "sensor_id", "local_date",
             "transform: ", " h old", "median_sigmas"]  # fmt: skip
# What each tab must have drawn before it is judged (Streamlit fills the page after first paint).
READY = {
    "Traffic": ".vega-embed svg g.baseline_marks path",
    "Trends": '[data-testid="stTable"], [data-testid="stAlert"]',
    "Tables": '[data-testid="stDataFrame"]',
    "Robots": ".vega-embed svg g.histogram_marks path",
    "Sensor health": ".vega-embed svg g.mark-rect path",
    "Pipeline": '[data-testid="stDataFrame"]',
    # without a streaming job, an operational database or detector scores these say so (an info)
    "Live": '[data-testid="stAlert"], .vega-embed svg',
    "Alarms": '[data-testid="stAlert"], [data-testid="stDataFrame"]',
    "Model quality": '[data-testid="stAlert"], .vega-embed svg',
}
TIMEOUT_MS = 60_000


class StreamlitServer:
    """`streamlit run dashboard/app.py` on a free local port; a context manager that always stops it."""

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> StreamlitServer:
        cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.address", "127.0.0.1",
               "--server.port", str(self.port), "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]  # fmt: skip
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        session = requests.Session()
        session.trust_env = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"streamlit exited: {self.log.read().decode()}")
            try:
                if session.get(self.url + "/_stcore/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("streamlit did not answer /_stcore/health within 60 s")

    def __exit__(self, *exc) -> None:
        if self.process:
            stop(self.process)
        self.log.close()


# Skipped only when asked (SKIP_BROWSER=1), never under CI: a missing chromium fails the suite.
SKIP = os.environ.get("SKIP_BROWSER") == "1" and not os.environ.get("CI")


@unittest.skipIf(SKIP, "SKIP_BROWSER=1: the browser tests were skipped on purpose")
class BrowserTestCase(unittest.TestCase):
    """One Streamlit server and one Chromium per class; `source` names the screenshots."""

    source = ""
    env: ClassVar[dict[str, str]] = {}

    @classmethod
    def setUpClass(cls) -> None:
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"no {CHROMIUM}: apt-get install chromium (make test does it as root)")
        cls.server = cls.enterClassContext(StreamlitServer(**cls.env))
        cls.playwright = cls.enterClassContext(sync_playwright())
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        cls.addClassCleanup(cls.browser.close)
        ARTIFACTS.mkdir(exist_ok=True)

    def open(self, query: str = "", ready: str = CHART):
        page = self.browser.new_page(viewport=VIEWPORT)
        self.addCleanup(page.close)
        page.console_lines = []
        page.on("console", lambda m: page.console_lines.append(f"{m.type}: {m.text}"))
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(self.server.url + query)
        page.wait_for_selector(ready, state="attached")  # the websocket fills the page after first paint
        page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")  # the run is over
        return page

    def assert_no_error(self, page) -> None:
        self.assertEqual(page.locator('[data-testid="stException"]').count(), 0, "no exception on the page")
        self.assertEqual(page.locator('[data-testid="stAlertContentError"]').count(), 0, "no error message")

    def assert_clean_console(self, page) -> None:
        noise = [line for line in page.console_lines if line.startswith(("warning", "error"))]
        self.assertEqual(noise, [], "no Vega warning, no failed request (usage statistics are off)")

    def assert_readable(self, page) -> None:
        """No mart column name or log line where a person reads (tables' cells and headers are in the DOM)."""
        text = page.evaluate("document.body.textContent")  # with the tables' cells, which are not visible text
        for raw in RAW_NAMES:
            self.assertNotIn(raw, text)

    def wait_charts(self, page, count: int) -> None:
        """Vega embeds each chart a moment after Streamlit's run ends: wait for the `count`-th SVG."""
        page.locator(".vega-embed svg").nth(count - 1).wait_for(state="attached")

    def marks(self, page, layer: str) -> int:
        """How many marks the charts' SVG draws in the named layer (Vega's class `<name>_marks`)."""
        return page.locator(f".vega-embed svg g.{layer}_marks > path").count()

    def every_tab(self, extra: dict[str, str] | None = None) -> dict:
        """Open each tab from its URL (with `extra` URL parameters per tab), judge it as a person
        would, save its screenshot."""
        seen = {}
        for tab in TABS:
            with self.subTest(source=self.source, tab=tab):
                more = (extra or {}).get(tab, "")
                page = self.open(f"/?tab={tab.replace(' ', '+')}{more}", ready=READY[tab])
                self.assertEqual(page.locator("h2").first.inner_text().strip(), tab)
                self.assert_no_error(page)
                self.assertEqual(page.get_by_text("Deploy", exact=True).count(), 0, "no Deploy button")
                seen[tab] = getattr(self, f"judge_{tab.split()[0].lower()}")(page)
                self.assert_readable(page)
                self.assert_clean_console(page)
                page.screenshot(path=str(ARTIFACTS / f"dashboard-{self.source}-{tab.split()[0].lower()}.png"))
                page.close()  # an open page keeps polling the server (the live check) and holding its charts
        return seen

    def judge_traffic(self, page) -> int:
        heading = next(h for h in page.locator("h3").all_inner_texts() if h.startswith("Anomalies"))
        count = int(heading.removeprefix("Anomalies (").removesuffix(")"))
        self.assertGreater(count, 0, "the default daily/store view shows the flagged hours rolled up")
        # Flags on series past the chart's MAX_FLAGGED_SERIES are listed, not drawn, and a caption counts them.
        apart = re.search(r"([\d,]+) of them on [\d,]+ series the chart does not draw", page.inner_text("body"))
        undrawn = int(apart.group(1).replace(",", "")) if apart else 0
        self.assertEqual(self.marks(page, "anomalies"), count - undrawn, "one mark on the chart per anomaly drawn")
        dashed = page.locator(".vega-embed svg g.baseline_marks > path[stroke-dasharray]")
        self.assertGreater(dashed.count(), 0, "the dashed baseline is drawn")
        return count

    def judge_trends(self, page) -> str:
        table = page.locator('[data-testid="stTable"]').inner_text()
        self.assertIn("Paris", table, "the biggest store has its trend although a door of it fails most days")
        self.wait_charts(page, 2)
        self.assertGreaterEqual(page.locator(".vega-embed svg").count(), 2, "deviation and long-term trend")
        return table

    def judge_tables(self, page) -> None:
        self.assertTrue(page.locator('[data-testid="stDataFrame"]').first.is_visible())

    def judge_robots(self, page) -> list[str]:
        self.assertGreater(self.marks(page, "histogram"), 5, "the fidelity histogram has bars")
        self.wait_charts(page, 2)
        self.assertGreaterEqual(page.locator(".vega-embed svg").count(), 2, "signal and distribution")
        if "window=" in page.url:
            self.assertEqual(page.locator(".st-key-window input").input_value(), "1 day", "the window from the URL")
        return page.locator("h3").all_inner_texts()

    def judge_sensor(self, page) -> None:
        self.wait_charts(page, 2)
        self.assertEqual(page.locator(".vega-embed svg").count(), 2, "failure rates and failed hours")

    def judge_live(self, page) -> str:
        return self.said_or_drawn(page)

    def judge_alarms(self, page) -> str:
        return self.said_or_drawn(page)

    def judge_model(self, page) -> str:
        return self.said_or_drawn(page)

    def said_or_drawn(self, page) -> str:
        """A tab whose data may not be in this source: its chart or table, or a sentence saying why not."""
        shown = page.locator('[data-testid="stAlert"], .vega-embed svg, [data-testid="stDataFrame"]')
        self.assertGreater(shown.count(), 0, "the tab shows its data or says why it has none")
        alert = page.locator('[data-testid="stAlert"]')
        return alert.first.inner_text() if alert.count() else "drawn"

    def judge_pipeline(self, page) -> str:
        self.assertIn("The hourly DAG (sensor_pipeline)", page.locator("h3").all_inner_texts())
        return page.locator('[data-testid="stAlert"]').first.inner_text()


@unittest.skipUnless(Path(CHROMIUM).exists(), "Debian's chromium is not installed (apt-get install chromium)")
class LakeBrowserTest(BrowserTestCase):
    """A lake as `make up` leaves it (doors for weeks, robots for days, pulled from the simulator)."""

    source = "lake"

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.lake = copy_of(built_lake(), Path(cls.tmp.name))
        cls.airflow = cls.enterClassContext(AirflowStub())
        cls.env = {"DASHBOARD_LAKE": str(cls.lake), "DASHBOARD_REFRESH_SECONDS": "2",
                   "DASHBOARD_AIRFLOW_URL": cls.airflow.url, "DASHBOARD_AIRFLOW_USER": cls.airflow.USER,
                   "DASHBOARD_AIRFLOW_PASSWORD": cls.airflow.PASSWORD}  # fmt: skip
        super().setUpClass()

    def test_every_tab(self) -> None:
        # The robot tab from a shared URL: its widgets take their values from it.
        seen = self.every_tab({"Robots": "&robot=robot-3&window=1+day"})
        self.assertIn(") failed at", seen["Pipeline"], "the DAG's failed last run, from Airflow's REST API")
        self.assertTrue(any("robot-3 axis1: signal and regression line" in h for h in seen["Robots"]), seen["Robots"])

    def test_hourly_door_anomalies_are_drawn_or_counted_apart(self) -> None:
        page = self.open("/?res=Hourly&level=Door&dates=2024-11-26&dates=2024-12-10", ready=READY["Traffic"])
        count = self.judge_traffic(page)
        self.assertGreater(count, 0)
        page.screenshot(path=str(ARTIFACTS / "dashboard-lake-traffic-hourly-doors.png"))

    def test_an_open_page_shows_new_data_without_a_reload(self) -> None:
        page = self.open("/?tab=Pipeline", ready='[data-testid="stDataFrame"]')
        state = self.lake / "_state" / "doors.json"
        data = json.loads(state.read_text())
        data["watermark"] = "2024-12-10T01:00:00Z"  # as a pull of the next hour leaves it
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, state)
        version = source.version(self.lake)
        page.wait_for_selector(f"text=Data version {version} (the page", timeout=30_000)
        # The table's cells reach the DOM a moment after the caption below it: wait for them too.
        watermark = page.locator("text=2024-12-10 01:00 UTC").first
        watermark.wait_for(state="attached", timeout=30_000)
        self.assertGreater(page.locator("text=2024-12-10 01:00 UTC").count(), 0, "the new watermark is shown")
        self.assert_no_error(page)


@unittest.skipUnless(Path(CHROMIUM).exists(), "Debian's chromium is not installed (apt-get install chromium)")
class SnapshotBrowserTest(BrowserTestCase):
    """The committed snapshot, as Streamlit Community Cloud serves it (no lake, no Airflow)."""

    source = "snapshot"
    env: ClassVar[dict[str, str]] = {
        "DASHBOARD_LAKE": "",
        "DASHBOARD_SNAPSHOT": str(SNAPSHOT),
        "DASHBOARD_AIRFLOW_URL": "",
    }

    def test_every_tab(self) -> None:
        seen = self.every_tab()
        self.assertIn("Airflow is not configured", seen["Pipeline"])


if __name__ == "__main__":
    unittest.main()
