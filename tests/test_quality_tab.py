"""The Model quality tab in Streamlit's AppTest, from a tiny script, on a lake with two quality runs."""

from __future__ import annotations

import datetime as dt
import tempfile
import unittest
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from etl.lake import Lake
from etl.quality.run import evaluate
from tests.test_quality_slices import door_hours

SCRIPT = """
from pathlib import Path
from dashboard.source import scan
from dashboard.quality_tab import quality_tab
quality_tab(scan(Path(LAKE), False))
"""


def tab(lake: Path) -> AppTest:
    at = AppTest.from_string(SCRIPT.replace("LAKE", repr(str(lake))), default_timeout=60)
    return at.run()


class QualityTabTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.lake = Path(cls.tmp.name, "lake")
        points = door_hours(seed=1)
        blind = (points.store == "Paris") & (points.weekday == 6) & points.hour.isin([8, 9])
        points.loc[blind, "alarm"] = False
        versions = {"data": "d1", "planted": "v1"}
        for day in (1, 2):  # two daily runs: a line over time
            evaluate(Lake(str(cls.lake)), points, versions, "lake", dt.datetime(2024, 7, day, 3, tzinfo=dt.UTC))

    def test_scores_over_time_slices_and_a_slices_errors(self) -> None:
        at = tab(self.lake)
        self.assertEqual([e.value for e in at.exception], [])
        self.assertEqual(at.header[0].value, "Model quality")
        chart = at.get("vega_lite_chart")
        self.assertEqual(len(chart), 1)
        frames = at.dataframe
        latest, found, counts, examples = (f.value for f in frames)
        self.assertEqual(latest.detector.tolist(), ["planted"])
        self.assertTrue(found.significant.iloc[0])
        self.assertTrue(set(found.slice.iloc[0].split(" & ")) <= {"store=Paris", "weekday=6", "hour_band=08-10"})
        top = found.iloc[0]
        self.assertEqual(counts.to_numpy().sum(), top.support)  # the chosen (first) slice's confusion counts
        self.assertEqual(counts.loc["anomaly", "no alarm"], top.errors)  # its misses
        ts = pd.to_datetime(examples.ts)
        self.assertEqual(len(examples), 5)
        conditions = top.slice.split(" & ")  # every example is a point of the slice
        if "store=Paris" in conditions:
            self.assertTrue(examples.series.str.startswith("Paris/").all())
        if "weekday=6" in conditions:
            self.assertTrue((ts.dt.weekday == 5).all())
        if "hour_band=08-10" in conditions:
            self.assertTrue(ts.dt.hour.isin([8, 9]).all())

    def test_choosing_a_metric_and_a_slice(self) -> None:
        at = tab(self.lake)
        at.selectbox(key="quality_metric").select("nab_standard").run()
        self.assertIn("NAB standard over time", [s.value for s in at.subheader])
        at.selectbox(key="quality_slice").select(1).run()
        self.assertEqual([e.value for e in at.exception], [])
        self.assertEqual(len(at.dataframe), 4)

    def test_a_lake_without_scores_says_how_to_make_them(self) -> None:
        with tempfile.TemporaryDirectory() as empty:
            at = tab(Path(empty))
        self.assertIn("python -m etl quality", at.info[0].value)


if __name__ == "__main__":
    unittest.main()
