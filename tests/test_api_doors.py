"""The door simulator, in process: purity, opening hours, and injected events visible in the data."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import tempfile
import unittest
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from api.fleet import DEFAULT_FLEET_FILE, FLEETS_DIR, load_fleet
from api.simulate.doors import DoorSimulator, local_calendar
from tests.support import ApiServer

ORIGINAL = FLEETS_DIR / "original.toml"  # these tests check the original's model: its scale and 10 % hours


def hour_of(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) // 3600


def year_2024(sim: DoorSimulator) -> pa.Table:
    h0, h1 = hour_of("2024-01-01T00:00:00+00:00"), hour_of("2025-01-01T00:00:00+00:00")
    return pa.concat_tables(sim.reading_chunks(h0, h1, sim.select(), 50_000))


class DoorSimulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.fleet = load_fleet(ORIGINAL)
        cls.sim = DoorSimulator(cls.fleet)
        cls.year = year_2024(cls.sim).to_pandas()
        cls.year["h"] = cls.year["ts"].astype("int64") // 3_600_000_000

    def test_one_row_per_door_per_hour_of_2024(self) -> None:
        self.assertEqual(len(self.year), 342_576)
        self.assertFalse(self.year.duplicated(["ts", "store", "sensor_id"]).any())

    def test_bulk_equals_single_for_random_samples(self) -> None:
        rng = np.random.default_rng(7)
        sample = self.year.iloc[rng.choice(len(self.year), 300, replace=False)]
        for row in sample.itertuples():
            alone = self.sim.readings(row.h, row.h + 1, self.sim.select(row.store, row.sensor_id)).to_pylist()
            self.assertEqual(len(alone), 1)
            expected = None if np.isnan(row.count) else int(row.count)
            self.assertEqual(alone[0]["count"], expected, f"{row.store}/{row.sensor_id} at {row.ts}")

    def test_chunking_does_not_change_values(self) -> None:
        h0 = hour_of("2024-03-01T00:00:00+00:00")
        whole = self.sim.readings(h0, h0 + 24 * 14, self.sim.select())
        pieces = pa.concat_tables(self.sim.reading_chunks(h0, h0 + 24 * 14, self.sim.select(), 1_000))
        self.assertTrue(whole.equals(pieces))

    def test_a_new_simulator_gives_the_same_values(self) -> None:
        again = year_2024(DoorSimulator(load_fleet(ORIGINAL))).to_pandas()
        self.assertTrue(again["count"].equals(self.year["count"]))

    def test_neighbouring_doors_and_hours_differ(self) -> None:
        open_rows = self.year[self.year["count"] > 0]
        paris = open_rows[open_rows.store == "Paris"].pivot_table(index="ts", columns="sensor_id", values="count")
        ratios = (paris / paris.mean()).dropna()
        # Doors share the store's rhythm, but never their noise: no two columns are identical.
        self.assertEqual(ratios.T.drop_duplicates().shape[0], ratios.shape[1])
        self.assertLess(np.corrcoef(ratios[0].diff().dropna(), ratios[1].diff().dropna())[0, 1], 0.9)

    def test_zero_outside_local_opening_hours_including_after_dst_changes(self) -> None:
        # 2024's European DST changes fall on Sundays (31 March, 27 October): check the
        # Monday-Saturday after each change, and the change days themselves.
        weeks = [("2024-03-31", "2024-04-07"), ("2024-10-27", "2024-11-03")]
        for store in self.fleet.stores:
            tz = ZoneInfo(store.timezone)
            rows = self.year[self.year.store == store.name]
            for first, last in weeks:
                span = rows[(rows.ts >= first) & (rows.ts < last)]
                local = span.ts.dt.tz_convert(tz)
                is_open = (local.dt.day_of_week < 6) & (local.dt.hour >= 8) & (local.dt.hour < 18)
                closed = span[~is_open]["count"].dropna()
                self.assertTrue((closed == 0).all(), f"{store.name}: visits while closed near {first}")
                opened = span[is_open]["count"].dropna()
                self.assertTrue((opened > 0).mean() > 0.95, f"{store.name}: empty open hours near {first}")
                open_hours = sorted(set(local[is_open].dt.hour))
                self.assertEqual(open_hours, list(range(8, 18)))

    def test_local_calendar_follows_dst(self) -> None:
        hours = np.array([hour_of("2024-03-30T12:00:00+00:00"), hour_of("2024-04-01T12:00:00+00:00")])
        _, local_hour, weekday = local_calendar("Europe/Paris", hours)
        self.assertEqual(local_hour.tolist(), [13, 14])  # CET then CEST
        self.assertEqual(weekday.tolist(), [5, 0])

    def test_local_calendar_agrees_for_one_hour_and_for_many(self) -> None:
        # A handful of hours goes through zoneinfo, many through pandas: same answers, DST included.
        hours = np.arange(hour_of("2024-01-01T00:00:00+00:00"), hour_of("2025-01-01T00:00:00+00:00"), dtype=np.int64)
        for tz in ("Europe/Paris", "Europe/London", "Europe/Madrid"):
            many = local_calendar(tz, hours)
            few = [local_calendar(tz, hours[i : i + 24]) for i in range(0, len(hours), 24)]
            for k in range(3):
                np.testing.assert_array_equal(many[k], np.concatenate([f[k] for f in few]), err_msg=tz)

    def test_rows_start_when_the_store_opened(self) -> None:
        madrid = self.sim.store_sim("Madrid")
        h = madrid.opened_hour
        self.assertEqual(dt.datetime.fromtimestamp(h * 3600, dt.UTC).isoformat(), "2023-12-31T23:00:00+00:00")
        before = self.sim.readings(h - 48, h, self.sim.select("Madrid"))
        self.assertEqual(before.num_rows, 0)
        self.assertEqual(self.sim.readings(h - 48, h + 2, self.sim.select("Madrid")).num_rows, 2)

    def test_traffic_is_realistic(self) -> None:
        weights = {ss.store.name: ss.weights for ss in self.sim.stores}
        self.assertLess(min(weights["Paris"]), 0.1, "some doors are barely used")
        self.assertGreater(max(weights["Paris"]), 2.0)
        local = self.year[self.year.store == "Paris"].copy()
        local["weekday"] = local.ts.dt.tz_convert("Europe/Paris").dt.day_of_week
        by_day = local.groupby("weekday")["count"].sum()
        self.assertGreater(by_day[5], 1.3 * by_day[0], "Saturday is busier than Monday")
        self.assertEqual(by_day[6], 0, "closed on Sunday")
        # k = years open: London (2014) counts far more per door than Madrid (2024).
        per_door = self.year[self.year["count"] > 0].groupby("store")["count"].mean()
        self.assertGreater(per_door["London"], 5 * per_door["Madrid"])


class DoorEventsTest(unittest.TestCase):
    """Every listed event is visible in the data as described."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.sim = DoorSimulator(load_fleet(ORIGINAL))
        cls.h0, cls.h1 = hour_of("2024-01-01T00:00:00+00:00"), hour_of("2025-01-01T00:00:00+00:00")
        cls.events = cls.sim.events(cls.h0, cls.h1).to_pandas()
        data = year_2024(cls.sim).to_pandas()
        data["h"] = data["ts"].astype("int64") // 3_600_000_000
        cls.data = data.set_index(["store", "sensor_id", "h"])["count"].sort_index()

    def of_type(self, kind: str):
        rows = self.events[self.events.type == kind]
        self.assertGreater(len(rows), 0, f"no {kind} events in 2024")
        return rows

    @staticmethod
    def hours(row) -> tuple[int, int]:
        return int(row.start.timestamp()) // 3600, int(row.end.timestamp()) // 3600

    def test_failed_doors_read_null_for_the_whole_failure(self) -> None:
        for row in self.of_type("failure").itertuples():
            s, e = self.hours(row)
            window = self.data.loc[(row.store, row.sensor_id)].loc[max(s, self.h0) : min(e, self.h1) - 1]
            self.assertTrue(window.isna().all(), f"{row.id} {row.start}")
            if s - 1 >= self.h0:
                self.assertFalse(np.isnan(self.data.loc[(row.store, row.sensor_id, s - 1)]), "null before the failure")

    def test_every_null_is_a_listed_failure(self) -> None:
        failed = self.events[self.events.type == "failure"]
        covered = sum(min(e, self.h1) - max(s, self.h0) for s, e in map(self.hours, failed.itertuples()))
        self.assertEqual(int(self.data.isna().sum()), covered)

    def test_anomalous_hours_read_a_tenth_of_the_usual(self) -> None:
        for row in self.of_type("anomaly").itertuples():
            h, _ = self.hours(row)
            series = self.data.loc[(row.store, row.sensor_id)]
            same_hour = [series.get(h + 168 * k) for k in (-3, -2, -1, 1, 2, 3)]
            usual = np.nanmedian([v for v in same_hour if v is not None and v > 0])
            self.assertLess(series[h], 0.35 * usual, f"{row.id} at {row.start}")

    def test_surges_multiply_store_traffic(self) -> None:
        for row in self.of_type("surge").itertuples():
            s, e = self.hours(row)
            store = self.data.loc[row.store].groupby(level="h").sum(min_count=1)
            during = store.loc[s : e - 1]
            before = store.reindex([h - 168 for h in range(s, e)])
            self.assertGreater((during.values / before.values).mean(), 1.4, f"{row.id} at {row.start}")
            self.assertGreater(row.magnitude, 1.7)

    def test_expansions_raise_store_traffic_by_their_gain(self) -> None:
        h0, h1 = hour_of("2014-03-01T00:00:00+00:00"), hour_of("2025-01-01T00:00:00+00:00")
        events = self.sim.events(h0, h1).to_pandas()
        expansions = events[events.type == "expansion"]
        self.assertGreater(len(expansions), 3)
        four_weeks = 24 * 28
        for row in expansions.itertuples():
            s, e = self.hours(row)
            ss = self.sim.store_sim(row.store)
            before = self.sim.readings(s - four_weeks, s, self.sim.select(row.store)).column("count")
            after = self.sim.readings(e, e + four_weeks, self.sim.select(row.store)).column("count")
            ratio = pc.sum(after).as_py() / pc.sum(before).as_py()
            trend = (1 + (e + four_weeks / 2 - ss.opened_hour) / 8766) / (
                1 + (s - four_weeks / 2 - ss.opened_hour) / 8766
            )
            self.assertAlmostEqual(ratio / trend, 1 + row.magnitude, delta=0.06, msg=f"{row.id} at {row.start}")

    def test_failures_become_likelier_as_sensors_age(self) -> None:
        # Ten years of every door: failures started per door-year, by sensor age.
        sim = self.sim
        starts_by_age: dict[int, int] = {}
        exposure: dict[int, float] = {}
        h0, h1 = hour_of("2014-01-01T00:00:00+00:00"), hour_of("2026-01-01T00:00:00+00:00")
        for ss in sim.stores:
            for col, s, _ in zip(*sim.failures(ss, np.arange(ss.n_doors), h0, h1), strict=True):
                installed = ss.installed[col]
                age = int((s - installed[installed <= s][-1]) // 8766)
                starts_by_age[age] = starts_by_age.get(age, 0) + 1
            for installed in ss.installed:
                for a, b in itertools.pairwise(installed):
                    for age in range(8):
                        lo, hi = max(a + age * 8766, ss.opened_hour, h0), min(a + (age + 1) * 8766, b, h1)
                        exposure[age] = exposure.get(age, 0.0) + max(0, hi - lo) / 8766
        rate = {age: starts_by_age.get(age, 0) / exposure[age] for age in exposure if exposure[age] > 5}
        self.assertGreater(rate[3], 2 * rate[0])
        self.assertGreater(sum(e for e in self.events.type.eq("replacement")), 0)

    def test_events_do_not_depend_on_the_requested_span(self) -> None:
        h0 = hour_of("2024-06-01T00:00:00+00:00")
        short = self.sim.events(h0, h0 + 24 * 7).to_pandas()
        year = self.events[(self.events.end.astype("int64") > h0 * 3_600_000_000)]
        year = year[year.start.astype("int64") < (h0 + 24 * 7) * 3_600_000_000]
        key = ["id", "type", "start", "end"]
        self.assertEqual(
            short.sort_values(key)[key].to_numpy().tolist(), year.sort_values(key)[key].to_numpy().tolist()
        )


def quiet_fleet(dispersion: float, day_dispersion: float) -> Path:
    """The default fleet with one store of one door and nothing but its noise: no growth, events,
    expansions or failures."""
    text = DEFAULT_FLEET_FILE.read_text()
    head, robots = text[: text.index("[[stores]]")], text[text.index("[robots]") :]
    for key, value in {"growth_per_year": 0.0, "anomaly_rate": 0.0, "burst_day_rate": 0.0, "dip_day_rate": 0.0,
                       "day_off_rate": 0.0, "surge_day_rate": 0.0, "failure_base": 0.0,
                       "expansion_every_years": [400.0, 500.0], "dispersion": dispersion,
                       "day_dispersion": day_dispersion}.items():  # fmt: skip
        head = re.sub(rf"^{key} = .*$", f"{key} = {value}", head, count=1, flags=re.M)
    store = '[[stores]]\nname = "Lille"\ntimezone = "Europe/Paris"\nopened = 2022-01-03\ndoors = 1\n'
    store += "visits_per_hour = 20.0\n\n"
    path = Path(tempfile.mkdtemp()) / "fleet.toml"
    path.write_text(head + store + robots)
    return path


def slot_moments(sim: DoorSimulator, years: int = 2) -> pd.DataFrame:
    """Mean and variance of each (weekday, local hour) over the weeks, and day totals."""
    h0 = hour_of("2022-01-03T00:00:00+00:00")
    t = sim.readings(h0, h0 + 24 * 7 * 52 * years, sim.select()).to_pandas()
    local = t.ts.dt.tz_convert("Europe/Paris")
    t["weekday"], t["hour"], t["day"] = local.dt.day_of_week, local.dt.hour, local.dt.date
    return t


class RealisticFleetTest(unittest.TestCase):
    """The default fleet: realistic scales, gamma-Poisson counts, and events like real ones."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.fleet = load_fleet()
        cls.sim = DoorSimulator(cls.fleet)
        cls.h0, cls.h1 = hour_of("2024-01-01T00:00:00+00:00"), hour_of("2025-01-01T00:00:00+00:00")
        cls.year = year_2024(cls.sim).to_pandas()
        cls.year["h"] = cls.year["ts"].astype("int64") // 3_600_000_000
        cls.data = cls.year.set_index(["store", "sensor_id", "h"])["count"].sort_index()
        cls.events = cls.sim.events(cls.h0, cls.h1).to_pandas()

    def test_scales(self) -> None:
        totals = self.year.groupby(["store", "ts"])["count"].sum()
        self.assertTrue(2_000 < totals["Paris"].quantile(0.99) < 8_000, "a big store: a few thousand an hour at peak")
        busy = self.year[self.year["count"] > 0]
        door_medians = busy.groupby(["store", "sensor_id"])["count"].median()
        self.assertLess(door_medians.min(), 10, "a side door: a few visits an hour")
        self.assertTrue(20 < door_medians["Madrid"].iloc[0] < 100)
        self.assertLess(busy["count"].median(), 200)

    def test_per_store_opening_hours(self) -> None:
        for store in self.fleet.stores:
            rows = self.year[(self.year.store == store.name) & (self.year["count"] > 0)]
            local = rows.ts.dt.tz_convert(store.timezone)
            self.assertEqual(sorted(set(local.dt.hour)), list(range(store.open_hour, store.close_hour)), store.name)
            self.assertEqual(set(local.dt.day_of_week) & set(store.closed_weekdays), set(), store.name)
        self.assertEqual(self.fleet.store("London").closed_weekdays, ())
        self.assertEqual((self.fleet.store("Madrid").open_hour, self.fleet.store("Paris").open_hour), (10, 9))

    def test_counts_are_overdispersed_as_configured(self) -> None:
        for dispersion in (0.0, 0.2):
            with self.subTest(dispersion=dispersion):
                t = slot_moments(DoorSimulator(load_fleet(quiet_fleet(dispersion, 0.0))))
                slots = t[t["count"] > 0].groupby(["weekday", "hour"])["count"].agg(["mean", "var"])
                slots = t.groupby(["weekday", "hour"])["count"].agg(["mean", "var"]).loc[slots.index]
                estimate = (slots["var"] - slots["mean"]).sum() / (slots["mean"] ** 2).sum()
                self.assertAlmostEqual(estimate, dispersion, delta=0.04 + 0.15 * dispersion)

    def test_a_day_factor_is_shared_by_the_hours_of_a_day(self) -> None:
        t = slot_moments(DoorSimulator(load_fleet(quiet_fleet(0.0, 0.05))))
        days = t.groupby(["day", "weekday"])["count"].sum()
        days = days[days > 0].groupby(level="weekday").agg(["mean", "var"])
        estimate = ((days["var"] - days["mean"]) / days["mean"] ** 2).mean()
        self.assertAlmostEqual(estimate, 0.05, delta=0.02)

    def usual(self, store: str, sensor_id: int, hour: int) -> float:
        series = self.data.loc[(store, sensor_id)]
        same = [series.get(hour + 168 * k) for k in (-3, -2, -1, 1, 2, 3)]
        return float(np.nanmedian([v for v in same if v is not None]))

    def test_bursts_and_dips_change_a_door_by_their_magnitude(self) -> None:
        for kind, (lo, hi) in (("burst", self.fleet.doors.burst_factor), ("dip", self.fleet.doors.dip_factor)):
            rows = self.events[self.events.type == kind]
            self.assertGreater(len(rows), 20, kind)
            self.assertTrue(rows.magnitude.between(lo, hi).all())
            self.assertEqual(set(rows.level), {"high" if kind == "burst" else "low"})
            seen, usual, expected = 0.0, 0.0, 0.0
            for row in rows.itertuples():
                for h in range(int(row.start.timestamp()) // 3600, int(row.end.timestamp()) // 3600):
                    typical = self.usual(row.store, row.sensor_id, h)
                    seen += self.data.loc[(row.store, row.sensor_id, h)]
                    usual += typical
                    expected += typical * row.magnitude
            self.assertAlmostEqual(seen / expected, 1.0, delta=0.15, msg=kind)
            self.assertGreater(abs(seen / usual - 1), 0.5, kind)

    def test_days_off_read_zero_at_every_door(self) -> None:
        rows = self.events[self.events.type == "day_off"]
        self.assertGreater(len(rows), 0)
        for row in rows.itertuples():
            s, e = int(row.start.timestamp()) // 3600, int(row.end.timestamp()) // 3600
            store = self.year[(self.year.store == row.store) & (self.year.h >= s) & (self.year.h < e)]
            self.assertTrue((store["count"].dropna() == 0).all(), f"{row.store} {row.start}")
            self.assertEqual(e - s, self.fleet.store(row.store).close_hour - self.fleet.store(row.store).open_hour)

    def test_bulk_equals_single_and_chunks(self) -> None:
        rng = np.random.default_rng(11)
        sample = self.year.iloc[rng.choice(len(self.year), 200, replace=False)]
        for row in sample.itertuples():
            alone = self.sim.readings(row.h, row.h + 1, self.sim.select(row.store, row.sensor_id)).to_pylist()
            expected = None if np.isnan(row.count) else int(row.count)
            self.assertEqual(alone[0]["count"], expected, f"{row.store}/{row.sensor_id} at {row.ts}")
        h0 = hour_of("2024-05-01T00:00:00+00:00")
        whole = self.sim.readings(h0, h0 + 24 * 10, self.sim.select())
        self.assertTrue(
            whole.equals(pa.concat_tables(self.sim.reading_chunks(h0, h0 + 24 * 10, self.sim.select(), 500)))
        )
        short = self.sim.events(h0, h0 + 24 * 10).to_pandas()
        self.assertGreater(len(short[short.type.isin(["burst", "dip"])]), 0)

    def test_the_fleet_route_gives_each_stores_hours_and_model(self) -> None:
        with ApiServer() as server:
            stores = {s["name"]: s for s in server.get("/v1/fleet").json()["stores"]}
        self.assertEqual((stores["Madrid"]["open_hour"], stores["Madrid"]["close_hour"]), (10, 21))
        self.assertEqual(stores["London"]["closed_weekdays"], [])
        self.assertEqual(stores["Roma"]["dispersion"], 0.08)
        self.assertEqual(stores["Paris"]["sensor_ids"], list(range(20)))


if __name__ == "__main__":
    unittest.main()


def failing_fleet(doors: int) -> Path:
    """The default fleet's model with one store (Paris' name and opening, so its door keys) of
    `doors` doors whose sensors fail often and long: chains of failures longer than one failure."""
    text = DEFAULT_FLEET_FILE.read_text()
    head, robots = text[: text.index("[[stores]]")], text[text.index("[robots]") :]
    head = re.sub(r"^failure_base = .*$", "failure_base = 0.03", head, count=1, flags=re.M)
    head = re.sub(r"^failure_hours = .*$", "failure_hours = [48, 168]", head, count=1, flags=re.M)
    store = f'[[stores]]\nname = "Paris"\ntimezone = "Europe/Paris"\nopened = 2018-01-01\ndoors = {doors}\n\n'
    path = Path(tempfile.mkdtemp()) / "fleet.toml"
    path.write_text(head + store + robots)
    return path


class PerDoorLookBackTest(unittest.TestCase):
    """A door's failure chain decides its own look-back: readings and events do not depend on the
    request's window or on the other doors."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.wide = DoorSimulator(load_fleet(failing_fleet(2000)))
        cls.alone = DoorSimulator(load_fleet(failing_fleet(1)))
        cls.h0, cls.h1 = hour_of("2024-03-01T00:00:00+00:00"), hour_of("2024-03-15T00:00:00+00:00")
        cls.ss = cls.wide.store_sim("Paris")

    def test_a_window_starting_mid_failure_sees_the_whole_chain(self) -> None:
        door, start, end = self.wide.failures(self.ss, np.arange(self.ss.n_doors), self.h0, self.h1)
        long = np.nonzero((end - start > 168) & (start > self.h0) & (end < self.h1))[0]
        self.assertGreater(len(long), 10, "chains longer than one failure")
        full = self.wide.readings(self.h0, self.h1, self.wide.select("Paris")).to_pandas()
        for i in long[:10]:
            d, mid = int(door[i]), int(end[i]) - 3  # the chain's last hours
            alone = self.wide.failures(self.ss, np.array([d]), mid, mid + 1)
            self.assertEqual((alone[1].tolist(), alone[2].tolist()), ([start[i]], [end[i]]), f"door {d}")
            late = self.wide.readings(mid, self.h1, self.wide.select("Paris", d)).to_pandas()
            same = full[(full.sensor_id == d) & (full.ts >= late.ts.iloc[0])]
            self.assertEqual(late["count"].isna().tolist(), same["count"].isna().tolist())
            self.assertTrue(late["count"].iloc[:3].isna().all())

    def test_a_door_fails_alike_among_2000_doors_and_alone(self) -> None:
        one = self.alone.store_sim("Paris")
        for h0, h1 in ((self.h0, self.h1), (self.h0 + 100, self.h0 + 101), (self.h0 + 30, self.h0 + 24 * 40)):
            wide = self.wide.failures(self.ss, np.arange(self.ss.n_doors), h0, h1)
            first = wide[0] == 0
            alone = self.alone.failures(one, np.array([0]), h0, h1)
            self.assertEqual([wide[1][first].tolist(), wide[2][first].tolist()], [alone[1].tolist(), alone[2].tolist()])
        nulls = lambda sim: sim.readings(self.h0, self.h1, sim.select("Paris", 0)).column("count").is_null()  # noqa: E731
        self.assertTrue(nulls(self.wide).equals(nulls(self.alone)))

    def test_every_null_is_a_listed_failure_and_each_failure_reads_null(self) -> None:
        data = self.wide.readings(self.h0, self.h1, self.wide.select()).to_pandas()
        failed = data[data["count"].isna() & (data.sensor_id < 300)]
        events = self.wide.events(self.h0, self.h1, chunk_rows=20_000).to_pandas()  # grids of 10 hours
        events = events[(events.type == "failure") & (events.sensor_id < 300)]
        listed = {
            (int(row.sensor_id), h)
            for row in events.itertuples()
            for h in range(max(hour_of(row.start.isoformat()), self.h0), min(hour_of(row.end.isoformat()), self.h1))
        }
        seen = set(zip(failed.sensor_id.tolist(), (failed.ts.astype("int64") // 3_600_000_000).tolist(), strict=True))
        self.assertGreater(len(seen), 500)
        self.assertEqual(seen, listed)

    def test_chunks_are_rows_even_when_an_hour_is_wider(self) -> None:
        h0 = self.h0 + 5
        whole = self.wide.readings(h0, h0 + 6, self.wide.select())
        chunks = list(self.wide.reading_chunks(h0, h0 + 6, self.wide.select(), 700))
        self.assertLessEqual(max(c.num_rows for c in chunks), 700)
        self.assertTrue(pa.concat_tables(chunks).equals(whole))
