"""The door anomaly detector on small, noisy counts: planted events are found, healthy counts
stay within the false-alarm budget. Hand-built data only (no simulator)."""

from __future__ import annotations

import shutil
import tempfile
import unittest
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from etl.lake import Lake
from etl.marts import read_mart
from etl.transform import TransformParams, transform
from tests.test_etl_transform import write_lake

START = pd.Timestamp("2024-06-03T00:00:00Z")  # a Monday
WEEKS = 14
STORES = [{"name": "Lyon", "timezone": "UTC", "doors": 12}]
PROFILE = np.array([0.3, 0.6, 1.0, 1.3, 1.5, 1.2, 1.0, 1.1, 1.4, 1.3, 0.9, 0.5])  # 08:00 .. 19:59
# (door, first hour, hours, factor): bursts on doors of 4-12 visits an hour at peak, an entrance
# closed for 4 hours, a day off at a door of 3 an hour.
PLANTED = [
    (6, pd.Timestamp("2024-08-06T10:00:00Z"), 3, 3.5),
    (7, pd.Timestamp("2024-08-14T15:00:00Z"), 3, 2.5),
    (9, pd.Timestamp("2024-08-22T12:00:00Z"), 1, 4.0),
    (11, pd.Timestamp("2024-08-29T09:00:00Z"), 4, 1.8),
    (8, pd.Timestamp("2024-08-08T11:00:00Z"), 4, 0.0),
    (5, pd.Timestamp("2024-08-20T08:00:00Z"), 12, 0.0),
]


def noisy_counts(seed: int, dispersion: float, day_dispersion: float) -> pd.DataFrame:
    """Gamma-Poisson counts, 1-12 visits an hour at peak by door, open 08-20 Monday to Saturday."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(START, START + pd.Timedelta(weeks=WEEKS), freq="h", inclusive="left")
    is_open = (hours.day_of_week < 6) & (hours.hour >= 8) & (hours.hour < 20)
    shape = np.where(is_open, PROFILE[np.clip(hours.hour - 8, 0, 11)], 0.0) * (1 + 0.3 * (hours.day_of_week == 5))
    days = (hours - START).days
    frames = []
    for door, peak in enumerate(np.geomspace(1.0, 12.0, STORES[0]["doors"])):
        day_factor = rng.gamma(1 / day_dispersion, day_dispersion, days.max() + 1)[days]
        hour_factor = rng.gamma(1 / dispersion, dispersion, len(hours))
        counts = rng.poisson(peak * shape * day_factor * hour_factor)
        frames.append(pd.DataFrame({"ts": hours, "store": "Lyon", "sensor_id": door, "count": counts}))
    return pd.concat(frames, ignore_index=True)


def plant(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Each planted event multiplies the door's expected counts: drawn again at the new rate."""
    rng = np.random.default_rng(seed)
    df = df.copy()
    for door, first, length, factor in PLANTED:
        rows = (df.sensor_id == door) & (df.ts >= first) & (df.ts < first + pd.Timedelta(hours=length))
        typical = df[
            (df.sensor_id == door) & df.ts.isin([t - pd.Timedelta(weeks=w) for t in df.ts[rows] for w in (1, 2, 3)])
        ]
        rate = typical["count"].mean()
        df.loc[rows, "count"] = rng.poisson(rate * factor, rows.sum())
    return df


class DoorDetectorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.params = TransformParams()
        cls.healthy = noisy_counts(3, dispersion=0.1, day_dispersion=0.02)
        cls.flags = cls.detect("healthy", cls.healthy)
        cls.planted = cls.detect("planted", plant(cls.healthy, 4))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    @classmethod
    def detect(cls, name: str, df: pd.DataFrame) -> pd.DataFrame:
        lake = write_lake(Path(cls.tmp.name, name), df, START, START + pd.Timedelta(weeks=WEEKS), STORES)
        transform(lake, cls.params)
        flags = read_mart(lake, "door_anomalies").to_pandas()
        return flags[(flags.resolution == "hour") & (flags.grain == "sensor")]

    def test_planted_bursts_dips_and_a_day_off_are_found(self) -> None:
        for door, first, length, factor in PLANTED:
            with self.subTest(door=door, factor=factor):
                end = first + pd.Timedelta(hours=length)
                hits = self.planted[
                    (self.planted.sensor_id == door) & (self.planted.ts >= first) & (self.planted.ts < end)
                ]
                self.assertGreater(len(hits), 0, f"door {door}: nothing flagged in {first} + {length} h")
                self.assertEqual(set(hits.direction), {"high" if factor > 1 else "low"})

    def test_a_run_of_flagged_hours_is_one_event(self) -> None:
        door, first, _, _ = PLANTED[5]  # the day off: 12 hours read about nothing
        hits = self.planted[(self.planted.sensor_id == door) & (self.planted.local_date == first.date())]
        hits = hits.sort_values("ts")
        self.assertGreater(len(hits), 3)
        runs = (hits.ts.diff() != pd.Timedelta(hours=1)).cumsum()
        for _, run in hits.groupby(runs):
            self.assertEqual(run.event_id.nunique(), 1)
            self.assertTrue(run.event_id.iloc[0].endswith(run.ts.iloc[0].strftime("%Y-%m-%dT%H:%MZ")))
        self.assertEqual(hits.event_id.nunique(), runs.nunique())

    def test_healthy_counts_stay_within_the_false_alarm_budget(self) -> None:
        # Judged from the second week with history on: 12 doors x 12 weeks.
        door_weeks = STORES[0]["doors"] * (WEEKS - 2)
        events = self.flags.event_id.nunique()
        self.assertLessEqual(events / door_weeks, self.params.anomaly_false_events_per_week, f"{events} events")
        high = self.flags[self.flags.direction == "high"]
        self.assertLess(len(high) / (door_weeks * 6), 0.3, "false high flags per door-day")

    def test_increments_give_what_a_rebuild_gives(self) -> None:
        # Hour by hour across a planted burst (its run of flags, its windows), then the rest.
        df = plant(self.healthy, 4)
        root, end = Path(self.tmp.name, "increments"), START + pd.Timedelta(weeks=WEEKS)
        split = pd.Timestamp("2024-08-14T14:00:00Z")
        lake = write_lake(root, df, START, split, STORES)
        transform(lake, self.params)
        for hour in range(4):
            at = split + pd.Timedelta(hours=hour)
            write_lake(root, df, at, at + pd.Timedelta(hours=1), STORES)
            self.assertEqual(len(transform(lake, self.params).dates), 1)
        write_lake(root, df, split + pd.Timedelta(hours=4), end, STORES)
        transform(lake, self.params)
        full = Path(self.tmp.name, "rebuilt")
        shutil.copytree(root / "raw", full / "raw")
        shutil.copytree(root / "reference", full / "reference")
        transform(Lake(str(full)), self.params, full=True)
        a, b = (read_mart(x, "door_anomalies").to_pandas() for x in (lake, Lake(str(full))))
        self.assertGreater(len(a), 50)
        a, b = (x.sort_values(list(x.columns)).reset_index(drop=True) for x in (a, b))
        pd.testing.assert_frame_equal(a, b)

    def test_scores_carry_their_probability_and_window(self) -> None:
        rows = self.planted
        self.assertTrue((rows.p_value < 1 - 0.5 * 10**-9).all())
        self.assertTrue(rows.window_hours.isin([1, 2, 4]).all())
        tail = 1.0 - NormalDist().cdf(self.params.anomaly_z)
        self.assertTrue(((rows.score.abs() > self.params.anomaly_z) & (rows.p_value < tail)).all())


if __name__ == "__main__":
    unittest.main()
