"""etl.quality.metrics on hand-made series whose scores are worked out by hand in the comments."""

from __future__ import annotations

import math
import unittest

import numpy as np

from etl.quality import metrics as m


class PointMetrics(unittest.TestCase):
    def test_pooled_counts_and_skab_formulas(self) -> None:
        # series 1: labels 0011 1100, alarms 0110 1000 -> tp 3 (idx 2,3,4), fp 1 (1), fn 1 (5), tn 3
        first = m.confusion([0, 0, 1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0, 0, 0])
        self.assertEqual(first, m.Counts(tp=3, fp=1, tn=3, fn=1))
        # series 2: labels 0 1, alarms 1 0 -> fp 1, fn 1
        pooled = first + m.confusion([0, 1], [1, 0])
        self.assertEqual(pooled, m.Counts(tp=3, fp=2, tn=3, fn=2))
        got = m.point_metrics(pooled)
        self.assertAlmostEqual(got["precision"], 3 / 5)
        self.assertAlmostEqual(got["recall"], 3 / 5)
        self.assertAlmostEqual(got["f1"], 3 / (3 + (2 + 2) / 2))  # 0.6
        self.assertAlmostEqual(got["far"], 100 * 2 / 5)  # 40 %
        self.assertAlmostEqual(got["mar"], 100 * 2 / 5)

    def test_always_alarm_on_a_mostly_anomalous_series_gets_a_high_f1(self) -> None:
        # 54 anomalous points of 100: always alarming gives tp 54, fp 46 -> F1 54 / 77 = 0.701
        labels = np.r_[np.zeros(46), np.ones(54)].astype(int)
        got = m.point_metrics(m.confusion(labels, np.ones(100, dtype=int)))
        self.assertAlmostEqual(got["f1"], 54 / 77)
        self.assertEqual(got["far"], 100.0)
        self.assertEqual(got["mar"], 0.0)

    def test_undefined_ratios_are_nan(self) -> None:
        got = m.point_metrics(m.confusion([0, 0], [0, 0]))
        self.assertTrue(math.isnan(got["precision"]))
        self.assertTrue(math.isnan(got["mar"]))
        self.assertEqual(got["far"], 0.0)

    def test_bad_input_names_the_problem(self) -> None:
        with self.assertRaisesRegex(ValueError, "differ in length"):
            m.confusion([0, 1], [0])
        with self.assertRaisesRegex(ValueError, "only 0/1"):
            m.confusion([0, 2], [0, 1])


class EventMetrics(unittest.TestCase):
    def test_runs(self) -> None:
        self.assertEqual(m.runs([1, 1, 0, 1, 0, 0, 1]).tolist(), [[0, 1], [3, 3], [6, 6]])
        self.assertEqual(m.runs([0, 0]).shape, (0, 2))

    def test_event_recall_and_false_events(self) -> None:
        labels = [0, 1, 1, 0, 0, 0, 1, 1, 0, 0]
        alarms = [1, 0, 1, 1, 0, 1, 0, 0, 0, 1]
        # events [1,2] (hit at 2) and [6,7] (missed); alarm runs [0], [2,3], [5], [9]: [2,3] touches an event
        got = m.event_counts(labels, alarms)
        self.assertEqual(got, {"events": 2, "detected": 1, "alarm_runs": 4, "false_events": 3})
        self.assertEqual(m.event_recall(got), 0.5)
        # 3 false runs over two sensors watched for half a week each = one sensor-week
        self.assertAlmostEqual(m.false_events_per_sensor_week(3, 2 * m.SECONDS_PER_WEEK / 2), 3.0)


class Nab(unittest.TestCase):
    times = np.arange(200.0)  # one point a second

    def cps(self, *at: int) -> np.ndarray:
        flags = np.zeros(200, dtype=int)
        flags[list(at)] = 1
        return flags

    def test_changepoints_are_alarm_edges(self) -> None:
        self.assertEqual(m.changepoints_from_alarms([1, 1, 0, 0, 1, 1]).tolist(), [1, 0, 1, 0, 1, 0])
        self.assertEqual(m.changepoints_from_alarms([0, 1, 1]).tolist(), [0, 1, 0])

    def test_windows_to_the_right_and_cut_on_overlap(self) -> None:
        windows = m.nab_windows(self.times, self.cps(0, 30, 150), 60.0)
        # [0,60], [30,90] overlaps -> starts at 60, [150,210]
        self.assertEqual(windows.tolist(), [[0, 60], [60, 90], [150, 210]])

    def test_first_detection_only_misses_and_false_positives(self) -> None:
        true_cp = self.cps(10, 100)  # windows [10,70] and [100,160]
        pred_cp = self.cps(5, 10, 40, 170)  # 5 FP, 10 first in window 1 (40 ignored), window 2 missed, 170 FP
        std = m.PROFILES["standard"]
        raw, null, perfect = m.nab_raw(self.times, true_cp, pred_cp, std)
        # a detection at the very start scores tp = 1; the miss -1; two FPs -0.11 each
        self.assertAlmostEqual(raw, 1 - 1 - 2 * 0.11)
        self.assertEqual((null, perfect), (-2.0, 2.0))
        got = m.nab_score([(self.times, true_cp, pred_cp)])
        self.assertAlmostEqual(got["standard"], 100 * (-0.22 + 2) / 4)  # 44.5
        self.assertAlmostEqual(got["low_fp"], 100 * (-0.44 + 2) / 4)  # 39.0
        # low FN: raw 1 - 2 - 0.22 = -1.22, null -4, perfect 2 -> 100 * 2.78 / 6
        self.assertAlmostEqual(got["low_fn"], 100 * 2.78 / 6)

    def test_skab_sigmoid_falls_from_tp_to_minus_fp_across_the_window(self) -> None:
        std = m.PROFILES["standard"]
        true_cp = self.cps(0)  # window [0, 60]

        def score(at: int) -> float:
            return m.nab_raw(self.times, true_cp, self.cps(at), std)[0]

        self.assertAlmostEqual(score(0), 1.0)
        self.assertAlmostEqual(score(60), -0.11)  # the last point of the window: worth -fp
        # the middle: step int(0.5 * 1000) = 500, x = -pi/2 + 500 pi / 999 = 0.0015724;
        # 0.555 * -tanh(x) / tanh(pi/2) + 0.555 - 0.11 = 0.555 * -0.0017144 + 0.445 = 0.4440485
        self.assertAlmostEqual(score(30), 0.4440485, places=6)
        self.assertGreater(score(10), score(20))  # earlier is better
        self.assertAlmostEqual(score(61), -1.0 - 0.11)  # just outside: a miss and a false positive

    def test_numenta_sigmoid(self) -> None:
        std = m.PROFILES["standard"]
        true_cp = self.cps(0)
        # y = position - 1: start y = -1 -> 2 / (1 + e^-5) - 1 = 0.986614; end y = 0 -> 0
        start = m.nab_raw(self.times, true_cp, self.cps(0), std, scale="nab")[0]
        end = m.nab_raw(self.times, true_cp, self.cps(60), std, scale="nab")[0]
        self.assertAlmostEqual(start, 0.986614, places=6)
        self.assertAlmostEqual(end, 0.0)

    def test_never_alarming_scores_zero_and_perfect_scores_100(self) -> None:
        true_cp = self.cps(10, 100)
        never = m.nab_score([(self.times, true_cp, np.zeros(200, dtype=int))])
        perfect = m.nab_score([(self.times, true_cp, true_cp)])
        for name in m.PROFILES:
            self.assertAlmostEqual(never[name], 0.0)
            self.assertAlmostEqual(perfect[name], 100.0)

    def test_series_are_pooled_before_normalising(self) -> None:
        true_cp = self.cps(10)
        hit = (self.times, true_cp, true_cp)  # raw 1, null -1, perfect 1
        flood = (self.times, np.zeros(200, dtype=int), self.cps(*range(0, 200, 2)))  # 100 FPs, no window
        # pooled raw 1 - 11 = -10, null -1, perfect 1 -> 100 * (-9) / 2
        self.assertAlmostEqual(m.nab_score([hit, flood])["standard"], -450.0)

    def test_datetimes_are_accepted(self) -> None:
        stamps = np.datetime64("2020-03-09T10:14:33") + np.arange(200).astype("timedelta64[s]")
        true_cp = self.cps(10)
        self.assertEqual(m.nab_score([(stamps, true_cp, true_cp)])["standard"], 100.0)

    def test_unknown_scale_is_an_error(self) -> None:
        with self.assertRaisesRegex(ValueError, "unknown NAB scale"):
            m.nab_raw(self.times, self.cps(0), self.cps(0), m.PROFILES["standard"], scale="linear")


if __name__ == "__main__":
    unittest.main()
