"""The sensor dashboard: `streamlit run dashboard/app.py` (configuration: dashboard/README.md)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on the path, not the repository (etl/, dashboard/).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import streamlit as st

from dashboard import filters, queries, source
from dashboard.alarms_tab import alarms_tab
from dashboard.config import DashboardSettings
from dashboard.door_tabs import health_tab, tables_tab, traffic_tab, trends_tab
from dashboard.live_tab import live_tab
from dashboard.pipeline_tab import pipeline_tab
from dashboard.quality_tab import quality_tab
from dashboard.robot_tab import robot_tab

TABS = ["Traffic", "Trends", "Tables", "Robots", "Live", "Sensor health", "Alarms", "Model quality", "Pipeline"]


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
    # Only the open tab runs (the tab is in the URL too): a widget change redraws one tab, not nine.
    draw = {
        "Traffic": lambda: traffic_tab(src, door),
        "Trends": lambda: trends_tab(src, door),
        "Tables": lambda: tables_tab(src, door),
        "Robots": lambda: robot_tab(src),
        "Live": lambda: live_tab(src),
        "Sensor health": lambda: health_tab(src, door),
        "Alarms": lambda: alarms_tab(src, settings),
        "Model quality": lambda: quality_tab(src),
        "Pipeline": lambda: pipeline_tab(src, dt.datetime.now(dt.UTC), settings),
    }
    for name, tab in zip(TABS, st.tabs(TABS, key="tab", on_change="rerun", bind="query-params"), strict=True):
        if tab.open:
            with tab:
                draw[name]()


main()
