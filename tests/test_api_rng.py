"""The counter-based generator: pure, collision-free in practice, and correctly distributed."""

from __future__ import annotations

import unittest

import numpy as np

from api.simulate.columns import repeat_names, tile_names
from api.simulate.rng import hash_keys, name_key, normal, uniform


class RngTest(unittest.TestCase):
    def test_a_draw_depends_only_on_its_coordinates(self) -> None:
        bulk = hash_keys(42, 2, 7, np.arange(1000))
        alone = np.array([hash_keys(42, 2, 7, i)[0] for i in (0, 500, 999)])
        np.testing.assert_array_equal(bulk[[0, 500, 999]], alone)

    def test_no_collisions_across_neighbouring_coordinates(self) -> None:
        # The original summed ordinals, so (door 1, hour 2) and (door 2, hour 1) collided.
        doors, hours = np.meshgrid(np.arange(100), np.arange(10_000))
        h = hash_keys(1, 2, doors, hours)
        self.assertEqual(len(np.unique(h)), h.size)
        self.assertNotEqual(hash_keys(1, 2, 1, 2)[0], hash_keys(1, 2, 2, 1)[0])

    def test_distributions(self) -> None:
        h = hash_keys(3, 1, np.arange(200_000))
        u = uniform(h)
        self.assertTrue((u >= 0).all() and (u < 1).all())
        self.assertAlmostEqual(u.mean(), 0.5, delta=0.005)
        z = normal(h)
        self.assertAlmostEqual(z.mean(), 0.0, delta=0.01)
        self.assertAlmostEqual(z.std(), 1.0, delta=0.01)
        self.assertLess(abs(np.corrcoef(z[:-1], z[1:])[0, 1]), 0.01)

    def test_name_keys_are_stable(self) -> None:
        self.assertEqual(name_key("door", "Paris", 12), name_key("door", "Paris", 12))
        self.assertNotEqual(name_key("door", "Paris", 1), name_key("door", "Paris1", ""))

    def test_repeat_names(self) -> None:
        names = ["Paris", "Zürich", ""]
        self.assertEqual(repeat_names(np.array([1, 0, 2, 1]), names).to_pylist(), ["Zürich", "Paris", "", "Zürich"])
        self.assertEqual(tile_names(names, 2).to_pylist(), names * 2)
        self.assertEqual(tile_names(names, 0).to_pylist(), [])


if __name__ == "__main__":
    unittest.main()
