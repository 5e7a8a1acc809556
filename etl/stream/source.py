"""The job's inputs as resumable Bytewax sources: API NDJSON streams (live or replays) and NDJSON files.

A partition's snapshot is its cursor, so a restart reads on from exactly where the last
snapshot stood. On the API the cursor is `(since, instant, n)`: the last complete instant, the
instant being read and how many of its lines were emitted; a reconnect asks for `since=` and
skips those n lines (the API sends an instant's lines in the same order every time), so nothing
is lost or read twice, whether the connection dropped, the server ended it or the job was killed.
A file's cursor is its byte offset.
"""

from __future__ import annotations

import datetime as dt
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import requests
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

TS_PREFIX = re.compile(rb'^\{\s*"ts"\s*:\s*"([^"]{1,40})"')
BATCH = 2048  # items handed to the engine per call
IDLE = dt.timedelta(milliseconds=50)  # how soon to look again when nothing was waiting


class FirstRead:
    """The process's CPU clock when a source first handed the engine records: where a run's
    cpu_seconds start (the engine may score many batches before the sink sees the first)."""

    cpu: float | None = None

    @classmethod
    def mark(cls) -> None:
        if cls.cpu is None:
            cls.cpu = time.process_time()


class Cursor(NamedTuple):
    since: str | None  # the last complete instant (the API's exclusive cursor); None: from the start
    instant: str | None  # the instant being read
    n: int  # its lines emitted so far (a line without a readable ts counts in the current instant)


@dataclass(frozen=True)
class HttpSpec:
    name: str
    url: str
    params: dict
    finite: bool  # a replay or a bounded span: an empty, cleanly ended answer means the end
    since: str | None  # where a first start begins
    headers: dict = field(default_factory=dict, repr=False)  # X-API-Key when the API wants one: never shown


class HttpPartition(StatefulSourcePartition):
    """Lines of one API stream, read by a thread (the engine must never block) and handed out in batches."""

    def __init__(self, spec: HttpSpec, resume: Cursor | None, timeout: float = 30.0) -> None:
        self.spec = spec
        self.cursor = resume or Cursor(spec.since, None, 0)
        self.items: queue.Queue = queue.Queue(maxsize=64)
        self.stop = threading.Event()
        self.done = False
        self.idle = False
        self.thread = threading.Thread(target=self._read, args=(self.cursor, timeout), daemon=True,
                                       name=f"read-{spec.name}")  # fmt: skip
        self.thread.start()

    def _read(self, cursor: Cursor, timeout: float) -> None:
        session = requests.Session()
        session.trust_env = False
        session.headers.update(self.spec.headers)
        backoff = 0.5
        while not self.stop.is_set():
            params = {**self.spec.params, **({"since": cursor.since} if cursor.since else {})}
            try:
                lines = 0
                with session.get(self.spec.url, params=params, stream=True, timeout=(5, timeout)) as response:
                    if 400 <= response.status_code < 500:
                        detail = response.text[:300]
                        self._put(RuntimeError(f"{self.spec.url} answered {response.status_code}: {detail}"))
                        return
                    response.raise_for_status()
                    for after, batch in self._batches(response.iter_content(chunk_size=None), cursor):
                        cursor = after
                        lines += len(batch)
                        self._put((batch, cursor))
                        if self.stop.is_set():
                            return
                backoff = 0.5
                if self.spec.finite and lines == 0:
                    self._put(StopIteration())
                    return
            except (requests.RequestException, OSError) as exc:
                time.sleep(backoff)  # the API is down or restarting: try again, from the cursor
                backoff = min(backoff * 2, 10.0)
                print(f"stream {self.spec.name}: {type(exc).__name__}, reconnecting from {cursor.since}", flush=True)

    def _batches(self, chunks: Iterator[bytes], cursor: Cursor) -> Iterator[tuple[Cursor, list]]:
        """(cursor after the batch, the batch) for the whole lines of each piece the network delivers.

        A piece at a time, not a fixed count: on a live stream the next line may be minutes away.
        The cursor advanced on local names, a ts decoded only when its bytes change: this runs once
        a line, on the job's CPU (2.5 us a line before, 1.3 after). tests/test_stream_records.py
        holds the plain line-at-a-time reading it is checked against."""
        skip, skipping_ts = cursor.n, cursor.instant
        since, instant, n = cursor
        name, match = self.spec.name, TS_PREFIX.match
        raw_ts, ts = None, None  # the last ts's bytes and text
        pending = b""
        for chunk in chunks:
            *lines, pending = (pending + chunk).split(b"\n")
            batch, received = [], time.time()
            for line in lines:
                m = match(line)
                if m is None:
                    if not line.strip():
                        continue
                    raw_ts, ts = None, None
                elif m.group(1) != raw_ts:
                    raw_ts = m.group(1)
                    ts = raw_ts.decode()
                if skip:
                    if ts is not None and ts != skipping_ts:
                        skip = 0  # not the instant we were in: nothing more to skip
                    else:
                        skip -= 1
                        continue
                if ts is None or ts == instant:  # a line without a readable ts counts in its instant
                    n += 1
                else:
                    since, instant, n = (instant if instant is not None else since), ts, 1
                batch.append((name, f"{instant}#{n}", line, received))  # the line's position
            if batch:
                yield Cursor(since, instant, n), batch

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def next_batch(self) -> list:
        if self.done:
            raise StopIteration
        out = []
        while len(out) < BATCH:
            try:
                item = self.items.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, StopIteration):
                self.done = True
                break
            if isinstance(item, Exception):
                raise item
            batch, self.cursor = item
            out += batch
        self.idle = not out
        if out:
            FirstRead.mark()
        return out

    def next_awake(self) -> dt.datetime | None:
        return dt.datetime.now(dt.UTC) + IDLE if self.idle else None

    def snapshot(self) -> Cursor:
        return self.cursor

    def close(self) -> None:
        self.stop.set()


class FilePartition(StatefulSourcePartition):
    """Lines of an NDJSON file (a captured stream), from a byte offset; the end of the file ends it."""

    def __init__(self, name: str, path: str, offset: int) -> None:
        self.name = name
        self.file = open(path, "rb")  # noqa: SIM115 - open for the partition's life
        self.file.seek(offset)
        self.offset = offset

    def next_batch(self) -> list:
        out, received = [], time.time()
        for _ in range(BATCH):
            start = self.offset
            line = self.file.readline()
            if not line:
                break
            self.offset += len(line)
            if line.strip():
                out.append((self.name, str(start), line.rstrip(b"\r\n"), received))
        if not out:
            raise StopIteration
        FirstRead.mark()
        return out

    def snapshot(self) -> int:
        return self.offset

    def close(self) -> None:
        self.file.close()


class StreamSource(FixedPartitionedSource):
    """One partition per configured source; every worker can read every one (the engine picks who does)."""

    def __init__(self, http: list[HttpSpec], files: dict[str, str]) -> None:
        self.http = {s.name: s for s in http}
        self.files = files

    def list_parts(self) -> list[str]:
        return [*self.http, *self.files]

    def build_part(self, step_id: str, for_part: str, resume_state):
        if for_part in self.http:
            return HttpPartition(self.http[for_part], resume_state)
        return FilePartition(for_part, self.files[for_part], resume_state or 0)
