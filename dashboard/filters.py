"""The sidebar: data source and door filters, each bound to the URL so that a view can be shared."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.config import DashboardSettings
from dashboard.queries import DoorFilters
from dashboard.source import Listing

WEEKDAYS = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}
RESOLUTIONS = {"day": "Daily", "hour": "Hourly"}
LEVELS = {"store": "Store", "sensor": "Door"}
DEFAULT_DAYS = 35  # a first visit shows the last five weeks: 28 whole days besides a partial last one
DEFAULT_STORES = 6  # ... of all stores, or of the busiest ones when there are more
URL = "query-params"


def source_choice(settings: DashboardSettings) -> tuple[Path, bool]:
    """(folder, is the snapshot): the live lake when one is configured, else the snapshot."""
    options = ["lake", "snapshot"] if settings.lake else ["snapshot"]
    labels = {"lake": f"Live lake ({settings.lake})", "snapshot": f"Snapshot ({settings.snapshot.name}/)"}
    choice = st.sidebar.radio("Data source", options, format_func=labels.get, key="source", bind=URL)
    if choice == "lake" and settings.lake:
        return settings.lake, False
    return settings.snapshot, True


def door_filters(src: Listing, overview: pd.DataFrame) -> DoorFilters | None:
    """The door filters from the sidebar's widgets; None when the source has no door data."""
    bar = st.sidebar
    if overview.empty:
        bar.info("No door data in this source.")
        return None
    names = overview.store.tolist()
    default = names if len(names) <= DEFAULT_STORES else names[: DEFAULT_STORES - 1]
    stores = tuple(bar.multiselect("Stores", names, default=default, key="stores", bind=URL))
    level = bar.radio("Level", list(LEVELS), format_func=LEVELS.get, horizontal=True, key="level", bind=URL)
    door_rows = queries.doors(src, stores)
    doors = ["all", *(f"{r.store}/{r.sensor_id}" for r in door_rows.itertuples())]
    door = bar.selectbox("Door", doors, format_func=door_label, key="door", bind=URL, disabled=level != "sensor")
    resolution = bar.radio(
        "Resolution", list(RESOLUTIONS), format_func=RESOLUTIONS.get, horizontal=True, key="res", bind=URL
    )
    weekdays = bar.multiselect("Weekdays", list(WEEKDAYS), default=list(WEEKDAYS), format_func=WEEKDAYS.get,
                               key="weekdays", bind=URL)  # fmt: skip
    first, last = date_range(overview)
    hours = bar.slider("Local hours", 0, 23, (0, 23), key="hours", bind=URL, disabled=resolution != "hour")
    store_door = None
    if level == "sensor" and door != "all":
        store, sensor = door.rsplit("/", 1)
        store_door = (store, int(sensor))
    return DoorFilters(stores, store_door, resolution, level, tuple(sorted(weekdays)), first, last, tuple(hours))


def date_range(overview: pd.DataFrame) -> tuple[dt.date, dt.date]:
    """The date-range slider over the data's local dates; one day of data needs no slider."""
    lo, hi = min(overview["first"]), max(overview["last"])
    if lo == hi:
        st.sidebar.caption(f"Dates: the data covers one day, {lo:%a %d %b %Y}.")
        return lo, hi
    default = (max(lo, hi - dt.timedelta(days=DEFAULT_DAYS - 1)), hi)
    picked = st.sidebar.slider("Dates", lo, hi, default, format="YYYY-MM-DD", key="dates", bind=URL)
    return picked[0], picked[1]


def door_label(value: str) -> str:
    """'Paris/3' -> 'Paris · door 3' (door ids are integers, never '3.0')."""
    if value == "all":
        return "All doors"
    store, sensor = value.rsplit("/", 1)
    return f"{store} · door {sensor}"
