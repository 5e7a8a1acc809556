"""Slice discovery finds a planted blind spot and nothing in a uniformly good detector."""

from __future__ import annotations

import unittest

import numpy as np
import pandas as pd

from etl.quality import slices

STORES = ("Berlin", "London", "Paris")


def door_hours(seed: int) -> pd.DataFrame:
    """Twelve weeks of opening hours (08-20) of 3 stores x 4 doors, a fifth of the hours anomalous."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-06-03", periods=12 * 7 * 24, freq="h", tz="UTC")
    ts = ts[(ts.hour >= 8) & (ts.hour < 20)]
    frame = pd.DataFrame([(s, f"{s}/{d}") for s in STORES for d in range(4)], columns=["store", "door"]).merge(
        pd.DataFrame({"ts": ts}), how="cross"
    )
    n = len(frame)
    frame["series"] = frame["door"]
    frame["step_seconds"] = 3600.0
    frame["detector"] = "planted"
    frame["weekday"] = frame["ts"].dt.isocalendar().day.astype(int).to_numpy()
    frame["hour"] = frame["ts"].dt.hour
    frame["visits"] = rng.uniform(0, 500, n)
    frame["label"] = rng.random(n) < 0.2
    noise = rng.random(n) < 0.03  # the same small error rate everywhere
    frame["alarm"] = frame["label"] ^ noise
    return frame


class SliceDiscoveryTest(unittest.TestCase):
    def test_finds_the_saturday_morning_blind_spot_of_one_store(self) -> None:
        points = door_hours(seed=1)
        blind = (points.store == "Paris") & (points.weekday == 6) & points.hour.isin([8, 9])
        points.loc[blind, "alarm"] = False  # misses every anomaly there
        found = slices.discover(points)
        worse = found[found.significant]
        self.assertGreater(len(worse), 0)
        planted = {"store=Paris", "weekday=6", "hour_band=08-10"}
        top = worse.iloc[0]
        self.assertEqual(top.measure, "miss")
        self.assertEqual(top.features, 2)
        self.assertTrue(set(top.slice.split(" & ")) <= planted, top.slice)
        # every significantly worse slice is part of the blind spot (or a door of that store inside it)
        for text in worse["slice"]:
            conditions = set(text.split(" & "))
            with self.subTest(slice=text):
                self.assertTrue(
                    all(c in planted or c.startswith("door=Paris/") for c in conditions) and conditions & planted
                )
        # counts of the slice add up, and examples are missed anomalies of the slice
        self.assertEqual(top.tp + top.fp + top.tn + top.fn, top.support)
        self.assertGreater(len(top.examples), 2)
        self.assertTrue(worse["q_value"].lt(0.05).all())
        self.assertGreater(top.tried, 100)  # the correction covered every slice tried, singles and pairs

    def test_reports_nothing_for_a_uniformly_good_detector(self) -> None:
        found = slices.discover(door_hours(seed=2))
        self.assertGreater(len(found), 100)  # slices were tried ...
        self.assertFalse(found["significant"].any(), found.head(3).to_string())  # ... none is worse

    def test_value_ranges_come_from_a_shallow_tree(self) -> None:
        points = door_hours(seed=3)
        points.loc[points.visits > 400, "alarm"] = False  # blind above 400 visits
        found = slices.discover(points)
        top = found[found.significant].iloc[0]
        self.assertTrue(top.slice.startswith("visits=("), top.slice)
        low = float(top.slice.split("(")[1].split(",")[0])
        self.assertAlmostEqual(low, 400, delta=5)

    def test_benjamini_hochberg(self) -> None:
        # sorted p 0.01, 0.02, 0.03, 0.5 of n = 4: q = min over later of p * n / rank
        q = slices.bh(np.array([0.5, 0.01, 0.03, 0.02]))
        np.testing.assert_allclose(q, [0.5, 0.04, 0.04, 0.04])


if __name__ == "__main__":
    unittest.main()
