"""The lake: layout, atomic writes, exactly-once merges, watermarks and the lock.

Layout (a contract later stages rely on):

    LAKE/raw/<kind>/date=YYYY-MM-DD/data.parquet    one zstd file per UTC date
    LAKE/quarantine/<kind>/<run>-<n>.parquet        rejected rows, as text, with the reason
    LAKE/_state/<kind>.json                         watermark and recent runs

Every date partition is exactly one file, rewritten whole through a temporary file and
an atomic rename (an object PUT on S3, which appears whole or not at all), so a reader
never sees a partial file, two files of one date, or a duplicate; a killed process
leaves at most a `*.tmp-*` file, which the next run under the same lock removes (a writer
removes only the temporary files its lock owns, or old ones: see remove_stale_temporaries).
One file per date also means no small files to compact: an hourly increment rewrites its
date's file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from contract.times import EPOCH, to_us
from etl.datasets import Dataset

DATA_FILE = "data.parquet"
US_PER_DAY = 86_400_000_000
LOCK_SCOPES = ("doors", "marts", "robots", "sites")  # what a writer may hold: a data set, the marts, the registry
STALE_TMP_SECONDS = 3600.0  # a temporary file no lock of ours owns is a killed writer's after this long


class LakeBusy(RuntimeError):
    """Another process holds the lake's lock."""


@dataclass(frozen=True)
class Partition:
    day: int  # days since 1970-01-01 (UTC)

    @property
    def date(self) -> dt.date:
        return dt.date(1970, 1, 1) + dt.timedelta(days=self.day)

    @property
    def name(self) -> str:
        return f"date={self.date.isoformat()}"

    @classmethod
    def from_iso(cls, text: str) -> Partition:
        return cls((dt.date.fromisoformat(text) - dt.date(1970, 1, 1)).days)

    @classmethod
    def from_path(cls, path: str) -> Partition:
        """The partition of a file .../date=YYYY-MM-DD/name."""
        return cls.from_iso(path.rsplit("/", 2)[-2].removeprefix("date="))


def day_of(value: dt.datetime) -> int:
    return (value - EPOCH) // dt.timedelta(days=1)


def days_of(start: dt.datetime, end: dt.datetime) -> range:
    """The UTC dates (as days since the epoch) that [start, end) touches."""
    return range(day_of(start), day_of(end - dt.timedelta(microseconds=1)) + 1)


def outside_interval(table: pa.Table, start: dt.datetime, end: dt.datetime) -> pa.ChunkedArray:
    """True for the rows whose `ts` is not in [start, end)."""
    import pyarrow.compute as pc  # the pulls' and imports': 20 ms of every command's start-up

    ts = table.column("ts").cast(pa.int64())
    return pc.or_(pc.less(ts, to_us(start)), pc.greater_equal(ts, to_us(end)))


class Lake:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        if "://" in uri:
            self.fs, self.root = pafs.FileSystem.from_uri(uri)
            self.local = isinstance(self.fs, pafs.LocalFileSystem)
        else:
            self.fs, self.root, self.local = pafs.LocalFileSystem(), str(Path(uri).resolve()), True
        self.root = self.root.rstrip("/")

    # -- paths ---------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether a pull or an import has written here (a reader of a lake that is not there,
        a mistyped --lake, must say so, not create an empty one)."""
        infos = self.fs.get_file_info([self.path("raw"), self.path("_state")])
        return any(i.type != pafs.FileType.NotFound for i in infos)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def partition_file(self, kind: str, part: Partition) -> str:
        return self.path("raw", kind, part.name, DATA_FILE)

    def mart_file(self, table: str, part: str) -> str:
        """The file of a mart table's partition (`month=YYYY-MM` or `date=YYYY-MM-DD`)."""
        return self.path("marts", table, part, DATA_FILE)

    def partition_versions(self, kind: str) -> dict[str, str]:
        """{date: "size/mtime"} of each raw partition's file: what a transform has or has not seen.

        A local lake lists the date folders and stats each one's file: one call a partition
        (listing 3 years recursively took 21 - 45 ms, this 5 - 8 ms: the hourly transform's only
        cost that grows with history). An object store lists the files, which come with both."""
        if not self.local:
            return {
                Partition.from_path(i.path).date.isoformat(): f"{i.size}/{i.mtime_ns}"
                for i in self.file_infos("raw", kind)
                if i.base_name == DATA_FILE
            }
        versions, folders = {}, []
        with contextlib.suppress(FileNotFoundError):  # no partitions yet
            folders = [e.name for e in os.scandir(self.path("raw", kind)) if e.name.startswith("date=")]
        for folder in sorted(folders):
            with contextlib.suppress(FileNotFoundError):  # an empty folder
                stat = os.stat(self.path("raw", kind, folder, DATA_FILE))
                versions[folder.removeprefix("date=")] = f"{stat.st_size}/{stat.st_mtime_ns}"
        return versions

    def fleet_file(self) -> str:
        """The fleet reference the pull keeps beside the data (stores' time zones, robots' axes)."""
        return self.path("reference", "fleet.json")

    def read_fleet(self) -> dict:
        """The fleet reference, or {} before a pull saved one."""
        return json.loads(self.read_bytes(self.fleet_file()) or b"{}")

    def file_infos(self, *parts: str, suffix: str = ".parquet") -> list[pafs.FileInfo]:
        """Every file under a folder whose name ends with suffix, sorted by path."""
        selector = pafs.FileSelector(self.path(*parts), recursive=True, allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        files = [i for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(suffix)]
        return sorted(files, key=lambda i: i.path)

    def files(self, *parts: str, suffix: str = ".parquet") -> list[str]:
        return [i.path for i in self.file_infos(*parts, suffix=suffix)]

    # -- atomic writes -------------------------------------------------------------------

    def write_bytes(self, path: str, data: bytes, owner: str = "") -> None:
        """Write a whole file atomically: readers see the old file or the new, never a part.
        `owner`: the lock scope of a writer of a file that several write (reference/fleet.json),
        named in the temporary file so that a later run under that lock knows it for its own."""
        self._write(path, lambda sink: sink.write(data), owner)

    def write_table(self, path: str, table: pa.Table, compression: str = "zstd") -> None:
        """Write a Parquet file atomically: zstd (level 1) by default, the smallest files of
        the fast codecs; "lz4" encodes in half the time, into files a fifth larger (the marts)."""
        # Dictionaries only for text: numbers rarely repeat. A dictionary tried on every float
        # column took most of a file's encoding time and left it larger (a year of raw robot
        # readings: 371 MB with one, 293 MB without; writing took twice as long).
        text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        level = {"compression_level": 1} if compression == "zstd" else {}

        def fill(sink) -> None:
            pq.write_table(table, sink, compression=compression, use_dictionary=text, **level)

        self._write(path, fill)

    def _write(self, path: str, fill, owner: str = "") -> None:
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        if not self.local:
            # An S3 object appears only when its upload completes: a killed writer leaves nothing.
            with self.fs.open_output_stream(path) as sink:
                fill(sink)
            return
        tmp = f"{path}.tmp-{owner + '-' if owner else ''}{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "wb") as sink:
                fill(sink)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(tmp, path)
            _fsync_dir(parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)

    def remove_stale_temporaries(self, *scopes: str, older_than: float = STALE_TMP_SECONDS) -> int:
        """Remove the temporary files a killed writer left behind (never visible to readers,
        which glob *.parquet); call it holding the lock of `scopes` (none: the whole lake).

        Only the files those locks own go at any age: another writer, under another lock, may be
        writing its own temporary file right now (a robots pull's start-up that removed every
        `*.tmp-*` failed a doors pull beside it). Any other temporary file goes only once it is
        `older_than` seconds old, which no live write takes."""
        owned = owned_prefixes(scopes or LOCK_SCOPES)
        now = time.time()
        stale = []
        for info in self.file_infos(suffix=""):
            if ".tmp-" not in info.base_name:
                continue
            relative = info.path[len(self.root) + 1 :]
            mtime = info.mtime.timestamp() if info.mtime is not None else now
            if relative.startswith(owned) or now - mtime > older_than:
                stale.append(info.path)
        for path in stale:
            with contextlib.suppress(FileNotFoundError):  # an older writer's clean-up came first
                self.fs.delete_file(path)
        return len(stale)

    def remove_empty_folders(self, *parts: str) -> None:
        """Remove the empty folders directly under a folder of a local lake (object stores have
        none): partition folders that earlier versions left behind when they deleted a file."""
        if not self.local:
            return
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.path(*parts)):
                with contextlib.suppress(OSError):  # not empty, or not a folder
                    os.rmdir(entry.path)

    def delete(self, path: str) -> None:
        """Delete a file, and on a local lake its partition folder when that leaves it empty
        (object stores have no folders): a table that changed its partitioning, or a day
        whose readings all went, leaves no empty `date=` folders behind."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(path)
        if self.local:
            with contextlib.suppress(OSError):  # not empty, or already gone
                os.rmdir(path.rsplit("/", 1)[0])

    # -- reading -------------------------------------------------------------------------

    def read_table(self, path: str) -> pa.Table | None:
        try:
            with self.fs.open_input_file(path) as f:
                return pq.ParquetFile(f).read()
        except FileNotFoundError:
            return None

    def read_bytes(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def read_partition(self, data: Dataset, part: Partition) -> pa.Table | None:
        table = self.read_table(self.partition_file(data.kind, part))
        return None if table is None else table.cast(data.schema)

    def row_count(self, path: str) -> int:
        with self.fs.open_input_file(path) as f:
            return pq.ParquetFile(f).metadata.num_rows

    # -- exactly-once merges -------------------------------------------------------------

    def replace_interval(self, data: Dataset, table: pa.Table, start: dt.datetime, end: dt.datetime) -> list[Partition]:
        """Make the lake hold exactly `table` for [start, end): rows there before are replaced.

        Each touched date is rewritten whole (rows outside the interval kept), so
        repeating or overlapping a pull never duplicates a reading.
        """
        written = []
        for part, new in split_by_day(table, days_of(start, end)):
            old = self.read_partition(data, part)
            if old is not None:
                new = pa.concat_tables([old.filter(outside_interval(old, start, end)), new])
            self._store_partition(data, part, new)
            written.append(part)
        return written

    def read_interval(self, data: Dataset, start: dt.datetime, end: dt.datetime) -> pa.Table:
        """The rows of [start, end), from the date partitions it touches."""
        import pyarrow.compute as pc

        tables = []
        for day in days_of(start, end):
            part = self.read_partition(data, Partition(day))
            if part is not None:
                tables.append(part.filter(pc.invert(outside_interval(part, start, end))))
        return pa.concat_tables(tables) if tables else data.schema.empty_table()

    def upsert(self, data: Dataset, table: pa.Table) -> list[Partition]:
        """Insert rows, replacing any lake row with the same key (for imports)."""
        days = np.unique(table.column("ts").cast(pa.int64()).to_numpy() // US_PER_DAY)
        written = []
        for part, new in split_by_day(table, days.tolist()):
            old = self.read_partition(data, part)
            if old is not None:
                merged = pa.concat_tables([old, new])
                new = merged.filter(pa.array(~repeated_keys(merged, data.key, keep="last")))
            self._store_partition(data, part, new)
            written.append(part)
        return written

    def _store_partition(self, data: Dataset, part: Partition, table: pa.Table) -> None:
        path = self.partition_file(data.kind, part)
        if table.num_rows == 0:
            self.delete(path)
            return
        order = [(k, "ascending") for k in data.key]
        self.write_table(path, table.cast(data.schema).sort_by(order).combine_chunks())

    # -- state ---------------------------------------------------------------------------

    def state_path(self, kind: str) -> str:
        return self.path("_state", f"{kind}.json")

    def read_state(self, kind: str) -> dict:
        raw = self.read_bytes(self.state_path(kind))
        return json.loads(raw) if raw else {}

    def write_state(self, kind: str, state: dict) -> None:
        self.write_bytes(self.state_path(kind), json.dumps(state, indent=2, sort_keys=True).encode())

    # -- the lock ------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, timeout: float, *scopes: str) -> Iterator[None]:
        """One writer at a time per scope: a data set's kind ("doors", "robots") or "marts";
        no scope means all of them. So the two pulls run side by side, and a transform, which
        reads both data sets and writes the marts, waits for both. Scopes are taken in sorted
        order, so two writers never wait for each other. A local lake locks files inside it; a
        remote lake locks files on this machine named after its URI (writers on several
        machines need an orchestrator that runs one at a time, as the DAG's max_active_runs=1 does)."""
        with contextlib.ExitStack() as held:
            deadline = time.monotonic() + timeout
            for scope in sorted(set(scopes or LOCK_SCOPES)):
                held.enter_context(self._lock_file(scope, deadline, timeout))
            yield

    @contextlib.contextmanager
    def _lock_file(self, scope: str, deadline: float, timeout: float) -> Iterator[None]:
        if scope not in LOCK_SCOPES:
            raise ValueError(f"lock scope {scope!r} is not one of {', '.join(LOCK_SCOPES)}")
        if self.local:
            lock_path = Path(self.path("_state", f".lock-{scope}"))
            lock_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            digest = hashlib.sha1(self.uri.encode()).hexdigest()[:16]
            lock_path = Path(tempfile.gettempdir()) / f"sensor-lake-{digest}-{scope}.lock"
        with open(lock_path, "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "another process"
                        raise LakeBusy(
                            f"lake {self.uri} ({scope}) is locked by {holder}; gave up after {timeout:.0f} s"
                        ) from None
                    time.sleep(0.1)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} since {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)


def owned_prefixes(scopes) -> tuple[str, ...]:
    """The paths (relative to the lake's root) whose files only a holder of `scopes` writes:
    a data set's raw and quarantined files and its state; the marts and the transform's and the
    notifications' state. reference/fleet.json is written by both pulls: each names itself in its
    temporary file's name."""
    prefixes = []
    for scope in scopes:
        if scope == "marts":
            prefixes += ["marts/", "_state/transform.json.tmp-", "_state/notify.json.tmp-"]
        elif scope == "sites":  # the registry's writers take it while they read, merge and write it
            prefixes.append("reference/fleet.json.tmp-")
        else:
            prefixes += [f"raw/{scope}/", f"quarantine/{scope}/", f"_state/{scope}.json.tmp-"]
            prefixes.append(f"reference/fleet.json.tmp-{scope}-")  # see write_bytes(owner=...)
    # Not the whole lake even with every lock held: writers outside these locks (the streaming job's
    # alerts, dead letters, scores and state; the operational database; the model registry) may be
    # writing their own temporary files right now. Theirs go by age only.
    return tuple(prefixes)


def repeated_keys(table: pa.Table, key: tuple[str, ...], keep: str = "first") -> np.ndarray:
    """True for every row whose key an earlier (keep="first") or later (keep="last") row has."""
    rows = np.arange(table.num_rows)
    indexed = table.select(list(key)).append_column("_row", pa.array(rows))
    which = "min" if keep == "first" else "max"
    kept = indexed.group_by(list(key), use_threads=False).aggregate([("_row", which)]).column(f"_row_{which}")
    repeated = np.ones(table.num_rows, dtype=bool)
    repeated[kept.to_numpy()] = False
    return repeated


def split_by_day(table: pa.Table, days, column: str = "ts") -> Iterator[tuple[Partition, pa.Table]]:
    """(partition, rows of that date) for each day, with empty tables for days without rows.

    `column` is a UTC timestamp (its UTC date counts) or a date."""
    day_of_row = np.zeros(0, np.int64)
    if table.num_rows:
        values = table.column(column)
        if pa.types.is_timestamp(values.type):
            day_of_row = values.cast(pa.int64()).to_numpy() // US_PER_DAY
        else:
            day_of_row = values.cast(pa.int32()).to_numpy().astype(np.int64)
        if np.any(np.diff(day_of_row) < 0):
            order = np.argsort(day_of_row, kind="stable")
            table, day_of_row = table.take(pa.array(order)), day_of_row[order]
    for day in days:
        lo, hi = np.searchsorted(day_of_row, [day, day + 1])
        yield Partition(int(day)), table.slice(lo, hi - lo)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
