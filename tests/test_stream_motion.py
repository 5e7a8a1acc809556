"""The streaming job's duty-cycle-aware detector (`--detector motion`): by hand, and killed and restarted."""

from __future__ import annotations

import math
import signal
import tempfile
import time
import unittest
from pathlib import Path

import numpy as np

from etl.detectors import motion
from etl.stream.detectors import DETECTORS
from etl.stream.step import Reading, StepParams, step
from tests.support import ApiServer
from tests.test_stream_job import finish, job, state, table

ROWS = 700  # per machine, one a second


def write_machines(folder: Path) -> None:
    """Two machines, two axes each moving 7 s of every 20 (exactly 0 at rest); m1's axis a is
    3 sigmas high for 40 s after its warm-up."""
    rng = np.random.default_rng(3)
    lines = ["When,Who,A,B"]
    for t in range(ROWS):
        stamp = f"2025-03-01T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
        for machine in ("m1", "m2"):
            a = 10 + rng.normal() + (3.0 if machine == "m1" and 500 <= t < 540 else 0.0)
            b = 4 + 0.5 * rng.normal()
            a = a if t % 20 < 7 else 0.0
            b = b if (t + 10) % 20 < 7 else 0.0
            lines.append(f"{stamp},{machine},{a:.4f},{b:.4f}")
    (folder / "machines.csv").write_text("\n".join(lines) + "\n")
    (folder / "machines.csv.map").write_text("When=ts,Who=sensor,A=a,B=b")


class MotionByHandTest(unittest.TestCase):
    def test_rests_are_counted_not_scored_and_the_score_is_the_debounced_ewma_of_z(self) -> None:
        p = motion.Params(alpha=0.5, fit=3, k=2, n=3, memory=1000, clip=3.0)
        state = motion.init(p, 1)
        stream = [0.0, 1.0, 0.0, 3.0, None, 2.0, 0.0, 10.0, 12.0, 2.0]
        scores = []
        for v in stream:
            score, state = motion.step(state, (v,))
            scores.append(score)
        # fitting on the first 3 moving samples (1, 3, 2): mean 2, population variance 2/3
        mean, var = 2.0, 2 / 3
        z1 = (10 - mean) / math.sqrt(var)
        e1 = 0.5 * z1
        learned = mean + 3.0 * math.sqrt(var)  # 10 is beyond 3 sigmas: the baseline learns it clipped
        d = learned - mean
        mean, var = mean + d / 4, (3 / 4) * (var + d * d / 4)
        z2 = (12 - mean) / math.sqrt(var)
        e2 = 0.5 * e1 + 0.5 * z2
        d = mean + 3.0 * math.sqrt(var) - mean
        mean, var = mean + d / 5, (4 / 5) * (var + d * d / 5)
        e3 = 0.5 * e2 + 0.5 * (2.0 - mean) / math.sqrt(var)  # within 3 sigmas: learned as it is
        mean += (2.0 - mean) / 6
        self.assertEqual(scores[:8], [0.0] * 8)  # rests, a missing value, the fit, then 1 of the 2 needed
        self.assertAlmostEqual(scores[8], min(abs(e1), abs(e2)), places=12)  # 2 of the last 3 agree
        self.assertAlmostEqual(scores[9], sorted([abs(e1), abs(e2), abs(e3)])[-2], places=12)
        f = state["fields"][0]
        self.assertEqual((f[motion.RESTS], f[motion.N]), (3, 6))  # the rests counted, the None not at all
        self.assertAlmostEqual(f[motion.MEAN], mean, places=12)

    def test_in_the_step_a_block_on_moving_samples_alerts_and_rests_do_not(self) -> None:
        rng = np.random.default_rng(11)
        params = StepParams(n_features=2, detector=DETECTORS["motion"])
        st, levels = None, []
        for t in range(3000):
            a = (10 + rng.normal() + (2.5 if 2000 <= t < 2050 else 0.0)) if t % 20 < 7 else 0.0
            b = (4 + 0.5 * rng.normal()) if (t + 10) % 20 < 7 else 0.0
            st, out = step(st, Reading("m", t * 1_000_000, str(t), (a, b), 0.0), params)
            levels.append(out[0][1][3])
        flagged = [t for t, lv in enumerate(levels) if lv]
        self.assertTrue(any(2000 <= t < 2070 for t in flagged), "the 2.5-sigma block is found")
        self.assertEqual([t for t in flagged if not 2000 <= t < 2070], [], "no alert outside it")
        self.assertEqual(st["thresholds"], (2.0, 4.0))  # the warm-up's quantiles were below the floors


class MotionJobTest(unittest.TestCase):
    def test_killed_and_restarted_it_gives_the_alerts_of_an_uninterrupted_run(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_machines(root)
            with ApiServer(API_REPLAY_PATHS=str(root / "machines.csv")) as api:
                reference, lake, recovery = root / "reference", root / "killed", root / "recovery"
                flags = (
                    "--source",
                    "replay:machines",
                    "--detector",
                    "motion",
                    "--quiet",
                    "--settle",
                    "72",
                    "--warmup",
                    "328",
                )
                finish(job(api, reference, *flags, "--speed", "100000"))
                first = job(api, lake, *flags, "--speed", "150", "--recovery", str(recovery))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # kill it mid-stream, once it has counted some records
                    if (lake / "_state" / "stream.json").exists() and state(lake)["records_in"] >= 500:
                        break
                    time.sleep(0.05)
                first.send_signal(signal.SIGKILL)
                first.communicate(timeout=30)
                self.assertLess(state(lake)["records_in"], 2 * ROWS)
                finish(job(api, lake, *flags, "--speed", "100000", "--recovery", str(recovery)))
            # inside the folder: the lakes go with it
            alerts = table(reference, "alerts", "stream")
            self.assertIsNotNone(alerts)
            self.assertEqual(set(alerts.column("sensor").to_pylist()), {"m1"})  # the block, nothing on m2
            self.assertEqual(table(lake, "alerts", "stream"), alerts)
            for k in ("records_in", "scored", "alerts", "last_ts"):
                self.assertEqual(state(lake)[k], state(reference)[k], k)
            self.assertLess(state(lake)["this_run"], 2 * ROWS)  # resumed from a checkpoint


if __name__ == "__main__":
    unittest.main()
