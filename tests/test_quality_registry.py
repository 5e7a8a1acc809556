"""The LightGBM baseline on made-up SKAB-format files, and the MLflow registry in a lake (SQLite, real MLflow)."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from etl.quality import baseline
from etl.quality.registry import Registry
from etl.quality.run import read_labelled
from tests.test_etl_pull import run_cli

COLUMNS = ("Accelerometer1RMS", "Pressure", "Temperature")


def skab_file(path: Path, seed: int, start: str) -> Path:
    """900 rows a second apart; rows 500-699 anomalous: the pressure rises by 4 of its sigmas."""
    rng = np.random.default_rng(seed)
    n = 900
    values = rng.normal(0, 1, (n, 3)) + np.array([0.2, 1.0, 70.0])
    anomaly = np.zeros(n, dtype=int)
    anomaly[500:700] = 1
    values[500:700, 1] += 4.0
    changepoint = np.zeros(n, dtype=int)
    changepoint[[500, 700]] = 1
    frame = pd.DataFrame(values, columns=list(COLUMNS))
    frame.insert(0, "datetime", pd.date_range(start, periods=n, freq="s").strftime("%Y-%m-%d %H:%M:%S"))
    frame["anomaly"], frame["changepoint"] = anomaly, changepoint
    frame.to_csv(path, sep=";", index=False)
    return path


def series_of(path: Path) -> baseline.Labelled:
    f = read_labelled(path)
    values = f[list(COLUMNS)].to_numpy(float)
    return baseline.Labelled(path.name, f["datetime"].iloc[0], values, f["anomaly"].to_numpy())


class BaselineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.files = [skab_file(Path(cls.tmp.name, f"{i}.csv"), i, f"2020-03-09 1{i}:00:00") for i in range(4)]

    def test_finds_the_shift_in_a_file_it_never_saw(self) -> None:
        model = baseline.fit([series_of(p) for p in self.files[:3]], COLUMNS)
        frame = read_labelled(self.files[3])
        alarms = model.alarms(frame)[400:]
        truth = frame["anomaly"].to_numpy()[400:].astype(bool)
        self.assertGreater((alarms & truth).sum() / truth.sum(), 0.9)  # recall
        self.assertLess((alarms & ~truth).sum() / (~truth).sum(), 0.05)  # false alarm rate
        self.assertFalse(model.alarms(frame)[:400].any())  # the standardisation rows are never alarmed

    def test_features_look_neither_ahead_nor_past_the_training_rows(self) -> None:
        values = series_of(self.files[0]).values
        changed = values.copy()
        changed[600:] += 100.0  # the future, and rows after the training rows
        before, after = baseline.features(values, baseline.Params()), baseline.features(changed, baseline.Params())
        np.testing.assert_allclose(before[:600], after[:600], rtol=1e-9, atol=1e-12)  # summation order aside

    def test_time_ordered_scoring_uses_only_earlier_files(self) -> None:
        series = [series_of(p) for p in reversed(self.files)]  # given out of order
        held_out = baseline.forward_chain(series, COLUMNS, first=2)
        self.assertEqual(sorted(held_out), ["2.csv", "3.csv"])  # the two latest, each by a model of those before

    def test_one_class_is_refused(self) -> None:
        quiet = baseline.Labelled("q", pd.Timestamp(0), np.zeros((500, 3)), np.zeros(500, dtype=int))
        with self.assertRaisesRegex(ValueError, "only one class"):
            baseline.fit([quiet], COLUMNS)


class RegistryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        root = Path(cls.tmp.name)
        for folder in ("valve1", "valve2"):
            (root / folder).mkdir()
        # two folders with the same file names, as SKAB's: each file must count as its own series
        cls.files = [
            skab_file(root / f"valve{1 + i // 2}" / f"{i % 2}.csv", i, f"2020-03-09 1{i}:00:00") for i in range(4)
        ]
        cls.lake = root / "lake"
        cls.registry = Registry(str(cls.lake))

    def test_a_registered_model_loads_back_and_predicts_the_same(self) -> None:
        model = baseline.fit([series_of(p) for p in self.files[:3]], COLUMNS)
        first = self.registry.register("made-here", model, {"f1": 0.9, "nab_standard": float("nan")}, "data-1")
        second = self.registry.register("made-here", model, {"f1": 0.5}, "data-2")
        self.assertEqual((first.version, second.version), (1, 2))
        loaded = self.registry.load("made-here", 1)
        self.assertEqual(loaded.version, "made-here@1")
        values = series_of(self.files[3]).values
        np.testing.assert_array_equal(loaded.probability(values), model.probability(values))
        shown = self.registry.show("made-here", 1)  # an earlier version keeps what it was registered with
        self.assertEqual((shown.metrics, shown.data_version), ({"f1": 0.9}, "data-1"))
        self.assertEqual(shown.params["windows"], "(5, 15, 30)")
        self.assertEqual(self.registry.show("made-here").version, 2)  # newest by default
        with self.assertRaisesRegex(ValueError, r"has no version 7 \(has \[1, 2\]\)"):
            self.registry.show("made-here", 7)

    def test_the_command_line_trains_lists_and_scores_a_model(self) -> None:
        args = [a for p in self.files for a in ("--csv", str(p))]
        trained = run_cli("models", "train", "--lake", str(self.lake), "--name", "cli-model", *args)
        self.assertEqual(trained.returncode, 0, trained.stderr)
        self.assertIn("registered cli-model v1", trained.stdout)
        listed = run_cli("models", "list", "--lake", str(self.lake), "--json")
        versions = {(v["name"], v["version"]): v for v in json.loads(listed.stdout)}
        held = versions["cli-model", 1]
        self.assertEqual(held["metrics"]["files"], 4.0)
        self.assertEqual(held["metrics"]["held_out_files"], 1.0)  # the latest file scored by a model of the 3 before
        self.assertGreater(held["metrics"]["f1"], 0.8)
        self.assertEqual(len(held["data_version"]), 12)
        scored = run_cli("quality", "--lake", str(self.lake), "--csv", str(self.files[3]), "--model", "cli-model@1")
        self.assertEqual(scored.returncode, 0, scored.stderr)
        scores = pd.concat(pd.read_parquet(p) for p in (self.lake / "marts" / "detector_scores").rglob("*.parquet"))
        self.assertEqual(sorted(scores.detector), ["cli-model@1", "halfspace", "hotelling", "robust_z"])
        model_row = scores.set_index("detector").loc["cli-model@1"]
        self.assertEqual(model_row.detector_version, "cli-model@1")
        self.assertFalse(scores.in_sample.any())  # one of its training files alone: another data version
        again = run_cli("quality", "--lake", str(self.lake), *args, "--model", "cli-model@1")
        self.assertIn("cli-model@1: F1", again.stdout)
        self.assertIn("in-sample: trained on these files", again.stdout)
        everything = pd.concat(pd.read_parquet(p) for p in (self.lake / "marts" / "detector_scores").rglob("*.parquet"))
        flagged = everything[everything.in_sample]
        self.assertEqual(flagged.detector.tolist(), ["cli-model@1"])
        self.assertEqual(flagged.data_version.tolist(), [held["data_version"]])
        unknown = run_cli("models", "show", "nothing@1", "--lake", str(self.lake))
        self.assertEqual(unknown.returncode, 2)
        self.assertEqual(unknown.stderr.strip().splitlines()[-1][:26], "error: no model 'nothing' ")
        self.assertNotIn("Traceback", unknown.stderr)
        self.assertEqual(len(unknown.stderr.strip().splitlines()), 1, unknown.stderr)  # MLflow's logs quiet


if __name__ == "__main__":
    unittest.main()
