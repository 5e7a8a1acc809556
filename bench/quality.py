"""Detector quality against the simulator's ground truth.

    .venv/bin/python bench/quality.py [--days 90]

Starts the API on 127.0.0.1 with a pinned clock, pulls `--days` days of doors (plus the
weeks of history the baselines need) into a temporary lake, runs the transform, and
scores `door_anomalies` against `/v1/events`: an anomalous hour is found when a low
hourly flag names the same door and hour. Robots likewise: a block is found when an
incident of its level overlaps it on its axis. Prints recall and precision per detector.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.schemas import EVENTS  # noqa: E402
from etl.client import ApiClient, iso  # noqa: E402
from etl.datasets import DOORS, ROBOTS  # noqa: E402
from etl.lake import Lake  # noqa: E402
from etl.marts import read_mart  # noqa: E402
from etl.pull import pull  # noqa: E402
from etl.settings import EtlSettings  # noqa: E402
from etl.transform import TransformParams, transform  # noqa: E402
from etl.wire import decode  # noqa: E402
from tests.support import ApiServer  # noqa: E402

CLOCK = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def door_hour_scores(flags: pd.DataFrame, events: pd.DataFrame) -> dict[str, float]:
    """Recall of injected anomalous hours and precision of the low hourly door flags."""
    truth = events[events.type == "anomaly"][["store", "sensor_id", "start"]].rename(columns={"start": "ts"})
    low = flags[(flags.resolution == "hour") & (flags.grain == "sensor") & (flags.direction == "low")]
    low = low[["store", "sensor_id", "ts"]].astype({"sensor_id": "int64"})
    truth = truth.astype({"sensor_id": "int64"})
    hits = low.merge(truth, on=["store", "sensor_id", "ts"], how="inner")
    return {
        "injected anomalous hours": len(truth),
        "low hourly flags": len(low),
        "recall": len(hits) / len(truth) if len(truth) else float("nan"),
        "precision": len(hits) / len(low) if len(low) else float("nan"),
    }


def surge_scores(flags: pd.DataFrame, events: pd.DataFrame) -> dict[str, float]:
    """How many store-wide surges show up as a high hourly store flag."""
    surges = events[events.type == "surge"]
    high = flags[(flags.resolution == "hour") & (flags.grain == "store") & (flags.direction == "high")]
    found = sum(((high.store == s.store) & (high.ts >= s.start) & (high.ts < s.end)).any() for s in surges.itertuples())
    return {"surges": len(surges), "surges flagged": found}


def robot_scores(incidents: pd.DataFrame, events: pd.DataFrame, weeks: float) -> dict[str, float]:
    """Block recall by level (an incident of the block's level overlaps it) and false ERROR incidents."""
    blocks = events[events.type == "anomaly"]

    def overlapping(rows: pd.DataFrame, robot_id: str, axis: str, start, end) -> pd.DataFrame:
        same = (rows.robot_id == robot_id) & (rows.axis == axis)
        return rows[same & (rows.start < end) & (rows["end"] > start)]

    found = {"ALERT": [], "ERROR": []}
    for b in blocks.itertuples():
        hits = overlapping(incidents, b.robot_id, b.axis, b.start, b.end)
        found[b.level].append(bool((hits.level == b.level).any()))
    errors = incidents[incidents.level == "ERROR"]
    false_errors = sum(
        not (overlapping(blocks, i.robot_id, i.axis, i.start, i.end).level == "ERROR").any()
        for i in errors.itertuples()
    )
    robots = incidents.robot_id.nunique() or 4
    return {
        "ERROR blocks": len(found["ERROR"]),
        "ERROR block recall": sum(found["ERROR"]) / max(1, len(found["ERROR"])),
        "ALERT blocks": len(found["ALERT"]),
        "ALERT block recall": sum(found["ALERT"]) / max(1, len(found["ALERT"])),
        "incidents": len(incidents),
        "false ERROR incidents": false_errors,
        "false ERROR per robot-week": false_errors / (robots * weeks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    params = TransformParams()
    scored_from = CLOCK - dt.timedelta(days=args.days)
    pulled_from = scored_from - dt.timedelta(days=params.lookback_days)
    with ApiServer(SIM_NOW=iso(CLOCK)) as server, tempfile.TemporaryDirectory() as tmp:
        settings = EtlSettings(api_url=server.base, lake=tmp)
        client = ApiClient(settings, log=lambda line: None)
        pull(client, Lake(tmp), DOORS, settings, pulled_from, CLOCK)
        pull(client, Lake(tmp), ROBOTS, settings, scored_from - dt.timedelta(days=1), CLOCK)
        client.close()
        transform(Lake(tmp), params)
        flags = read_mart(Lake(tmp), "door_anomalies").to_pandas()
        incidents = read_mart(Lake(tmp), "robot_incidents").to_pandas()
        events, robot_events = (
            decode(server.get("/v1/events", kind=kind, start=iso(scored_from), end=iso(CLOCK), format="arrow").content,
                   "arrow", EVENTS).to_pandas()
            for kind in ("doors", "robots")
        )  # fmt: skip
    flags = flags[(flags.ts >= scored_from) & (flags.ts < CLOCK)]
    print(f"Door anomaly detector over {args.days} days to {iso(CLOCK)} (default fleet, 39 doors)")
    print(f"  k = {params.anomaly_k} robust sigmas, min change {params.anomaly_min_change:.0%}, "
          f"{params.anomaly_weeks} weeks of history")  # fmt: skip
    for name, value in {**door_hour_scores(flags, events), **surge_scores(flags, events)}.items():
        print(f"  {name:26s} {value:.3f}" if isinstance(value, float) else f"  {name:26s} {value}")
    incidents = incidents[(incidents.start >= scored_from) & (incidents.start < CLOCK)]
    print(f"Robot incidents over the same {args.days} days (4 robots x 8 axes)")
    for name, value in robot_scores(incidents, robot_events, args.days / 7).items():
        print(f"  {name:26s} {value:.3f}" if isinstance(value, float) else f"  {name:26s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
