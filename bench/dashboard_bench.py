"""Dashboard speed: first render and widget changes (Streamlit AppTest reruns) on big lakes.

    .venv/bin/python bench/dashboard_bench.py [--runs 5] [--cache /tmp/dashboard-bench]

Lakes (built once, then reused from --cache; building the year takes a few minutes):
- year: 2024 of the default fleet (39 doors hourly, 342,576 rows; 4 robots), simulated and
  transformed as bench/transform_bench.py does;
- x100: the year's door marts replicated under 100 times the stores (3,900 doors, 34 M hourly
  rows), written with DuckDB in the marts' layout, plus the year's robot marts and state.

First render: a new AppTest run with empty Streamlit caches, in a process where the modules are
already imported (a running server). Widget change: an AppTest rerun after one sidebar widget
changed, cycling through resolution, level, weekdays, stores and dates. Medians of --runs.

    .venv/bin/python bench/dashboard_bench.py --lake LAKE [--json FILE]

measures one given lake instead (bench/scale_bench.py: the lake it pulled and transformed at each
fleet size) and can write its medians as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import duckdb  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(ROOT / "dashboard" / "app.py")
TARGETS = {"year": (2.0, 0.3), "x100": (None, 1.0)}  # first render, widget change (seconds)
COPIES = 100


def year_lake(cache: Path) -> Path:
    lake = cache / "year"
    if (lake / "_state" / "transform.json").exists():
        return lake
    from transform_bench import build_lake

    from etl.transform import TransformParams, transform

    shutil.rmtree(lake, ignore_errors=True)
    print("building the 1-year lake (a few minutes, once)...", flush=True)
    start, end = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    transform(build_lake(lake, start, end, robots=True), TransformParams())
    return lake


def x100_lake(cache: Path, year: Path) -> Path:
    """The year's door marts under COPIES times the stores ('Paris~07'), month files as the transform writes."""
    lake = cache / "x100"
    if (lake / "_state" / "transform.json").exists():
        return lake
    shutil.rmtree(lake, ignore_errors=True)
    print(f"building the x{COPIES} lake (once)...", flush=True)
    for folder in ("reference", "_state", "raw/robots"):
        shutil.copytree(year / folder, lake / folder)
    for table in (year / "marts").iterdir():
        if table.name.startswith("robot_"):
            shutil.copytree(table, lake / "marts" / table.name)
            continue
        for part in sorted(table.iterdir()):
            out = lake / "marts" / table.name / part.name
            out.mkdir(parents=True)
            sql = f"""COPY (SELECT * REPLACE (store || '~' || lpad(CAST(k AS VARCHAR), 2, '0') AS store)
                      FROM read_parquet('{part}/data.parquet'), range({COPIES}) AS copies(k)
                      ORDER BY local_date, store) TO '{out}/data.parquet' (FORMAT parquet, COMPRESSION zstd)"""
            duckdb.sql(sql)  # bench-only paths we made ourselves, not user input
    return lake


def fresh_app(lake: Path) -> tuple[AppTest, float]:
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    began = time.perf_counter()
    at.run()
    return at, time.perf_counter() - began


def check(at: AppTest) -> None:
    if at.exception:
        raise RuntimeError(f"the app failed: {at.exception[0].value}")


def widget_changes(at: AppTest, runs: int) -> list[float]:
    """Time reruns after single widget changes, cycling through the main sidebar widgets."""
    stores = at.sidebar.multiselect(key="stores")
    options = list(stores.options)
    first, last = at.sidebar.slider(key="dates").value
    changes = [
        lambda: at.sidebar.radio(key="res").set_value("hour"),
        lambda: at.sidebar.radio(key="level").set_value("sensor"),
        lambda: at.sidebar.multiselect(key="weekdays").set_value([1, 2, 3, 4, 5]),
        lambda: at.sidebar.multiselect(key="stores").set_value(options[1:3]),
        lambda: at.sidebar.slider(key="dates").set_value((first - dt.timedelta(days=14), last)),
        lambda: at.sidebar.radio(key="res").set_value("day"),
        lambda: at.sidebar.radio(key="level").set_value("store"),
        lambda: at.sidebar.multiselect(key="weekdays").set_value([1, 2, 3, 4, 5, 6, 7]),
        lambda: at.sidebar.multiselect(key="stores").set_value(options[:5]),
        lambda: at.sidebar.slider(key="dates").set_value((first, last)),
    ]
    seconds = []
    for i in range(runs * 2):
        changes[i % len(changes)]()
        began = time.perf_counter()
        at.run()
        seconds.append(time.perf_counter() - began)
        check(at)
    return seconds


def bench(name: str, lake: Path, runs: int) -> dict[str, float]:
    """Print and return the medians of the first render and of a widget change on `lake`."""
    os.environ["DASHBOARD_LAKE"] = str(lake)
    fresh_app(lake)  # warm-up: imports, the OS page cache
    firsts = []
    for _ in range(runs):
        at, seconds = fresh_app(lake)
        check(at)
        firsts.append(seconds)
    changes = widget_changes(at, runs)
    first_target, change_target = TARGETS.get(name, (None, None))
    report(f"{name}: first render", firsts, first_target)
    report(f"{name}: widget change", changes, change_target)
    return {"first_render_s": statistics.median(firsts), "widget_change_s": statistics.median(changes)}


def report(what: str, seconds: list[float], target: float | None) -> None:
    median = statistics.median(seconds)
    verdict = "" if target is None else f" (target <= {target} s: {'met' if median <= target else 'MISSED'})"
    print(
        f"{what:28s} median {median:.3f} s, min {min(seconds):.3f}, max {max(seconds):.3f}, n={len(seconds)}{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/dashboard-bench"))
    parser.add_argument("--lake", type=Path, help="measure this transformed lake only")
    parser.add_argument("--json", type=Path, help="with --lake: write the medians here")
    args = parser.parse_args()
    if args.lake:
        figures = bench(args.lake.name, args.lake, args.runs)
        if args.json:
            args.json.write_text(json.dumps(figures))
        return
    year = year_lake(args.cache)
    x100 = x100_lake(args.cache, year)
    bench("year", year, args.runs)
    bench("x100", x100, args.runs)


if __name__ == "__main__":
    main()
