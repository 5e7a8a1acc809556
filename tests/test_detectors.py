"""Online detectors on synthetic sensor records: warm-up, calibration, alarms, re-baselining, checkpoints."""

from __future__ import annotations

import copy
import math
import pickle
import unittest

import numpy as np

from etl.detectors import DETECTORS, halfspace, hotelling, robust_z
from etl.detectors.run import run
from etl.detectors.state import from_json, impute, impute_init, to_json


def pump(n: int = 1200, seed: int = 0) -> np.ndarray:
    """Four correlated noisy sensors (AR(1) noise around fixed levels), one record a second."""
    rng = np.random.default_rng(seed)
    mix = np.array([[1.0, 0.6, 0.0, 0.0], [0.0, 1.0, 0.3, 0.0], [0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.0, 1.0]])
    noise = np.zeros((n, 4))
    for i in range(1, n):
        noise[i] = 0.7 * noise[i - 1] + rng.normal(size=4)
    return np.array([10.0, 5.0, 2.0, 30.0]) + noise @ mix


class Interface(unittest.TestCase):
    def test_every_detector_warms_up_then_calibrates(self) -> None:
        rows = pump(600)
        for name, det in DETECTORS.items():
            with self.subTest(name):
                scores, alarms, state = run(det, det.Params(), rows)
                self.assertTrue(np.isnan(scores[:400]).all())
                self.assertFalse(alarms[:400].any())
                self.assertTrue(np.isfinite(scores[400:]).all())
                self.assertIsInstance(state["threshold"], float)
                self.assertGreater(state["threshold"], 0)

    def test_step_leaves_its_input_state_unchanged(self) -> None:
        rows = pump(450)
        for det in (hotelling, robust_z):
            _, _, state = run(det, det.Params(), rows[:420])
            before = to_json(state)
            det.step(state, rows[420])
            self.assertEqual(to_json(state), before)

    def test_bad_input_is_a_clear_error(self) -> None:
        with self.assertRaisesRegex(ValueError, "shrink"):
            hotelling.init(hotelling.Params(shrink=2.0), 4)
        with self.assertRaisesRegex(ValueError, "outside 0..3"):
            hotelling.init(hotelling.Params(exclude=(7,)), 4)
        with self.assertRaisesRegex(ValueError, "every feature is excluded"):
            robust_z.init(robust_z.Params(exclude=(0, 1)), 2)
        state = hotelling.init(hotelling.Params(), 4)
        with self.assertRaisesRegex(ValueError, "3 features"):
            hotelling.step(state, np.zeros(3))


class Imputation(unittest.TestCase):
    def test_nan_becomes_the_running_mean_of_its_feature(self) -> None:
        imp = impute_init(2)
        for row in ([1.0, 10.0], [3.0, math.nan], [5.0, 20.0]):
            _, imp = impute(imp, np.array(row))
        filled, imp = impute(imp, np.array([math.nan, math.nan]))
        self.assertEqual(filled.tolist(), [3.0, 15.0])  # means of 1, 3, 5 and of 10, 20
        self.assertEqual(imp["count"].tolist(), [3, 2])

    def test_records_with_gaps_still_score(self) -> None:
        rows = pump(600)
        rows[::7, 1] = math.nan
        rows[450, :] = math.nan
        for name, det in DETECTORS.items():
            with self.subTest(name):
                scores, _, _ = run(det, det.Params(), rows)
                self.assertTrue(np.isfinite(scores[400:]).all())


class Detection(unittest.TestCase):
    def test_a_shift_of_two_sensors_is_found_and_little_else(self) -> None:
        rows = pump(1200)
        rows[700:900, 0] += 8.0  # about 5.7 noise standard deviations (1.4) of that sensor
        rows[700:900, 2] -= 8.0
        truth = np.zeros(1200, dtype=bool)
        truth[700:900] = True
        for det in (hotelling, robust_z):
            with self.subTest(det.__name__):
                _, alarms, _ = run(det, det.Params(), rows)
                test = slice(400, None)
                self.assertGreater(alarms[test][truth[test]].mean(), 0.9)
                self.assertLess(alarms[test][~truth[test]].mean(), 0.05)

    def test_hotellings_threshold_is_the_largest_warm_up_score(self) -> None:
        rows = pump(400, seed=6)
        fitted = hotelling.fit(rows, shrink=0.3, quantile=1.0, margin=1.0)
        z = (rows - fitted["center"]) / fitted["scale"]
        t2 = np.einsum("ni,ij,nj->n", z, fitted["precision"], z)
        self.assertAlmostEqual(fitted["threshold"], t2.max(), places=9)  # no warm-up record would alarm
        self.assertEqual((hotelling.Params().quantile, hotelling.Params().margin), (1.0, 1.0))
        with self.assertRaisesRegex(ValueError, r"quantile must be in \(0, 1\]"):
            hotelling.init(hotelling.Params(quantile=1.5), 4)

    def test_one_glitch_in_the_warm_up_sets_neither_threshold_nor_scale(self) -> None:
        rows = pump(1200, seed=7)
        rows[700:900, 0] += 5.0  # a fault after the warm-up, about 3.6 noise sigmas of that sensor
        glitched = rows.copy()
        glitched[200, 1] += 40 * rows[:400, 1].std()  # one wild reading of another sensor in the warm-up
        _, clean, clean_state = run(hotelling, hotelling.Params(), rows)
        _, trimmed, trimmed_state = run(hotelling, hotelling.Params(), glitched)
        _, _, untrimmed_state = run(hotelling, hotelling.Params(trim=0.0), glitched)
        self.assertLess(trimmed_state["threshold"], 1.5 * clean_state["threshold"])  # the glitch's EWMA tail is kept
        self.assertGreater(untrimmed_state["threshold"], 3 * clean_state["threshold"])  # a maximum alone is blinded
        self.assertGreater(trimmed[700:900].mean(), 0.9 * clean[700:900].mean())
        self.assertGreater(trimmed[700:900].mean(), 0.5)
        with self.assertRaisesRegex(ValueError, "trim must be >= 0"):
            hotelling.init(hotelling.Params(trim=-1.0), 4)

    def test_rebaselining_absorbs_a_slow_drift(self) -> None:
        rows = pump(3000, seed=3)
        rows[:, 3] += np.linspace(0.0, 12.0, 3000)  # a drift the warm-up could not show
        _, fixed, _ = run(hotelling, hotelling.Params(rebase=0.0), rows)
        _, adapted, _ = run(hotelling, hotelling.Params(rebase=0.01), rows)
        self.assertGreater(fixed[400:].mean(), 0.5)
        self.assertLess(adapted[400:].mean(), 0.05)

    def test_a_lasting_new_level_becomes_the_new_normal(self) -> None:
        rows = pump(2400, seed=5)
        rows[800:, 0] += 10.0  # the fault leaves the sensor at a new level for good
        for det in (hotelling, robust_z):
            with self.subTest(det.__name__):
                _, stuck, _ = run(det, det.Params(relearn_after=10**9), rows)
                _, relearned, _ = run(det, det.Params(relearn_after=300), rows)
                self.assertTrue(stuck[810:].all())
                self.assertTrue(relearned[810:1000].all())
                self.assertLess(relearned[1200:].mean(), 0.05)

    def test_detrending_a_drifting_sensor_keeps_it_in_the_score(self) -> None:
        rows = pump(2000, seed=4)
        rows[:, 3] += np.linspace(0.0, 40.0, 2000)  # a steady drift, like a warming thermocouple
        rows[1500:1530, 3] += np.linspace(0.0, 30.0, 30)  # then a fast jump in the same sensor
        params = hotelling.Params(detrend=(3,), rebase=0.0, slow_span=300)
        _, alarms, _ = run(hotelling, params, rows)
        self.assertLess(alarms[400:1500].mean(), 0.05)
        self.assertTrue(alarms[1510:1540].any())

    def test_hysteresis_keeps_an_alarm_on_until_the_score_drops_well_below(self) -> None:
        rows = pump(900)
        rows[600:700, 0] += 6.0
        _, a_on, _ = run(hotelling, hotelling.Params(release=1.0), rows)
        _, a_held, _ = run(hotelling, hotelling.Params(release=0.3), rows)
        self.assertGreaterEqual(a_held.sum(), a_on.sum())
        self.assertLessEqual(np.abs(np.diff(a_held.astype(int))).sum(), np.abs(np.diff(a_on.astype(int))).sum())

    def test_halfspace_threshold_comes_from_the_warm_up(self) -> None:
        _, _, state = run(halfspace, halfspace.Params(), pump(500))
        self.assertLessEqual(state["threshold"], 1.0)
        self.assertNotEqual(state["threshold"], 0.7)


class Checkpoints(unittest.TestCase):
    def test_json_round_trip_continues_identically(self) -> None:
        rows = pump(700)
        for det in (hotelling, robust_z):
            with self.subTest(det.__name__):
                _, _, state = run(det, det.Params(), rows[:500])
                restored = from_json(to_json(state))
                for row in rows[500:]:
                    want, state = det.step(state, row)
                    got, restored = det.step(restored, row)
                    self.assertEqual(got, want)
                    self.assertEqual(restored["alarm"], state["alarm"])

    def test_json_round_trip_during_the_warm_up(self) -> None:
        rows = pump(500)
        _, _, state = run(hotelling, hotelling.Params(), rows[:200])
        restored = from_json(to_json(state))
        for row in rows[200:]:
            want, state = hotelling.step(state, row)
            got, restored = hotelling.step(restored, row)
        self.assertEqual(got, want)

    def test_halfspace_state_pickles(self) -> None:
        rows = pump(600)
        _, _, state = run(halfspace, halfspace.Params(), rows[:450])
        restored = pickle.loads(pickle.dumps(state))
        twin = copy.deepcopy(state)
        for row in rows[450:]:
            want, twin = halfspace.step(twin, row)
            got, restored = halfspace.step(restored, row)
            self.assertEqual(got, want)


if __name__ == "__main__":
    unittest.main()
