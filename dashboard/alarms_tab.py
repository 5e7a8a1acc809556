"""The alarms tab: the operational database's alarms, filtered by status, severity, type, store or
robot; acknowledge and silence buttons (the only writes of the dashboard: to the operational
database, never to the lake), and an alarm's history.

Wired by dashboard/app.py as `alarms_tab(src, settings)`. The database: `settings.ops_db` (a
SQLAlchemy URL: DASHBOARD_OPS_DB or ETL_OPS_DB) or the live lake's _ops/ops.sqlite. The snapshot
has no alarms (Streamlit Community Cloud has no operational database, nor SQLAlchemy).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.config import DashboardSettings
from dashboard.source import Listing

SEVERITIES = ["CRITICAL", "MAJOR", "MINOR", "WARNING"]
STATUSES = ["active", "cleared", "acknowledged", "unacknowledged"]
COLUMNS = ["id", "severity", "type", "originator", "status", "acknowledged_by", "first_seen", "last_seen", "count",
           "cleared_at"]  # fmt: skip


@st.cache_resource(show_spinner=False)
def ops_engine(url: str):
    """One engine (and one migration) per database, not one per rerun."""
    from etl.alarms.db import open_db

    return open_db(url)


def ops_database(src: Listing, settings: DashboardSettings) -> str | None:
    url = settings.ops_db
    if url:
        return url
    path = Path(src.root, "_ops", "ops.sqlite")
    return f"sqlite:///{path.resolve()}" if not src.snapshot and path.exists() else None


def alarms_tab(src: Listing, settings: DashboardSettings) -> None:
    st.header("Alarms")
    url = ops_database(src, settings)
    if url is None:
        where = "the snapshot" if src.snapshot else f"{src.root}/_ops/ops.sqlite"
        st.info(f"No operational database in {where}: alarms come from a live lake's notify step "
                "(or set the dashboard's ops_db to the pipeline's ETL_OPS_DB).")  # fmt: skip
        return
    from etl.alarms import actions

    engine = ops_engine(url)
    f = alarm_filter(actions)
    alarms = actions.list_alarms(engine, f)
    st.dataframe(alarm_rows(alarms), hide_index=True, width="stretch")
    st.caption(f"{len(alarms)} alarms (newest first, at most {f.limit}).")
    left, right = st.columns(2)
    with left:
        acknowledge_form(engine, actions, [a for a in alarms if a["acknowledged_by"] is None])
    with right:
        silence_form(engine, actions, alarms)
    history_view(engine, actions, alarms)


def alarm_filter(actions):
    c = st.columns(5)
    status = c[0].multiselect("Status", STATUSES, default=["active"], key="alarms_status")
    severity = c[1].multiselect("Severity", SEVERITIES, key="alarms_severity")
    kinds = c[2].multiselect("Type", ["robot_incident", "door_anomaly", "store_anomaly", "door_failure",
                                      "door_replacement", "door_underused", "maintenance_due"],
                             key="alarms_type", accept_new_options=True)  # fmt: skip
    store = c[3].text_input("Store", key="alarms_store").strip()
    robot = c[4].text_input("Robot", key="alarms_robot").strip()
    return actions.AlarmFilter(tuple(status), tuple(severity), tuple(kinds), store, robot)


def alarm_rows(alarms: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{k: a[k] for k in COLUMNS} for a in alarms], columns=COLUMNS)


def label(a: dict) -> str:
    return f"#{a['id']} {a['severity']} {a['type']} {a['originator']}"


def acknowledge_form(engine, actions, unacknowledged: list[dict]) -> None:
    st.subheader("Acknowledge")
    if not unacknowledged:
        st.write("Nothing unacknowledged in this list.")
        return
    by_label = {label(a): a["id"] for a in unacknowledged}
    chosen = st.selectbox("Alarm", list(by_label), key="alarms_ack_id")
    who = st.text_input("Your name", key="alarms_ack_by")
    if st.button("Acknowledge", key="alarms_ack"):
        try:
            actions.acknowledge(engine, by_label[chosen], who)
        except ValueError as exc:
            st.warning(str(exc))
            return
        st.success(f"{chosen} acknowledged by {who}")
        st.rerun()


def silence_form(engine, actions, alarms: list[dict]) -> None:
    st.subheader("Silence")
    originators = sorted({a["originator"] for a in alarms})
    originator = st.selectbox("Originator", ["(any)", *originators], key="alarms_sil_originator")
    kind = st.selectbox("Type", ["(any)", *sorted({a["type"] for a in alarms})], key="alarms_sil_type")
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    day = st.date_input("Until (UTC day)", value=tomorrow.date(), key="alarms_sil_date")
    time = st.time_input("Until (UTC time)", value=dt.time(tomorrow.hour), key="alarms_sil_time")
    reason = st.text_input("Reason", key="alarms_sil_reason")
    who = st.text_input("Your name", key="alarms_sil_by")
    if st.button("Silence", key="alarms_silence"):
        until = dt.datetime.combine(day, time, tzinfo=dt.UTC)
        try:
            number = actions.silence(engine, chosen_value(originator), chosen_value(kind), until, reason, who)
        except ValueError as exc:
            st.warning(str(exc))
            return
        st.success(f"silence #{number} until {until:%Y-%m-%d %H:%M}Z")
    silences = actions.list_silences(engine)
    if silences:
        st.dataframe(pd.DataFrame(silences).drop(columns=["starts_at"]), hide_index=True, width="stretch")


def chosen_value(option: str) -> str | None:
    return None if option == "(any)" else option


def history_view(engine, actions, alarms: list[dict]) -> None:
    if not alarms:
        return
    st.subheader("History")
    by_label = {label(a): a["id"] for a in alarms}
    chosen = st.selectbox("Alarm", list(by_label), key="alarms_history_id")
    events = actions.history(engine, by_label[chosen])
    columns = ["at", "what", "severity", "who", "note", "notification", "sent_at", "recorded_at"]
    st.dataframe(pd.DataFrame(events, columns=columns), hide_index=True, width="stretch")
