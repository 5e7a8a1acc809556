"""A small copy of a lake for the dashboard on Streamlit Community Cloud (`streamlit_data/`).

The snapshot is itself a lake, with the same layout, cut to recent days:

    OUT/marts/door_*/month=YYYY-MM/data.parquet     door marts, the last `door_days` local dates
    OUT/marts/robot_*/month=YYYY-MM/data.parquet    robot marts, the last `robot_days` UTC dates
    OUT/raw/robots/date=YYYY-MM-DD/data.parquet     raw samples, the last `raw_robot_days` (simulator fidelity)
    OUT/reference/fleet.json                        the fleet reference
    OUT/snapshot.json                               when, from which lake, and that lake's status

so the dashboard reads it exactly as it reads a lake; the Pipeline tab shows the source lake's
status from snapshot.json. It is built in a folder beside OUT and swapped in by two renames, so a
reader sees the old snapshot or the new one, and a rerun on the same lake gives the same data.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from etl.lake import Lake
from etl.marts import PART_DATES
from etl.status import lake_status

SNAPSHOT_FILE = "snapshot.json"
README = """# streamlit_data/

The small committed snapshot of the marts that the dashboard reads on Streamlit Community Cloud,
written whole by `python -m etl snapshot --lake LAKE` (and by the DAG): recent marts, a day of raw
robot samples, the fleet reference, and in snapshot.json the source lake's status. Do not edit.
"""


@dataclass(frozen=True)
class SnapshotParams:
    door_days: int = 91  # door marts: 13 weeks (a year of them is ~4 MB; 13 weeks ~1 MB)
    robot_days: int = 14  # robot marts: robot_fits takes ~250 KB a day
    raw_robot_days: int = 1  # raw robot samples (~1 MB a day), for the mean/std/distribution check


@dataclass
class SnapshotSummary:
    out_dir: str
    files: int = 0
    bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    door_from: str | None = None
    robot_from: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        spans = f"doors from {self.door_from or '-'}, robots from {self.robot_from or '-'}"
        return (
            f"snapshot {self.out_dir}: {self.files} files, {self.bytes / 2**20:.1f} MB, "
            f"{sum(self.rows.values()):,} mart rows; {spans}; {self.seconds:.2f} s"
        )


def write_snapshot(lake: Lake, out_dir: Path, params: SnapshotParams | None = None) -> SnapshotSummary:
    """Replace out_dir with a snapshot of the lake's recent marts (see the module docstring)."""
    began = time.perf_counter()
    params = params or SnapshotParams()
    out_dir = Path(out_dir).resolve()
    remove_leftovers(out_dir)
    marts = sorted({p.rsplit("/", 3)[-3] for p in lake.files("marts")})
    if not marts:
        raise ValueError(f"lake {lake.uri} holds no marts: run `python -m etl transform --lake {lake.uri}` first")
    status = lake_status(lake)
    door_from = since(status["doors"]["last_date"], params.door_days)
    robot_from = since(status["robots"]["last_date"], params.robot_days)
    raw_from = since(status["robots"]["last_date"], params.raw_robot_days)
    summary = SnapshotSummary(out_dir=str(out_dir), door_from=iso(door_from), robot_from=iso(robot_from))
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        copy = Lake(str(tmp))
        for table in marts:
            cutoff = door_from if table.startswith("door_") else robot_from
            summary.rows[table] = copy_mart(lake, copy, table, cutoff)
        for path in lake.files("raw", "robots"):
            if raw_from and partition_date(path) >= raw_from:
                copy.write_bytes(copy.path(*path.rsplit("/", 4)[-4:]), lake.read_bytes(path))
        fleet = lake.read_bytes(lake.fleet_file())
        if fleet is not None:
            copy.write_bytes(copy.fleet_file(), fleet)
        transform_state = lake.read_state("transform")
        info = {
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "source": lake.uri,
            "params": asdict(params),
            "status": status,
            "transform_last_run": transform_state.get("last_run"),
        }
        copy.write_bytes(copy.path(SNAPSHOT_FILE), json.dumps(info, indent=2, sort_keys=True).encode())
        copy.write_bytes(copy.path("README.md"), README.encode())  # the folder is replaced whole
        summary.files = len(copy.files(suffix=""))
        summary.bytes = sum(i.size for i in copy.file_infos(suffix=""))
        swap(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary.seconds = round(time.perf_counter() - began, 3)
    return summary


def copy_mart(lake: Lake, copy: Lake, table: str, cutoff: dt.date | None) -> int:
    """Copy a mart's partitions from `cutoff` on: date partitions whole, month partitions cut to
    the rows dated on or after it (door marts by `local_date`, robot marts by the rows per UTC
    date the transform lists in the file). Returns the rows copied."""
    rows = 0
    for path in lake.files("marts", table):
        label = path.rsplit("/", 2)[-2]
        target = copy.mart_file(table, label)
        if label.startswith("date="):
            if cutoff is None or partition_date(path) >= cutoff:
                copy.write_bytes(target, lake.read_bytes(path))
                rows += lake.row_count(path)
            continue
        data = lake.read_table(path)
        metadata = (data.schema.metadata or {}) if data is not None else {}
        if cutoff is not None and data is not None and "local_date" in data.column_names:
            data = data.filter(pc.greater_equal(data.column("local_date"), pa.scalar(cutoff, pa.date32())))
        elif cutoff is not None and PART_DATES in metadata:  # robot marts: UTC dates
            # files are sorted by date: the rows from the cutoff on are the file's tail
            counts = json.loads(metadata[PART_DATES])
            data = data.slice(sum(n for date, n in counts if dt.date.fromisoformat(date) < cutoff))
        if data is not None and data.num_rows:
            # a cut month file no longer has the rows per date its transform metadata counts
            kept = {k: v for k, v in metadata.items() if k != PART_DATES}
            copy.write_table(target, data.replace_schema_metadata(kept))
            rows += data.num_rows
    return rows


def swap(tmp: Path, out_dir: Path) -> None:
    """Put the finished tmp folder in out_dir's place: the old one is renamed away, then removed."""
    old = out_dir.with_name(f"{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(out_dir: Path) -> None:
    """Folders a killed run left beside out_dir (one snapshot writer at a time, as for the lake)."""
    if out_dir.parent.exists():
        for stale in out_dir.parent.glob(f"{out_dir.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in out_dir.parent.glob(f"{out_dir.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)


def since(last_date: str | None, days: int) -> dt.date | None:
    """The first of the last `days` dates up to last_date (None: no data)."""
    return dt.date.fromisoformat(last_date) - dt.timedelta(days=days - 1) if last_date else None


def partition_date(path: str) -> dt.date:
    return dt.date.fromisoformat(path.rsplit("/", 2)[-2].removeprefix("date="))


def iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None
