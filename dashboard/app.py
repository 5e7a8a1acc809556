"""The sensor dashboard: `streamlit run dashboard/app.py` (configuration: dashboard/README.md)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on the path, not the repository (etl/, dashboard/).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

from dashboard import filters, queries, source
from dashboard.config import DashboardSettings
from dashboard.door_tabs import health_tab, tables_tab, traffic_tab, trends_tab
from dashboard.pipeline_tab import pipeline_tab
from dashboard.robot_tab import robot_tab

TABS = ["Traffic", "Trends", "Tables", "Robots", "Sensor health", "Pipeline"]


def watch(root: Path, snapshot: bool, seen: str, seconds: float) -> None:
    """Rerun the page when the source's version changes (checked every `seconds`)."""

    @st.fragment(run_every=seconds)
    def check() -> None:
        version = source.version(root)
        if version != seen:
            st.rerun(scope="app")
        st.sidebar.caption(f"Checked for new data at {dt.datetime.now():%H:%M:%S} (every {seconds:g} s).")

    check()


def main() -> None:
    st.set_page_config(page_title="Stores and robots", page_icon=":bar_chart:", layout="wide")
    try:
        settings = DashboardSettings.from_env()
    except ValueError as exc:
        st.error(str(exc))
        return
    root, snapshot = filters.source_choice(settings)
    st.title("Store traffic and robot health")
    if not root.is_dir():
        st.error(f"No data folder at {root}: set DASHBOARD_LAKE to a lake, or make a snapshot with "
                 "`python -m etl snapshot --lake LAKE`.")  # fmt: skip
        return
    src = source.scan(root, snapshot)
    watch(root, snapshot, src.version, settings.refresh_seconds)
    door = filters.door_filters(src, queries.door_overview(src))
    # Only the open tab runs (the tab is in the URL too): a widget change redraws one tab, not six.
    traffic, trends, tables, robots, health, pipeline = st.tabs(TABS, key="tab", on_change="rerun", bind="query-params")
    if traffic.open:
        with traffic:
            traffic_tab(src, door)
    if trends.open:
        with trends:
            trends_tab(src, door)
    if tables.open:
        with tables:
            tables_tab(src, door)
    if robots.open:
        with robots:
            robot_tab(src)
    if health.open:
        with health:
            health_tab(src, door)
    if pipeline.open:
        with pipeline:
            pipeline_tab(src, dt.datetime.now(dt.UTC), settings)


main()
