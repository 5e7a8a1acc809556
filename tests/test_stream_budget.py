"""The stream job keeps ETL_MEMORY_BUDGET_MB whatever the number of keys: keys beyond it are refused, counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from etl.stream.flow import BASE_MB, KeyBudget
from tests.support import ROOT
from tests.test_stream_job import state, table


class KeyBudgetTest(unittest.TestCase):
    def test_the_budget_holds_as_many_keys_as_fit_and_restored_keys_stay(self) -> None:
        budget = KeyBudget(BASE_MB + 10, key_kib=5 * 1024)  # 10 MB over the job's own: 2 keys of 5 MB
        self.assertEqual(budget.max_keys, 2)
        self.assertEqual([budget.admit(k, False) for k in ("a", "b", "c", "a")], [True, True, False, True])
        self.assertTrue(budget.admit("d", restored=True))  # it held state before the restart

    def test_a_job_over_its_budget_scores_the_keys_that_fit_and_dead_letters_the_rest(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path, lake = Path(tmp) / "three.ndjson", Path(tmp) / "lake"
            rows = [{"ts": f"2025-01-01T00:00:{t:02d}Z", "sensor": s, "v": float(t)} for t in range(20)
                    for s in ("k1", "k2", "k3")]  # fmt: skip
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            env = {**os.environ, "ETL_MEMORY_BUDGET_MB": "64"}  # less than the job's own: one key only
            cmd = [sys.executable, "-m", "etl", "stream", "--source", f"file:{path}", "--kind", "replay", "--fields",
                   "v", "--lake", str(lake), "--quiet"]  # fmt: skip
            result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr[-1500:])
            counts, dead = state(lake), table(lake, "dead_letter", "stream")
        self.assertEqual((counts["records_in"], counts["scored"], counts["dead_letters"]), (60, 20, 40))
        reasons = set(dead.column("reason").to_pylist())
        self.assertEqual(len(reasons), 1)
        self.assertIn("over the memory budget: 1 keys", reasons.pop())
        self.assertEqual(len(set(dead.column("sensor").to_pylist())), 2)


if __name__ == "__main__":
    unittest.main()
