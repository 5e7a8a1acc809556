"""The data engineer's pipeline tab: watermark, last run, rows, quarantined rows, freshness."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboard.source import SNAPSHOT_FILE, Listing, read_json
from etl.lake import Lake
from etl.status import lake_status


@st.cache_data(max_entries=20, show_spinner=False)
def status(root: str, version: str) -> dict:
    """The lake's status (Parquet footers), once per version."""
    return lake_status(Lake(root))


def pipeline_tab(src: Listing, now: dt.datetime) -> None:
    st.header("Pipeline")
    if src.snapshot:
        info = read_json(src.root, SNAPSHOT_FILE)
        if not info:
            st.info(f"No {SNAPSHOT_FILE} in {src.root}: make one with `python -m etl snapshot --lake LAKE`.")
            return
        st.caption(f"A snapshot made at {info['created_at']} from `{info['source']}`; the figures are that lake's.")
        lake, last_transform = info.get("status", {}), info.get("transform_last_run")
    else:
        lake = status(src.root, src.version)
        last_transform = read_json(src.root, "_state", "transform.json").get("last_run")
    st.dataframe(status_rows(lake, now), hide_index=True, width="stretch")
    st.write(f"Last transform: {last_transform or 'never'}")
    st.caption(f"Data version {src.version} (the page refreshes itself when it changes).")


def status_rows(lake: dict, now: dt.datetime) -> pd.DataFrame:
    rows = []
    for kind, s in lake.items():
        run = s.get("last_run") or {}
        watermark = pd.Timestamp(s["watermark"]) if s.get("watermark") else None
        age = (pd.Timestamp(now) - watermark) if watermark is not None else None
        rows.append({
            "data set": kind,
            "watermark": s.get("watermark") or "none",
            "freshness": "no data" if age is None else f"{age.total_seconds() / 3600:,.1f} h old",
            "rows": s.get("rows", 0),
            "partitions": s.get("partitions", 0),
            "dates": f"{s.get('first_date')} .. {s.get('last_date')}" if s.get("partitions") else "empty",
            "quarantined rows": s.get("quarantined_rows", 0),
            "last run": f"{run.get('command')} {run.get('status')} at {run.get('finished_at')}" if run else "never",
        })  # fmt: skip
    return pd.DataFrame(rows)
