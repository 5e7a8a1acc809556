"""The streaming job (`python -m etl stream`) as real processes against a real API on 127.0.0.1."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.support import ROOT, AlertReceivers, ApiServer, free_port

SENSORS = ("s1", "s2", "s3", "s4")
ROWS = 400  # per sensor, one a second
SETTLE, WARMUP = 20, 150
FAST = ["--settle", str(SETTLE), "--warmup", str(WARMUP), "--snapshot-seconds", "0.5"]


def write_plant(folder: Path) -> None:
    """Four sensors, two fields, a few empty cells, and a 12 s block of large values on s1 and s3 after warm-up."""
    rng = np.random.default_rng(7)
    lines = ["When,Who,Temp,Flow"]
    for t in range(ROWS):
        stamp = f"2025-03-01T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"
        for k, sensor in enumerate(SENSORS):
            temp, flow = 20 + k + rng.normal(0, 0.5), 5 + rng.normal(0, 0.2)
            if sensor in ("s1", "s3") and 300 <= t < 312:
                temp, flow = temp + 6, flow - 2
            temp_text = "" if (t * 7 + k) % 53 == 0 else f"{temp:.4f}"  # missing now and then: imputed
            lines.append(f"{stamp},{sensor},{temp_text},{flow:.4f}")
    (folder / "plant.csv").write_text("\n".join(lines) + "\n")
    (folder / "plant.csv.map").write_text("When=ts,Who=sensor,Temp=temp,Flow=flow")


def job(api: ApiServer, lake: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "etl", "stream", "--api", api.base, "--lake", str(lake), *FAST, *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(process: subprocess.Popen, timeout: float = 60) -> str:
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise AssertionError(f"job exited {process.returncode}: {err[-2000:]}")
    return out


def table(lake: Path, *folder: str) -> pa.Table | None:
    files = sorted((lake.joinpath(*folder)).glob("date=*/part-*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.ParquetFile(f).read() for f in files]).sort_by("key")


def state(lake: Path) -> dict:
    return json.loads((lake / "_state" / "stream.json").read_text())


class StreamJobTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = Path(cls.tmp.name)
        (cls.root / "replays").mkdir()
        write_plant(cls.root / "replays")
        cls.api = ApiServer(API_REPLAY_PATHS=str(cls.root / "replays" / "plant.csv")).__enter__()
        cls.reference = cls.root / "reference"
        finish(job(cls.api, cls.reference, "--source", "replay:plant", "--speed", "100000", "--write-scores"))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.api.__exit__(None, None, None)
        cls.tmp.cleanup()

    def test_imputation_scaling_and_scores_per_key_match_a_hand_computation_and_river(self) -> None:
        from river.anomaly import HalfSpaceTrees

        scores = table(self.reference, "stream", "scores")
        rows = [r for r in lines_of(self.api, "plant") if r["sensor"] == "s2"]
        expected, hst = [], HalfSpaceTrees(n_trees=10, height=8, window_size=72, seed=42)
        seen: list[list[float]] = [[], []]
        history: list[list[float]] = []
        for r in rows:
            x = []
            for i, name in enumerate(("temp", "flow")):
                v = r[name]
                x.append(float(np.mean(seen[i])) if v is None and seen[i] else 0.0 if v is None else v)
                if v is not None:
                    seen[i].append(v)
            past = np.array(history) if history else np.zeros((0, 2))
            u = {}
            for i in range(2):
                std = float(np.std(past[:, i], ddof=1)) if len(past) > 1 else 0.0
                z = (x[i] - float(np.mean(past[:, i]))) / std if std > 0 else 0.0
                u[i] = min(1.0, max(0.0, 0.5 + z / 8))
            history.append(x)
            expected.append(hst.score_one(u))
            hst.learn_one(u)
        got = scores.filter(pa.compute.equal(scores.column("sensor"), "s2")).sort_by("ts").column("score").to_pylist()
        self.assertEqual(len(got), ROWS)
        self.assertTrue(any(r["temp"] is None for r in rows))  # the hand computation did impute
        for a, b in zip(got, expected, strict=True):
            self.assertTrue(math.isclose(a, b, abs_tol=1e-9), (a, b))
        # thresholds: the warm-up's quantiles, per key
        calib = np.array(expected[SETTLE : SETTLE + WARMUP])
        alert = float(np.quantile(calib, 0.99))
        flagged = [i for i, s in enumerate(expected) if i >= SETTLE + WARMUP and s > alert]
        levels = scores.filter(pa.compute.equal(scores.column("sensor"), "s2")).sort_by("ts").column("level")
        self.assertEqual([i for i, lv in enumerate(levels.to_pylist()) if lv], flagged)

    def test_the_injected_blocks_raise_alerts_on_their_sensors(self) -> None:
        alerts = table(self.reference, "alerts", "stream").to_pylist()
        in_block = {a["sensor"] for a in alerts if 300 <= seconds(a["start"]) < 312}
        self.assertEqual(in_block, {"s1", "s3"})
        counts = state(self.reference)
        self.assertEqual((counts["records_in"], counts["scored"], counts["dead_letters"]), (4 * ROWS, 4 * ROWS, 0))
        self.assertEqual(counts["alerts"], sum(1 for a in alerts))

    def test_a_run_killed_mid_stream_and_restarted_gives_the_alerts_of_an_uninterrupted_run(self) -> None:
        lake, recovery = self.root / "killed", self.root / "recovery"
        args = ("--source", "replay:plant", "--speed", "60", "--recovery", str(recovery), "--quiet")
        first = job(self.api, lake, *args)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # kill once it has written some counts, mid-stream
            if (lake / "_state" / "stream.json").exists() and state(lake)["records_in"] >= 400:
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        self.assertLess(state(lake)["records_in"], 4 * ROWS)  # it really died mid-stream
        finish(job(self.api, lake, *args[:3], "100000", *args[4:]))
        self.assert_same_outcome(lake)
        self.assertLess(state(lake)["this_run"], 4 * ROWS)  # the restart resumed from a checkpoint, not the start

    def test_two_workers_and_two_processes_give_the_alerts_of_one(self) -> None:
        two = self.root / "two-workers"
        finish(job(self.api, two, "--source", "replay:plant", "--speed", "100000", "-w", "2"))
        self.assert_same_outcome(two)
        cluster = self.root / "cluster"
        addresses = f"127.0.0.1:{free_port()};127.0.0.1:{free_port()}"
        procs = [job(self.api, cluster, "--source", "replay:plant", "--speed", "100000", "-i", str(i), "-a",
                     addresses) for i in range(2)]  # fmt: skip
        for p in procs:
            finish(p)
        self.assert_same_outcome(cluster)

    def test_the_live_tab_reads_the_jobs_scores_and_alert_spans(self) -> None:
        from dashboard.live_tab import alert_spans, live_chart, recent_scores

        scores = recent_scores(self.reference, "s1", 60)
        self.assertEqual(len(scores), ROWS)
        self.assertEqual(list(scores.columns[:3]), ["ts", "score", "level"])
        self.assertEqual(scores["ts"].is_monotonic_increasing, True)
        spans = alert_spans(self.reference, "s1", scores["ts"].min(), scores["ts"].max())
        self.assertTrue(((spans["start"] - scores["ts"].min()).dt.total_seconds().between(300, 312)).any())
        self.assertIsNotNone(live_chart(scores, spans, "axis1").to_dict())
        self.assertEqual(len(recent_scores(self.reference, "s1", 1)), 61)  # the last minute, both ends in

    def assert_same_outcome(self, lake: Path) -> None:
        self.assertEqual(table(lake, "alerts", "stream"), table(self.reference, "alerts", "stream"))
        got, want = state(lake), state(self.reference)
        for k in ("records_in", "scored", "alerts", "errors", "dead_letters", "last_ts"):
            self.assertEqual(got[k], want[k], k)

    def test_new_alerts_go_to_the_webhook_once_each(self) -> None:
        with AlertReceivers() as receivers:
            lake = self.root / "webhook"
            env = {"ETL_ALERT_WEBHOOK": receivers.webhook_url}
            finish(job(self.api, lake, "--source", "replay:plant", "--speed", "100000", env=env))
            finish(job(self.api, lake, "--source", "replay:plant", "--speed", "100000", env=env))  # a rerun
        keys = [a["key"] for post in receivers.posts for a in post["alerts"]]
        self.assertEqual(sorted(keys), table(self.reference, "alerts", "stream").column("key").to_pylist())


def seconds(stamp) -> int:
    return stamp.hour * 3600 + stamp.minute * 60 + stamp.second


def lines_of(api: ApiServer, name: str) -> list[dict]:
    return [json.loads(line) for line in api.get(f"/v1/stream/replay/{name}", speed=100000).iter_lines() if line]


class LiveStreamTest(unittest.TestCase):
    def test_a_live_stream_cut_every_second_is_read_whole_through_reconnects(self) -> None:
        # The clock runs 300x from PINNED_NOW and the API closes every connection after 1 s: the job
        # reads 10 minutes of backlog and 40 live minutes (8 s of wall time from the server's start,
        # so at least 4 connections however long the job takes to start), each resumed from its
        # cursor, and must see every sample in (since, until) once.
        with tempfile.TemporaryDirectory() as tmp, ApiServer(SIM_SPEED="300", API_STREAM_MAX_SECONDS="1") as api:
            lake = Path(tmp) / "lake"
            began = time.monotonic()
            finish(job(api, lake, "--source", "robots", "--since", "2024-12-31T23:50:00Z", "--until",
                       "2025-01-01T00:40:00Z", "--quiet"))  # fmt: skip
            counts = state(lake)
        self.assertGreater(time.monotonic() - began, 3)  # it waited for the clock
        self.assertEqual((counts["scored"], counts["dead_letters"]), (299 * 4, 0))  # 23:50:10 .. 00:39:50
        self.assertEqual(counts["last_ts"], "2025-01-01T00:39:50Z")


class DeadLetterTest(unittest.TestCase):
    def test_bad_records_are_counted_and_kept_with_their_reason_and_never_stop_the_flow(self) -> None:
        good = [{"ts": f"2025-01-01T00:{m:02d}:00Z", "robot_id": "robot-1", **{f"axis{i}": 1.0 + m % 3 for i in
                 range(1, 9)}} for m in range(30)]  # fmt: skip
        line = lambda **change: json.dumps({**good[0], **change}).encode()  # noqa: E731
        bad = [
            (b"{not json", "malformed JSON"),
            (b"[1, 2]", "not a JSON object"),
            (b'{"ts": "yesterday", "robot_id": "robot-1"}', "ts: 'yesterday'"),
            (line(ts="2025-01-01T00:40:00Z", axis3="abc"), "axis3: expected a number"),
            (line(ts="2025-01-01T00:41:00Z", robot_id="robot-99"), "unknown sensor"),
            (line(ts="2025-01-01T00:05:30Z"), "time going backwards"),
        ]
        body = (
            [json.dumps(r).encode() for r in good[:20]]
            + [b for b, _ in bad]
            + [json.dumps(r).encode() for r in good[20:]]
        )
        with tempfile.TemporaryDirectory() as tmp, ApiServer() as api:
            path, lake = Path(tmp) / "captured.ndjson", Path(tmp) / "lake"
            path.write_bytes(b"\n".join(body) + b"\n")
            finish(job(api, lake, "--source", f"file:{path}", "--kind", "robots"))
            dead = table(lake, "dead_letter", "stream")
            counts = state(lake)
        reasons = sorted(dead.column("reason").to_pylist())
        self.assertEqual(len(reasons), len(bad))
        for _, reason in bad:
            self.assertTrue(any(reason in r for r in reasons), (reason, reasons))
        self.assertIn("{not json", dead.column("raw").to_pylist())
        self.assertEqual((counts["dead_letters"], counts["scored"], counts["records_in"]), (6, 30, 36))
        self.assertEqual(counts["last_ts"], "2025-01-01T00:29:00Z")  # the flow went on after them

    def test_a_bad_source_is_one_line_and_exit_2(self) -> None:
        result = subprocess.run([sys.executable, "-m", "etl", "stream", "--source", "nowhere"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        self.assertEqual(result.returncode, 2)
        self.assertTrue(result.stderr.startswith("error: --source 'nowhere'"), result.stderr)


if __name__ == "__main__":
    unittest.main()
