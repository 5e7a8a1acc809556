"""The pipeline's notifications: the marts fed to the alarms engine, its state changes sent once.

`notify` feeds what the detectors' marts report since the last run into the operational
database's alarms (etl/alarms/feed.py) and sends the outbox (etl/alarms/outbox.py): one
notification per alarm opened, escalated or cleared, never one per run. `deliver` is the one
way out for every notification: always the log, then each configured channel (a webhook as
JSON, e-mail by SMTP). docs/alarms.md.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import EmailMessage

import requests

from etl.lake import Lake
from etl.settings import EtlSettings


@dataclass(frozen=True)
class Alert:
    key: str  # what makes it the same notification on a retry
    kind: str  # the alarm's type: robot_incident, door_replacement, ...
    level: str  # its severity
    subject: str
    detail: dict

    def line(self) -> str:
        return f"[{self.level}] {self.subject}"


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
    message["Subject"] = f"Sensor pipeline: {len(alerts)} alarm change{'s' * (len(alerts) != 1)}"
    message["From"] = settings.smtp_from
    message["To"] = settings.smtp_to
    message.set_content("\n".join(a.line() for a in alerts) + "\n")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def notify(lake: Lake, settings: EtlSettings, now: dt.datetime, log: Callable[[str], None] = print) -> dict:
    """Feed the marts to the alarms, then send what changed. Returns what was sent and changed, for
    the task's log and XCom. A failed delivery raises after the alarms are saved: the retry sends
    the changes not sent, and only them."""
    from etl.alarms.db import open_db, ops_url  # sqlalchemy: only this step needs it
    from etl.alarms.feed import feed_marts
    from etl.alarms.outbox import deliver_outbox
    from etl.alarms.rules import load_rules

    rules = load_rules(settings.alarm_rules)
    engine = open_db(ops_url(settings.ops_db, settings.lake))
    try:
        with lake.lock(settings.lock_timeout, "marts"):  # one feeder at a time, on marts no transform is writing
            fed = feed_marts(engine, lake, rules, now, dt.timedelta(days=settings.alert_window_days))
        sent = deliver_outbox(engine, settings, log)
    finally:
        engine.dispose()
    return {**sent, "conditions": fed.conditions, "changes": fed.changes, "suppressed": fed.suppressed}
