"""New alerts from the marts, sent once: ERROR incidents of robot axes, door replacement warnings.

One path for every alert: `new_alerts` decides what is new against the lake's notification
state, `deliver` always logs them and sends them to each configured channel (a webhook as
JSON, e-mail by SMTP), and only then is the state saved: an alert is sent at least once, and a
re-run of the same hour sends nothing again.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import EmailMessage

import pyarrow as pa
import pyarrow.compute as pc
import requests

from etl.client import iso
from etl.lake import Lake
from etl.marts import read_mart
from etl.settings import EtlSettings

STATE_KIND = "notify"
SENT_KEYS_KEPT = 5000  # incident keys remembered; older ones have left the alert window anyway


@dataclass(frozen=True)
class Alert:
    key: str  # what makes it the same alert on a re-run
    kind: str  # "robot_error" | "door_replacement"
    level: str
    subject: str
    detail: dict

    def line(self) -> str:
        return f"[{self.level}] {self.subject}"


def new_alerts(lake: Lake, now: dt.datetime, window: dt.timedelta) -> tuple[list[Alert], dict]:
    """Alerts not sent before, and the notification state to save once they are delivered."""
    state = lake.read_state(STATE_KIND)
    sent = set(state.get("sent_incidents", []))
    incidents = [a for a in error_incidents(lake, now - window) if a.key not in sent]
    warned_before = set(state.get("doors_warned", []))
    doors = door_warnings(lake)
    fresh_doors = [a for a in doors if a.key not in warned_before]
    new_state = {
        "sent_incidents": [*[a.key for a in incidents], *state.get("sent_incidents", [])][:SENT_KEYS_KEPT],
        # Doors under warning now: a door that recovers and fails again is warned again.
        "doors_warned": sorted(a.key for a in doors),
        "last_run": iso(now),
    }
    return incidents + fresh_doors, new_state


def error_incidents(lake: Lake, since: dt.datetime) -> list[Alert]:
    table = read_mart(lake, "robot_incidents")
    if table is None or table.num_rows == 0:
        return []
    end = table.column("end")
    recent = pc.and_(pc.equal(table.column("level"), "ERROR"), pc.greater_equal(end, pa.scalar(since, end.type)))
    alerts = []
    for row in table.filter(recent).sort_by([("start", "ascending")]).to_pylist():
        start = iso(row["start"])
        alerts.append(
            Alert(
                key=f"{row['robot_id']}/{row['axis']}/{start}",
                kind="robot_error",
                level="ERROR",
                subject=f"{row['robot_id']} {row['axis']}: ERROR incident from {start} to {iso(row['end'])}, "
                f"{row['flagged_readings']} readings, peak {row['peak_sigmas']:+.1f} sigma",
                detail={**row, "start": start, "end": iso(row["end"])},
            )
        )
    return alerts


def door_warnings(lake: Lake) -> list[Alert]:
    """Doors whose latest day carries a replacement warning."""
    table = read_mart(lake, "door_health")
    if table is None or table.num_rows == 0:
        return []
    latest = table.group_by(["store", "sensor_id"]).aggregate([("local_date", "max")])
    joined = table.join(latest, ["store", "sensor_id"])
    on_latest_day = pc.equal(joined.column("local_date"), joined.column("local_date_max"))
    current = joined.filter(pc.and_(on_latest_day, joined.column("replacement_warning")))
    alerts = []
    for row in current.sort_by([("store", "ascending"), ("sensor_id", "ascending")]).to_pylist():
        alerts.append(
            Alert(
                key=f"{row['store']}/{row['sensor_id']}",
                kind="door_replacement",
                level="WARNING",
                subject=f"{row['store']} door {row['sensor_id']}: replace the sensor, failed "
                f"{100 * row['failure_rate_30d']:.1f} % of hours over 30 days (to {row['local_date']})",
                detail={k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()},
            )
        )
    return alerts


def deliver(alerts: list[Alert], settings: EtlSettings, log: Callable[[str], None]) -> list[str]:
    """Log every alert; send them to each configured channel. Returns the channels used."""
    for alert in alerts:
        log(alert.line())
    if not alerts:
        return []
    channels = []
    if settings.alert_webhook:
        body = {"alerts": [asdict(a) for a in alerts]}
        response = requests.post(settings.alert_webhook, data=json.dumps(body, default=str), timeout=10,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
        if response.status_code >= 300:
            raise RuntimeError(f"alert webhook {settings.alert_webhook} answered {response.status_code}")
        channels.append("webhook")
    if settings.smtp_host and settings.smtp_to:
        send_mail(alerts, settings)
        channels.append("smtp")
    return channels


def send_mail(alerts: list[Alert], settings: EtlSettings) -> None:
    message = EmailMessage()
    message["Subject"] = f"Sensor pipeline: {len(alerts)} new alert{'s' * (len(alerts) != 1)}"
    message["From"] = settings.smtp_from
    message["To"] = settings.smtp_to
    message.set_content("\n".join(a.line() for a in alerts) + "\n")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def notify(lake: Lake, settings: EtlSettings, now: dt.datetime, log: Callable[[str], None] = print) -> dict:
    """Send what is new, then remember it. Returns what was sent, for the task's log and XCom."""
    with lake.lock(settings.lock_timeout, "marts"):
        alerts, state = new_alerts(lake, now, dt.timedelta(days=settings.alert_window_days))
        channels = deliver(alerts, settings, log)
        lake.write_state(STATE_KIND, state)
    return {"alerts": len(alerts), "channels": channels, "subjects": [a.subject for a in alerts]}
