"""The stream job sends the API key of its settings (ETL_API_KEY), as the pulls do; without it, one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from tests.support import ROOT, ApiServer

SPAN = ["--since", "2024-12-31T23:40:00Z", "--until", "2025-01-01T00:00:00Z"]


class StreamApiKeyTest(unittest.TestCase):
    def run_job(self, server: ApiServer, lake: str, key: str | None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "ETL_API_KEY"} | ({"ETL_API_KEY": key} if key else {})
        cmd = [sys.executable, "-m", "etl", "stream", "--source", "robots", "--api", server.base, "--lake", lake,
               *SPAN, "--quiet"]  # fmt: skip
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    def test_the_job_reads_a_keyed_api_with_its_key_and_says_why_without(self) -> None:
        with ApiServer(API_KEY="s3cret-key") as server, tempfile.TemporaryDirectory() as tmp:
            done = self.run_job(server, str(Path(tmp, "with")), "s3cret-key")
            self.assertEqual(done.returncode, 0, done.stderr[-2000:])
            state = json.loads(Path(tmp, "with", "_state", "stream.json").read_text())
            self.assertEqual(state["scored"], 4 * 119, "20 minutes of 4 robots every 10 s after the exclusive since")
            self.assertNotIn("s3cret-key", done.stdout + done.stderr)
            refused = self.run_job(server, str(Path(tmp, "without")), None)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("401", refused.stderr)
            self.assertNotIn("Traceback", refused.stderr)


if __name__ == "__main__":
    unittest.main()
