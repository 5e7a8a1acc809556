"""Per-type alarm rules: defaults in code, overridden by a TOML or JSON file (ETL_ALARM_RULES).

    [robot_incident]            # or {"robot_incident": {...}} in JSON
    pending_seconds = 60        # the condition must hold this long before the alarm opens
    clear_seconds = 1800        # ... and be absent this long before it clears itself
    notify_min_severity = "MINOR"   # changes of alarms below this are recorded, not sent

A type without a rule gets `default`'s.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

SEVERITIES = ("WARNING", "MINOR", "MAJOR", "CRITICAL")  # lowest first
RANK = {s: i for i, s in enumerate(SEVERITIES)}

HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class Rule:
    pending_seconds: float = 0.0
    clear_seconds: float = HOUR
    notify_min_severity: str = "WARNING"

    def __post_init__(self) -> None:
        for name in ("pending_seconds", "clear_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 10 * 365 * DAY:
                raise ValueError(f"{name} = {value!r} must be a number of seconds, 0 or more")
        if self.notify_min_severity not in RANK:
            raise ValueError(
                f"notify_min_severity = {self.notify_min_severity!r} is not one of {', '.join(SEVERITIES)}"
            )


# Why these (bench/alarms_bench.py, docs/benchmarks.md): an hourly door anomaly or failure is
# already an hour's judgement, but one lone hour is the counters' noise: two hours in a row open an
# alarm. A robot incident has passed its own minimum of flagged readings: a minute of it opens one,
# and it clears after the incident gap has passed six times over; only ERROR incidents (CRITICAL)
# are sent, as the notify step always did, the ALERT ones are recorded and listed. A 30-day failure
# rate hovering at its threshold flapped a replacement warning day after day: it clears after 3
# days without. An underused door is for the store's report, not a message.
DEFAULT_RULES: dict[str, Rule] = {
    "default": Rule(),
    "robot_incident": Rule(pending_seconds=60, clear_seconds=1800, notify_min_severity="CRITICAL"),
    "door_anomaly": Rule(pending_seconds=2 * HOUR, clear_seconds=2 * HOUR, notify_min_severity="MAJOR"),
    "store_anomaly": Rule(pending_seconds=2 * HOUR, clear_seconds=2 * HOUR, notify_min_severity="MAJOR"),
    "door_failure": Rule(pending_seconds=2 * HOUR, clear_seconds=3 * HOUR),
    "door_replacement": Rule(pending_seconds=0, clear_seconds=3 * DAY),
    "door_underused": Rule(pending_seconds=0, clear_seconds=DAY, notify_min_severity="MINOR"),
    "maintenance_due": Rule(pending_seconds=0, clear_seconds=DAY),
    # the stream job's alerts (--alarms), as robot incidents: ERROR (CRITICAL) sent, ALERT recorded
    "stream_anomaly": Rule(pending_seconds=30, clear_seconds=600, notify_min_severity="CRITICAL"),
}


class Rules:
    def __init__(self, rules: dict[str, Rule] | None = None) -> None:
        self.rules = {**DEFAULT_RULES, **(rules or {})}

    def __getitem__(self, kind: str) -> Rule:
        return self.rules.get(kind, self.rules["default"])


def load_rules(path: str) -> Rules:
    """The defaults, overridden by the file's types and fields; no file: the defaults."""
    if not path:
        return Rules()
    file = Path(path)
    try:
        text = file.read_text()
        raw = json.loads(text) if file.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ValueError(f"ETL_ALARM_RULES={path}: {exc}") from exc
    known = {f.name for f in fields(Rule)}
    rules = {}
    for kind, values in raw.items():
        if not isinstance(values, dict):
            raise ValueError(f"ETL_ALARM_RULES={path}: [{kind}] must be a table of settings")
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"ETL_ALARM_RULES={path}: [{kind}] has unknown setting(s) {', '.join(unknown)}")
        try:
            rules[kind] = replace(DEFAULT_RULES.get(kind, DEFAULT_RULES["default"]), **values)
        except ValueError as exc:
            raise ValueError(f"ETL_ALARM_RULES={path}: [{kind}] {exc}") from exc
    return Rules(rules)
