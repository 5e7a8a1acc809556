"""Instants on the wire: ISO 8601 text <-> aware UTC datetimes <-> microseconds since the epoch."""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_us(value: dt.datetime) -> int:
    """Microseconds since the epoch, exactly (no float on the way)."""
    return (value - EPOCH) // dt.timedelta(microseconds=1)


def parse_instant(text: str) -> dt.datetime:
    """ISO 8601 -> aware UTC datetime; a time without an offset is taken as UTC."""
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
