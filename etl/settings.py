"""The ETL's configuration: environment variables with defaults, read once, passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EtlSettings:
    api_url: str = "http://127.0.0.1:8000"
    api_key: str = field(default="", repr=False)  # sent as X-API-Key when set; never logged
    lake: str = "lake"
    first_pull_days: float = 91.0  # where a lake's first pull starts, back from the API's clock: 13 weeks,
    # so that baselines, deviations, anomalies and trends show on a first start
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retries: int = 6  # attempts after the first
    backoff_seconds: float = 0.5  # doubled after every failed attempt, with jitter
    backoff_max_seconds: float = 30.0
    page_rows: int = 500_000  # rows per request: large pages, few round trips, bounded memory
    lock_timeout: float = 600.0
    snapshot_dir: str = "snapshot"  # where the DAG publishes the dashboard's snapshot: an ignored folder;
    # the committed streamlit_data/ changes only by `python -m etl snapshot --out streamlit_data`
    alert_window_days: float = 2.0  # ERROR incidents that ended this long before a run are old news
    alert_webhook: str = ""  # POST new alerts here as JSON, when set
    smtp_host: str = ""  # e-mail new alerts through this server, when set
    smtp_port: int = 25
    smtp_from: str = "sensor-pipeline@localhost"
    smtp_to: str = ""  # comma-separated recipients

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> EtlSettings:
        """ETL_API_URL, ETL_API_KEY, ETL_LAKE, ETL_FIRST_PULL_DAYS, ETL_CONNECT_TIMEOUT, ETL_READ_TIMEOUT,
        ETL_RETRIES, ETL_BACKOFF_SECONDS, ETL_BACKOFF_MAX_SECONDS, ETL_PAGE_ROWS, ETL_LOCK_TIMEOUT,
        ETL_SNAPSHOT_DIR, ETL_ALERT_WINDOW_DAYS, ETL_ALERT_WEBHOOK, ETL_SMTP_HOST, ETL_SMTP_PORT,
        ETL_SMTP_FROM, ETL_SMTP_TO."""
        env = dict(os.environ if env is None else env)
        values = {}
        for name, spec in cls.__dataclass_fields__.items():
            raw = env.get(f"ETL_{name.upper()}")
            if raw is None or raw == "":
                continue
            kind = type(spec.default)
            try:
                values[name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"ETL_{name.upper()}={raw!r} is not a {kind.__name__}") from exc
        return cls(**values)
