"""A recorded CSV into the lake, with the same validation as a pull.

As the original robot workshop did: rename the columns, keep the required ones, convert
the time, then stage. Values that do not parse are quarantined as they arrived, with
the reason; nothing is dropped silently. Door counts may come at any interval that divides
the hour (etl/hours.py sums them to the store's local hours); readings of a store or door the
site registry does not describe are quarantined with the reason (etl/sites.py).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from contract.columns import parse_map
from etl.client import iso
from etl.datasets import Dataset
from etl.hours import to_local_hours
from etl.lake import Lake
from etl.pull import RunSummary, quarantine, reason_counts, record_run
from etl.settings import EtlSettings
from etl.sites import robot_ids
from etl.validate import validate

if TYPE_CHECKING:
    from sqlalchemy import Engine


class CsvImportError(ValueError):
    """The CSV or its column map cannot be imported at all (as opposed to some bad rows)."""


def read_mapped(path: Path, data: Dataset, mapping: dict[str, str], constants: dict[str, str]) -> pa.Table:
    """The CSV's mapped columns, renamed, as text; constants fill columns the file lacks."""
    try:
        raw = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(mapping, pa.string()), strings_can_be_null=True
            ),
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise CsvImportError(f"{path}: {exc}") from exc
    missing = [c for c in mapping if c not in raw.column_names]
    if missing:
        raise CsvImportError(f"{path}: no column(s) {', '.join(missing)}; the file has {', '.join(raw.column_names)}")
    columns = {target: raw.column(source) for source, target in mapping.items()}
    for name, value in constants.items():
        columns.setdefault(name, pa.array([value] * raw.num_rows, pa.string()))
    absent = [n for n in data.schema.names if n not in columns]
    if absent:
        raise CsvImportError(f"--map: nothing maps to {', '.join(absent)} (required for {data.kind})")
    return pa.table({n: columns[n] for n in data.schema.names})


def convert(text: pa.Table, data: Dataset) -> tuple[pa.Table, pa.Table]:
    """Text columns -> the data set's types; rows that do not convert come back with a reason."""
    frame = text.to_pandas()
    reason = pd.Series(None, index=frame.index, dtype=object)
    typed = {}
    for f in data.schema:
        col = frame[f.name]
        if pa.types.is_timestamp(f.type):
            parsed = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
            reason = reason.where(reason.notna() | parsed.notna() | col.isna(), f"{f.name} is not an ISO 8601 time")
            typed[f.name] = pa.array(parsed.dt.as_unit("us"), f.type)
        elif pa.types.is_string(f.type):
            typed[f.name] = pa.array(col, pa.string())
        else:
            numbers = pd.to_numeric(col, errors="coerce")
            if pa.types.is_integer(f.type):
                # inf and 99999999999999999999 parse as floats that fit no integer (an OverflowError
                # once); 3000000000 fits no int32 (Arrow refused the whole file, naming no row)
                limits = np.iinfo(f.type.to_pandas_dtype())
                whole = numbers.notna() & np.isfinite(numbers) & (numbers == np.floor(numbers.fillna(0)))
                fractional = numbers.notna() & ~whole
                beyond = whole & ((numbers < limits.min) | (numbers > limits.max))
                reason = reason.where(reason.notna() | ~fractional, f"{f.name} is not a whole number")
                reason = reason.where(reason.notna() | ~beyond, f"{f.name} beyond the {f.type} range")
                numbers = numbers.where(whole & ~beyond)
            reason = reason.where(reason.notna() | numbers.notna() | col.isna(), f"{f.name} is not a number")
            typed[f.name] = pa.array(numbers.astype("Float64" if pa.types.is_floating(f.type) else "Int64"), f.type)
    bad = reason.notna().to_numpy()
    table = pa.table(typed)
    rejected = text.filter(pa.array(bad)).append_column("reason", pa.array(reason[bad].tolist(), pa.string()))
    return table.filter(pa.array(~bad)), rejected


def unregistered_robots(good: pa.Table, sites: dict) -> list[str]:
    """A robot the registry does not describe is loaded (its marts need no time zone), with a note:
    its maintenance forecasts need the axes' reference levels."""
    known = robot_ids(sites)
    robots = sorted(set(pc.unique(good.column("robot_id")).to_pylist()) - known) if good.num_rows else []
    return [f"robot {r} is not in the site registry: its maintenance forecasts need its axes' reference levels "
            "(python -m etl sites load)" for r in robots]  # fmt: skip


def import_csv(
    lake: Lake,
    data: Dataset,
    path: Path,
    mapping: str,
    settings: EtlSettings,
    constants: dict[str, str],
    stage_into: Engine | None = None,
) -> RunSummary:
    """`stage_into`: also upsert the validated rows into the operational database's staging table."""
    began = time.perf_counter()
    summary = RunSummary(data.kind, "import-csv")
    text = read_mapped(path, data, parse_map(mapping), constants)
    typed, unparsable = convert(text, data)
    sites = lake.read_fleet()
    partial = unparsable.schema.empty_table()
    if data.kind == "doors":
        hours = to_local_hours(typed, {s["name"]: s["timezone"] for s in sites.get("stores", [])})
        typed, partial = hours.hourly, hours.partial
    checked = validate(typed, data, None, None, settings.time_window(), sites)
    name = f"import-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    with lake.lock(settings.lock_timeout, data.kind):
        lake.remove_stale_temporaries(data.kind)
        written = lake.upsert(data, checked.good)
        if stage_into is not None:
            from etl.alarms.staging import stage, staging_table

            staged = stage(stage_into, data.kind, checked.good, str(path))
            summary.notes.append(
                f"staged {staged:,} rows in {staging_table(data.kind).name} (upserted on sensor and time)"
            )
        columns = unparsable.column_names
        bad = pa.concat_tables([unparsable, partial.select(columns), checked.bad.select(columns)])
        quarantine(lake, data.kind, bad, name)
        summary.rows, summary.quarantined = checked.good.num_rows, bad.num_rows
        summary.reasons = reason_counts(bad)
        if data.kind == "robots":
            summary.notes += unregistered_robots(checked.good, sites)
        summary.partitions = [p.date.isoformat() for p in written]
        summary.watermark = lake.read_state(data.kind).get("watermark")
        if checked.good.num_rows:
            span = pc.min_max(checked.good.column("ts"))
            summary.start, summary.end = iso(span["min"].as_py()), iso(span["max"].as_py())
        summary.status, summary.seconds = "ok", round(time.perf_counter() - began, 3)
        summary.finished_at = iso(dt.datetime.now(dt.UTC))
        record_run(lake, data.kind, summary)
    return summary
