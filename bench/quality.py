"""Detector quality against the simulator's ground truth.

    .venv/bin/python bench/quality.py [--days 90] [--fleet api/fleets/original.toml] [--nab ../shared/data/nab]

Starts the API on 127.0.0.1 with a pinned clock, pulls `--days` days of doors (plus the
weeks of history the baselines need) into a temporary lake, runs the transform, and
scores `door_anomalies` against `/v1/events`: an event is found when an hourly flag of its door
(or, for a store-wide event, of its store) falls in its hours; flags outside every event are
false (per door-week, by event_id). `--nab` also scores the detector on NAB's nyc_taxi (see
bench/nab.py). Robots likewise: a block is found when an
incident of its level overlaps it on its axis. Prints recall and precision per detector.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.detect import detect  # noqa: E402
from bench.nab import load_profiles, load_series, nab_score, probation_rows  # noqa: E402
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


DOOR_TARGETS = ("anomaly", "burst", "dip", "day_off", "surge")  # what the detector should find; not failures
SIZE_BINS = [0.0, 0.35, 0.75, 1.25, 1.75, 3.0, 5.0]  # magnitude: the events' multiplier of expected traffic


def door_event_scores(
    flags: pd.DataFrame, events: pd.DataFrame, doors: int, days: float, show_missed: bool = False
) -> dict[str, float]:
    """Events found (an hourly flag of their door, or of any door or the total of their store for a
    store-wide event, inside their hours), by kind and size; flags outside every event."""
    hourly = flags[flags.resolution == "hour"]
    targets = events[events.type.isin(DOOR_TARGETS)].copy()
    found = []
    inside = np.zeros(len(hourly), bool)
    for e in targets.itertuples():
        same = (hourly.store == e.store).to_numpy() & (hourly.ts >= e.start).to_numpy() & (hourly.ts < e.end).to_numpy()
        if not pd.isna(e.sensor_id):
            same &= (hourly.sensor_id == e.sensor_id).to_numpy() & (hourly.grain == "sensor").to_numpy()
        found.append(bool(same.any()))
        inside |= same
    targets["found"] = found
    if show_missed:
        print(targets[~targets.found][["id", "start", "end", "type", "magnitude"]].to_string())
    out: dict[str, float] = {"events": len(targets), "recall": float(np.mean(found)) if found else float("nan")}
    for kind, rows in targets.groupby("type"):
        out[f"recall {kind} ({len(rows)})"] = rows.found.mean()
    sizes = pd.cut(targets.magnitude, SIZE_BINS, include_lowest=True)
    for size, rows in targets.groupby(sizes, observed=True):
        out[f"recall x{max(size.left, 0):g}-{size.right:g} ({len(rows)})"] = rows.found.mean()
    false = hourly[~inside & (hourly.grain == "sensor")]
    out["false events per door-week"] = false.event_id.nunique() / (doors * days / 7)
    out["false high flags per door-day"] = (false.direction == "high").sum() / (doors * days)
    return out


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
    # ALERT incidents on healthy stretches: overlapping no injected event (block or wear drift) of
    # their axis; the noise floor an engineer sees (issue 12: at most 0.5 an axis-day)
    healthy_alerts = sum(
        overlapping(events, i.robot_id, i.axis, i.start, i.end).empty
        for i in incidents[incidents.level == "ALERT"].itertuples()
    )
    axis_days = robots * 8 * weeks * 7
    return {
        "ERROR blocks": len(found["ERROR"]),
        "ERROR block recall": sum(found["ERROR"]) / max(1, len(found["ERROR"])),
        "ALERT blocks": len(found["ALERT"]),
        "ALERT block recall": sum(found["ALERT"]) / max(1, len(found["ALERT"])),
        "incidents": len(incidents),
        "false ERROR incidents": false_errors,
        "false ERROR per robot-week": false_errors / (robots * weeks),
        "ALERT incidents on healthy stretches": healthy_alerts,
        "... per axis-day": healthy_alerts / axis_days,
    }


def nab_report(folder: Path, params: TransformParams) -> None:
    """The detector on NAB's nyc_taxi (hourly sums of its 30-minute counts), as is and thinned
    to door scales (each passenger kept with probability median / target: real rhythms, small
    counts); NAB scores by its own rules, an hourly flag detecting at the hour's last row."""
    data, windows = load_series(folder)
    profiles = load_profiles(folder)
    hourly = data.set_index("timestamp").value.resample("h").sum()
    rng = np.random.default_rng(2024)
    in_window = np.zeros(len(data), bool)
    for a, b in windows:
        in_window[a : b + 1] = True
    days = (hourly.index[-1] - hourly.index[0]).days + 1 - 7 * params.anomaly_min_periods
    print(f"NAB nyc_taxi: {len(data):,} rows, {len(windows)} windows, probation {probation_rows(len(data))} rows")
    for target in (None, 20.0, 2.0):
        counts = hourly.to_numpy()
        if target:
            counts = rng.binomial(counts, target / np.median(counts))
        readings = pd.DataFrame(
            {"ts": hourly.index.tz_localize("UTC"), "store": "NYC", "sensor_id": 0, "count": counts}
        )
        flags = detect(readings, [{"name": "NYC", "timezone": "UTC", "doors": 1}], params)
        hours = flags[flags.grain == "sensor"]
        # Known at the end of its hour (or day): the last 30-minute row it covers.
        length = pd.to_timedelta(np.where(hours.resolution == "day", 24, 1), unit="h")
        known = hours.ts.dt.tz_convert(None) + length - pd.Timedelta(minutes=30)
        rows = np.searchsorted(data.timestamp.to_numpy(), known.to_numpy())
        scores = {name: nab_score(len(data), rows, windows, profile) for name, profile in profiles.items()}
        false = hours[~in_window[np.minimum(rows, len(data) - 1)]]
        label = "as is" if target is None else f"thinned to a median of {target:g} an hour"
        nab = {name: f"{score.normalised:.1f}" for name, score in scores.items()}
        print(
            f"  {label} (median {np.median(counts):,.0f} an hour): windows found {scores['standard'].windows_found}"
            f" of {len(windows)}; NAB standard {nab['standard']}, low FP {nab['reward_low_FP_rate']}, low FN"
            f" {nab['reward_low_FN_rate']}; flags outside windows {len(false)} ({false.event_id.nunique()} events,"
            f" {(false.direction == 'high').sum() / days:.3f} high flags a day)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--fleet", help="a fleet file for the API (FLEET_FILE; default: the API's own)")
    parser.add_argument("--nab", type=Path, help="NAB's folder (nyc_taxi.csv, labels.json, profiles.json)")
    parser.add_argument("--skip-simulator", action="store_true", help="only the NAB figures")
    parser.add_argument("--missed", action="store_true", help="list the simulator's events not found")
    args = parser.parse_args()
    params = TransformParams()
    if args.nab:
        missing = [n for n in ("nyc_taxi.csv", "labels.json", "profiles.json") if not (args.nab / n).is_file()]
        if missing:
            print(f"error: --nab {args.nab}: no {', '.join(missing)} there", file=sys.stderr)
            return 2
        nab_report(args.nab, params)
    if args.skip_simulator:
        return 0
    scored_from = CLOCK - dt.timedelta(days=args.days)
    pulled_from = scored_from - dt.timedelta(days=params.lookback_days)
    env = {"SIM_NOW": iso(CLOCK), **({"FLEET_FILE": str(Path(args.fleet).resolve())} if args.fleet else {})}
    with ApiServer(**env) as server, tempfile.TemporaryDirectory() as tmp:
        settings = EtlSettings(api_url=server.base, lake=tmp)
        client = ApiClient(settings, log=lambda line: None)
        pull(client, Lake(tmp), DOORS, settings, pulled_from, CLOCK)
        pull(client, Lake(tmp), ROBOTS, settings, scored_from - dt.timedelta(days=1), CLOCK)
        client.close()
        transform(Lake(tmp), params)
        flags = read_mart(Lake(tmp), "door_anomalies").to_pandas()
        incidents = read_mart(Lake(tmp), "robot_incidents").to_pandas()
        doors = sum(s["doors"] for s in Lake(tmp).read_fleet()["stores"])
        events, robot_events = (
            decode(server.get("/v1/events", kind=kind, start=iso(scored_from), end=iso(CLOCK), format="arrow").content,
                   "arrow", EVENTS).to_pandas()
            for kind in ("doors", "robots")
        )  # fmt: skip
    flags = flags[(flags.ts >= scored_from) & (flags.ts < CLOCK)]
    print(
        f"Door anomaly detector over {args.days} days to {iso(CLOCK)} ({args.fleet or 'default fleet'}, {doors} doors)"
    )
    print(f"  budget {params.anomaly_false_events_per_week} false event per door-week (z > {params.anomaly_z:.2f}), "
          f"min change {params.anomaly_min_change:.0%} and {params.anomaly_min_visits:g} visits, "
          f"{params.anomaly_weeks} weeks of history")  # fmt: skip
    for name, value in door_event_scores(flags, events, doors, args.days, args.missed).items():
        print(f"  {name:34s} {value:.3f}" if isinstance(value, float) else f"  {name:34s} {value}")
    incidents = incidents[(incidents.start >= scored_from) & (incidents.start < CLOCK)]
    print(f"Robot incidents over the same {args.days} days (4 robots x 8 axes)")
    for name, value in robot_scores(incidents, robot_events, args.days / 7).items():
        print(f"  {name:26s} {value:.3f}" if isinstance(value, float) else f"  {name:26s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
