"""The dashboard's configuration: environment variables, read once per script run and passed in."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DashboardSettings:
    lake: Path | None  # DASHBOARD_LAKE: a live lake folder; unset: only the snapshot
    snapshot: Path  # DASHBOARD_SNAPSHOT: the committed snapshot (default streamlit_data/)
    refresh_seconds: float  # DASHBOARD_REFRESH_SECONDS: how often an open page looks for new data
    airflow_url: str = ""  # DASHBOARD_AIRFLOW_URL: Airflow's api-server (e.g. http://127.0.0.1:8080); unset: none
    airflow_user: str = ""  # DASHBOARD_AIRFLOW_USER: a user of the simple auth manager
    airflow_password: str = ""  # DASHBOARD_AIRFLOW_PASSWORD (or _PASSWORD_FILE): its password (never shown)
    ops_db: str = ""  # DASHBOARD_OPS_DB (else ETL_OPS_DB): the alarms' database URL; unset: the lake's SQLite

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DashboardSettings:
        lake = env.get("DASHBOARD_LAKE", "").strip()
        snapshot = env.get("DASHBOARD_SNAPSHOT", "").strip() or str(REPO / "streamlit_data")
        text = env.get("DASHBOARD_REFRESH_SECONDS", "30")
        try:
            refresh = float(text)
        except ValueError:
            raise ValueError(f"DASHBOARD_REFRESH_SECONDS must be a number of seconds, not {text!r}") from None
        if refresh <= 0:
            raise ValueError(f"DASHBOARD_REFRESH_SECONDS must be positive, not {text!r}")
        return cls(
            lake=Path(lake) if lake else None,
            snapshot=Path(snapshot),
            refresh_seconds=refresh,
            airflow_url=env.get("DASHBOARD_AIRFLOW_URL", "").strip().rstrip("/"),
            airflow_user=env.get("DASHBOARD_AIRFLOW_USER", "").strip(),
            airflow_password=env.get("DASHBOARD_AIRFLOW_PASSWORD", "") or password_from_file(env),
            ops_db=(env.get("DASHBOARD_OPS_DB", "") or env.get("ETL_OPS_DB", "")).strip(),
        )


def password_from_file(env: Mapping[str, str]) -> str:
    """DASHBOARD_AIRFLOW_PASSWORD_FILE: the simple auth manager's passwords file ({"user": "password"},
    as `make up` writes it), so that no password sits in the process's environment. Read when the
    page runs: Airflow may create the file after the dashboard started."""
    path = env.get("DASHBOARD_AIRFLOW_PASSWORD_FILE", "").strip()
    if not path:
        return ""
    try:
        passwords = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return ""
    user = env.get("DASHBOARD_AIRFLOW_USER", "").strip()
    return str(passwords.get(user, "")) if isinstance(passwords, dict) else ""
