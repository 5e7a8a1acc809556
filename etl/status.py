"""What the lake holds: watermark, rows, partitions, last run and quarantined rows per data set."""

from __future__ import annotations

from etl.datasets import DATASETS
from etl.lake import Lake


def lake_status(lake: Lake) -> dict:
    """Counts come from Parquet footers: cheap, and true to what readers would see."""
    out = {}
    for kind in DATASETS:
        files = lake.files("raw", kind)
        quarantined = lake.files("quarantine", kind)
        state = lake.read_state(kind)
        dates = [p.rsplit("/", 2)[-2].removeprefix("date=") for p in files]
        out[kind] = {
            "watermark": state.get("watermark"),
            "rows": sum(lake.row_count(p) for p in files),
            "partitions": len(files),
            "first_date": dates[0] if dates else None,
            "last_date": dates[-1] if dates else None,
            "quarantined_rows": sum(lake.row_count(p) for p in quarantined),
            "last_run": (state.get("runs") or [None])[0],
        }
    return out


def format_status(status: dict) -> str:
    lines = []
    for kind, s in status.items():
        run = s["last_run"]
        last = (
            "never"
            if run is None
            else f"{run['command']} {run['status']} at {run['finished_at']} ({run['rows']:,} rows)"
        )
        span = f"{s['first_date']} .. {s['last_date']}" if s["partitions"] else "empty"
        lines.append(
            f"{kind:7s} watermark {s['watermark'] or 'none'} | {s['rows']:,} rows in {s['partitions']} partitions "
            f"({span}) | quarantined {s['quarantined_rows']:,} | last run: {last}"
        )
    return "\n".join(lines)
