"""NAB's score (bench/nab.py) on hand-made series, against values worked out by hand."""

from __future__ import annotations

import math
import unittest

from bench.nab import Profile, nab_score, probation_rows, scaled_sigmoid

STANDARD = Profile(tp=1.0, fn=1.0, fp=0.11)


class NabScoreTest(unittest.TestCase):
    def test_probation_is_15_percent_capped_at_750_rows(self) -> None:
        self.assertEqual(probation_rows(100), 15)
        self.assertEqual(probation_rows(10_320), 750)

    def test_scaled_sigmoid(self) -> None:
        self.assertAlmostEqual(scaled_sigmoid(-1.0), 2 / (1 + math.exp(-5)) - 1, places=12)  # 0.98661
        self.assertAlmostEqual(scaled_sigmoid(0.0), 0.0, places=12)
        self.assertEqual(scaled_sigmoid(3.5), -1.0)

    def test_one_window_early_detection_a_repeat_and_two_false_alarms(self) -> None:
        # 100 rows, probation 15, one window at rows 40..49 (width 10):
        #  row 10: in probation, ignored;
        #  row 30: before any window, -1 x 0.11 = -0.11;
        #  row 42: first in the window, position -(49 - 42 + 1) / 10 = -0.8, 2 / (1 + e^-4) - 1 = 0.96402758;
        #  row 45: a second detection in the window, ignored;
        #  row 52: 3 rows past it, 3 / 9 = 1/3, (2 / (1 + e^(5/3)) - 1) x 0.11 = -0.68226202 x 0.11 = -0.07504882.
        # raw = 0.96402758 - 0.11 - 0.07504882 = 0.77897876; null -1, perfect 1: 100 x 1.77897876 / 2 = 88.948938.
        got = nab_score(100, [10, 30, 42, 45, 52], [(40, 49)], STANDARD)
        self.assertAlmostEqual(got.raw, 0.77897876, places=7)
        self.assertEqual((got.null, got.perfect), (-1.0, 1.0))
        self.assertAlmostEqual(got.normalised, 88.948938, places=5)
        self.assertEqual((got.windows_found, got.false_detections), (1, 2))

    def test_a_missed_window_and_a_late_detection(self) -> None:
        # 200 rows, probation 30, windows 50..59 and 120..139:
        #  row 59: the first window's last row, position -1/10, 2 / (1 + e^-0.5) - 1 = 0.24491866;
        #  row 100: 41 rows past it, 41 / 9 > 3: -1 x 0.11; the second window is missed: -1.
        # raw = 0.24491866 - 0.11 - 1 = -0.86508134; null -2, perfect 2: 100 x 1.13491866 / 4 = 28.372967.
        got = nab_score(200, [59, 100], [(50, 59), (120, 139)], STANDARD)
        self.assertAlmostEqual(got.raw, -0.86508134, places=7)
        self.assertAlmostEqual(got.normalised, 28.372967, places=5)

    def test_no_detection_scores_0_and_perfect_detection_about_100(self) -> None:
        self.assertEqual(nab_score(200, [], [(50, 59), (120, 139)], STANDARD).normalised, 0.0)
        perfect = nab_score(200, [50, 120], [(50, 59), (120, 139)], STANDARD)
        self.assertAlmostEqual(perfect.normalised, 100 * (2 * 0.98661429 + 2) / 4, places=5)

    def test_the_low_fn_profile_charges_a_miss_twice(self) -> None:
        got = nab_score(200, [], [(50, 59)], Profile(tp=1.0, fn=2.0, fp=0.11))
        self.assertEqual((got.raw, got.null, got.normalised), (-2.0, -2.0, 0.0))


if __name__ == "__main__":
    unittest.main()
