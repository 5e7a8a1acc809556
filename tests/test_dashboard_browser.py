"""The dashboard in a real browser: `streamlit run` on 127.0.0.1, Debian's headless Chromium.

Checks that the charts render with the expected headings and no error, saves screenshots to
test-artifacts/, and that an open page picks up new data by itself (no reload)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import requests

from dashboard import source
from tests.dashboard_support import built_lake, copy_of
from tests.support import ROOT, free_port, stop

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
CHART = ".vega-embed canvas, .vega-embed svg"
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
class BrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        from playwright.sync_api import sync_playwright

        if not Path(CHROMIUM).exists():
            raise RuntimeError(f"no {CHROMIUM}: apt-get install chromium (make test does it as root)")

        cls.tmp = tempfile.TemporaryDirectory()
        cls.lake = copy_of(built_lake(), Path(cls.tmp.name))
        cls.server = cls.enterClassContext(StreamlitServer(DASHBOARD_LAKE=str(cls.lake), DASHBOARD_REFRESH_SECONDS="2"))
        cls.playwright = cls.enterClassContext(sync_playwright())
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        cls.addClassCleanup(cls.browser.close)
        ARTIFACTS.mkdir(exist_ok=True)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def open(self, query: str = "", ready: str = CHART):
        page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        self.addCleanup(page.close)
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(self.server.url + query)
        page.wait_for_selector(ready, state="visible")  # the websocket fills the page after first paint
        page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')")  # the run is over
        return page

    def assert_no_error(self, page) -> None:
        self.assertEqual(page.locator('[data-testid="stException"]').count(), 0, "no exception on the page")
        self.assertEqual(page.locator('[data-testid="stAlertContentError"]').count(), 0, "no error message")

    def test_the_first_page_shows_traffic_charts(self) -> None:
        page = self.open()
        self.assertEqual(page.locator("h1").first.inner_text().strip(), "Store traffic and robot health")
        self.assertIn("Traffic", page.locator("h2").all_inner_texts()[0])
        self.assertTrue(page.get_by_role("tab", name="Robots").is_visible())
        self.assert_no_error(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-traffic.png"), full_page=True)

    def test_the_robot_tab_from_a_shared_url(self) -> None:
        page = self.open("/?tab=Robots&robot=robot-3&window=1+day")
        headings = page.locator("h3").all_inner_texts()
        self.assertTrue(any("robot-3 axis1: signal and regression line" in h for h in headings), headings)
        self.assertEqual(page.locator(".st-key-window input").input_value(), "1 day", "the window from the URL")
        self.assertGreaterEqual(page.locator(".vega-embed").count(), 2, "signal and distribution")
        self.assert_no_error(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard-robots.png"), full_page=True)

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
        watermark = page.locator("text=2024-12-10T01:00:00Z").first
        watermark.wait_for(state="attached", timeout=30_000)
        self.assertGreater(page.locator("text=2024-12-10T01:00:00Z").count(), 0, "the new watermark is shown")
        self.assert_no_error(page)


if __name__ == "__main__":
    unittest.main()
