"""The ETL's configuration: environment variables with defaults, read once, passed in."""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass, field, fields

from contract.times import parse_instant

# (lowest, highest) of the numeric settings that need more than "finite, not negative"
LIMITS = {
    "connect_timeout": (0.001, math.inf),
    "read_timeout": (0.001, math.inf),
    "page_rows": (1, math.inf),
    "smtp_port": (1, 65535),
    "first_pull_days": (0, 3_650_000),
    "max_future_days": (0, 36_500),  # past the wall clock: more would overflow a datetime
    "alert_window_days": (0, 3_650_000),
    "memory_budget_mb": (64, math.inf),  # below this no page of a wide fleet fits
}


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
    memory_budget_mb: int = 1024  # the most a pull, a transform or the stream job may hold: pages,
    # chunks and DuckDB's memory_limit are sized from it by rows, whatever the fleet's width
    lock_timeout: float = 600.0
    snapshot_dir: str = "snapshot"  # where the DAG publishes the dashboard's snapshot: an ignored folder;
    # the committed streamlit_data/ changes only by `python -m etl snapshot --out streamlit_data`
    alert_window_days: float = 2.0  # a first alarms feed starts this long before its run (older is old news)
    alert_webhook: str = ""  # POST new alerts here as JSON, when set
    smtp_host: str = ""  # e-mail new alerts through this server, when set
    smtp_port: int = 25
    smtp_from: str = "sensor-pipeline@localhost"
    smtp_to: str = ""  # comma-separated recipients
    ops_db: str = field(default="", repr=False)  # the operational database (alarms, staging): a SQLAlchemy
    # URL such as postgresql+psycopg://user@host/db; empty: SQLite at LAKE/_ops/ops.sqlite (a local lake)
    alarm_rules: str = ""  # a TOML or JSON file of per-type alarm rules (docs/alarms.md); empty: the defaults
    min_time: str = "1970-01-01T00:00:00Z"  # the plausible window of data: nothing before this ...
    max_future_days: float = 2.0  # ... nor this many days past the wall clock (a row at 9999-12-31
    # made every transform fail; one at 2200-01-01 made it take 110 s instead of 1)

    def __post_init__(self) -> None:
        """Refuse values no run can use, naming the variable (ETL_RETRIES=-5 ended in an
        AssertionError, ETL_FIRST_PULL_DAYS=inf in an OverflowError)."""
        for f in fields(self):
            value, name = getattr(self, f.name), f"ETL_{f.name.upper()}"
            if isinstance(value, int | float) and not math.isfinite(value):
                raise ValueError(f"{name}={value!r} is not a finite number")
            low, high = LIMITS.get(f.name, (0, math.inf))
            if isinstance(value, int | float) and not low <= value <= high:
                bounds = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
                raise ValueError(f"{name}={value!r} must be {bounds}")
        for name, url in (("ETL_API_URL", self.api_url), ("ETL_ALERT_WEBHOOK", self.alert_webhook)):
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"{name}={url!r} is not an http:// or https:// URL")
        if not self.lake:
            raise ValueError("ETL_LAKE is empty")
        try:
            parse_instant(self.min_time)
        except (ValueError, OverflowError) as exc:
            raise ValueError(
                f"ETL_MIN_TIME={self.min_time!r} is not an ISO 8601 time such as 1970-01-01T00:00:00Z"
            ) from exc

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> EtlSettings:
        """ETL_API_URL, ETL_API_KEY, ETL_LAKE, ETL_FIRST_PULL_DAYS, ETL_CONNECT_TIMEOUT, ETL_READ_TIMEOUT,
        ETL_RETRIES, ETL_BACKOFF_SECONDS, ETL_BACKOFF_MAX_SECONDS, ETL_PAGE_ROWS, ETL_MEMORY_BUDGET_MB,
        ETL_LOCK_TIMEOUT, ETL_SNAPSHOT_DIR, ETL_ALERT_WINDOW_DAYS, ETL_ALERT_WEBHOOK, ETL_SMTP_HOST, ETL_SMTP_PORT,
        ETL_SMTP_FROM, ETL_SMTP_TO, ETL_OPS_DB, ETL_ALARM_RULES, ETL_MIN_TIME, ETL_MAX_FUTURE_DAYS."""
        env = dict(os.environ if env is None else env)
        values = {}
        for name, spec in cls.__dataclass_fields__.items():
            raw = env.get(f"ETL_{name.upper()}")
            if raw is None or raw == "":
                continue
            kind = type(spec.default)
            try:
                values[name] = kind(raw)
            except (ValueError, OverflowError) as exc:
                what = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
                raise ValueError(f"ETL_{name.upper()}={raw!r} is not {what}") from exc
        return cls(**values)

    def time_window(self, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
        """[first, last) instant a reading may have: pulls, imports and the transform refuse
        anything outside (`now`: the wall clock)."""
        now = now or dt.datetime.now(dt.UTC)
        return parse_instant(self.min_time), now + dt.timedelta(days=self.max_future_days)
