"""The streaming job's multivariate detector: etl/detectors' Hotelling T² plugged into the per-key step."""

from __future__ import annotations

import unittest

import numpy as np

from etl.stream.detectors import DETECTORS
from etl.stream.step import Reading, StepParams, step


def readings(values: np.ndarray) -> list[Reading]:
    return [Reading("pump", i * 1_000_000, str(i), tuple(v), 0.0) for i, v in enumerate(values.tolist())]


class HotellingInTheStreamTest(unittest.TestCase):
    def test_a_correlated_shift_raises_an_error_alert_and_healthy_readings_stay_quiet(self) -> None:
        rng = np.random.default_rng(5)
        # 8 correlated sensors; after 900 healthy readings two move apart (a fault that breaks the
        # correlation without leaving any one sensor's usual range: no univariate rule sees it)
        common = rng.normal(size=(1200, 1))
        values = common + 0.3 * rng.normal(size=(1200, 8))
        values[900:, 0] += 1.2
        values[900:, 1] -= 1.2
        params = StepParams(n_features=8, detector=DETECTORS["hotelling"])
        state, alerts = None, []
        for r in readings(values):
            state, out = step(state, r, params)
            # an alert is written when it opens and again when it ends: the same key
            alerts += [(row["level"], row["start"] // 1_000_000) for kind, row in out if kind == "alert"]
        alerts = sorted(set(alerts), key=lambda a: a[1])
        healthy = [a for a in alerts if a[1] < 900]
        faulty = [a for a in alerts if a[1] >= 900]
        self.assertIn("ERROR", [level for level, _ in faulty], alerts)
        self.assertLess(min(start for _, start in faulty), 930, "found within 30 readings")
        # the calibration's 0.99 quantile: about 1 % of the 500 healthy scored readings may alert
        self.assertLessEqual(len(healthy), 12, healthy)


if __name__ == "__main__":
    unittest.main()
