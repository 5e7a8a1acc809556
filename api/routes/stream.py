"""Live streams: readings as NDJSON lines as the simulated clock reaches them, and replays of recorded files.

A stream first sends what exists after `since` (exclusive) up to the clock, then each new
instant when the clock reaches it, sleeping until then (no polling). Every line carries its
`ts`, so a consumer that reconnects with `since=<the last complete instant it holds>` misses
nothing. A stream always ends after a whole instant (all the sensors of that `ts`): at `limit`
lines (rounded up to the end of the instant), at `end`, after `max_seconds`, or when a replay
runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import US, ApiError, Simulation, SimulationDep, ceil_div, parse_time
from api.encode import encode
from api.routes.readings import HOUR_US, door_selection
from api.simulate.replay import Catalogue, Replay, ReplayError, iso
from contract.schemas import DOOR_READINGS, ROBOT_READINGS

router = APIRouter(tags=["stream"])

NDJSON = "application/x-ndjson"
SinceParam = Annotated[
    str | None,
    Query(
        description="Exclusive cursor, ISO 8601: lines with a later ts; default: the clock's now (only new lines)",
        examples=["2024-12-31T23:59:00Z"],
    ),
]
LimitParam = Annotated[
    int | None,
    Query(gt=0, description="End after this many lines, rounded up to the end of their instant", examples=[100]),
]
EndParam = Annotated[
    str | None,
    Query(description="Exclusive end, ISO 8601: the stream ends when it gets there", examples=["2025-01-01T00:00:00Z"]),
]
MaxSecondsParam = Annotated[
    float | None,
    Query(gt=0, description="End after this many wall-clock seconds (at most API_STREAM_MAX_SECONDS)", examples=[60]),
]


@dataclass(frozen=True)
class Bounds:
    """When a stream ends: by line count, by data time, by wall time."""

    limit: int | None
    end_us: int | None
    max_seconds: float


def bounds(sim: Simulation, limit: int | None, end: str | None, max_seconds: float | None) -> Bounds:
    cap = sim.settings.stream_max_seconds
    return Bounds(limit, parse_time(sim, "end", end) if end else None, min(max_seconds or cap, cap))


@dataclass(frozen=True)
class Feed:
    """A simulated data set as a sequence of instants (sample or hour indices)."""

    step_us: int  # time between instants
    whole: bool  # an instant is served once it is over (an hour's count), else once the clock passes it
    render: Callable[[int, int], Iterator[pa.Table]]  # tables of whole instants [i0, i1)
    schema: pa.Schema

    def first(self, since_us: int) -> int:
        return since_us // self.step_us + 1  # the first instant after the cursor

    def available(self, now_us: int) -> int:
        """The first instant not served yet at clock `now_us`."""
        return now_us // self.step_us if self.whole else ceil_div(now_us, self.step_us)

    def due_us(self, i: int) -> int:
        """The clock time at which instant i becomes available."""
        return (i + 1) * self.step_us if self.whole else i * self.step_us + 1


def robot_feed(sim: Simulation, robot_id: str | None) -> Feed:
    if robot_id is not None and sim.fleet.robot(robot_id) is None:
        known = ", ".join(r.id for r in sim.fleet.units)
        raise ApiError(422, f"robot_id: unknown robot {robot_id!r}; known robots: {known}")
    robots = sim.robots.select(robot_id)
    chunk = sim.chunks.robots
    render = lambda i0, i1: sim.robots.reading_chunks(i0, i1, robots, chunk)  # noqa: E731
    return Feed(sim.fleet.robots.sample_seconds * US, False, render, ROBOT_READINGS)


def door_feed(sim: Simulation, store: str | None, sensor_id: int | None) -> Feed:
    selection = door_selection(sim, store, sensor_id)
    chunk = sim.chunks.doors
    render = lambda i0, i1: sim.doors.reading_chunks(i0, i1, selection, chunk)  # noqa: E731
    return Feed(HOUR_US, True, render, DOOR_READINGS)


def whole_instants(table: pa.Table, room: int) -> pa.Table:
    """The first `room` rows of a ts-ordered table, and the rest of the last one's instant."""
    if table.num_rows <= room:
        return table
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    return table.slice(0, int(np.searchsorted(ts, ts[room - 1], side="right")))


async def feed_lines(sim: Simulation, feed: Feed, since_us: int, bounds: Bounds) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bounds.max_seconds
    clock = sim.settings.clock
    frozen = clock.anchor is not None and clock.speed == 1.0
    stop = feed.first(bounds.end_us - 1) if bounds.end_us is not None else None
    i, sent = feed.first(since_us), 0
    while True:
        i1 = feed.available(sim.now_us())
        if stop is not None:
            i1 = min(i1, stop)
        if i < i1:
            for table in await asyncio.to_thread(lambda a=i, b=i1: list(feed.render(a, b))):
                room = None if bounds.limit is None else bounds.limit - sent
                if room is not None:
                    table = whole_instants(table, room)
                if table.num_rows:
                    yield b"".join(encode([table], feed.schema, "ndjson"))
                    sent += table.num_rows
                if bounds.limit is not None and sent >= bounds.limit:
                    return
            i = i1
        if stop is not None and i >= stop:
            return
        left = deadline - loop.time()
        wait = left if frozen else (feed.due_us(i) - sim.now_us()) / US / clock.speed
        if left <= 0:
            return
        await asyncio.sleep(min(max(wait, 0.0), left))
        if loop.time() >= deadline:
            return


class NdjsonStream(StreamingResponse):
    """A streamed NDJSON answer: as the route's response class, the OpenAPI document gives its
    200 this media type, as the answer has (not FastAPI's default application/json)."""

    media_type = NDJSON


def ndjson(body: AsyncIterator[bytes], since: str) -> StreamingResponse:
    return NdjsonStream(body, media_type=NDJSON, headers={"X-Stream-Since": since, "Cache-Control": "no-store"})


def since_of(sim: Simulation, since: str | None) -> int:
    return parse_time(sim, "since", since) if since else sim.now_us()


@router.get(response_class=NdjsonStream, path="/v1/stream/robots", summary="Robot samples as a live NDJSON stream")
async def stream_robots(
    sim: SimulationDep,
    since: SinceParam = None,
    robot_id: Annotated[str | None, Query(description="One robot; all when absent")] = None,
    limit: LimitParam = None,
    end: EndParam = None,
    max_seconds: MaxSecondsParam = None,
) -> StreamingResponse:
    """One line per robot per sample, `ts` ascending; samples after `since` up to the clock, then live."""
    feed, since_us = robot_feed(sim, robot_id), since_of(sim, since)
    return ndjson(feed_lines(sim, feed, since_us, bounds(sim, limit, end, max_seconds)), iso(since_us))


@router.get(response_class=NdjsonStream, path="/v1/stream/doors", summary="Hourly door counts as a live NDJSON stream")
async def stream_doors(
    sim: SimulationDep,
    since: SinceParam = None,
    store: Annotated[str | None, Query(description="One store; all when absent")] = None,
    sensor_id: Annotated[int | None, Query(ge=0, description="0-based door of `store`")] = None,
    limit: LimitParam = None,
    end: EndParam = None,
    max_seconds: MaxSecondsParam = None,
) -> StreamingResponse:
    """One line per door per hour, sent when the hour is complete on the clock."""
    feed, since_us = door_feed(sim, store, sensor_id), since_of(sim, since)
    return ndjson(feed_lines(sim, feed, since_us, bounds(sim, limit, end, max_seconds)), iso(since_us))


# -- replays -------------------------------------------------------------------------------


def catalogue(request: Request) -> Catalogue:
    """The replays of API_REPLAY_PATHS, which create_app scanned."""
    return request.app.state.replays


def get_replay(request: Request, name: str) -> Replay:
    cat = catalogue(request)
    if name not in cat.files:
        known = ", ".join(cat.files) or "none (set API_REPLAY_PATHS)"
        raise ApiError(404, f"name: no replay {name!r}; known replays: {known}")
    try:
        return cat.get(name)
    except ReplayError as exc:
        raise ApiError(422, str(exc)) from exc


REPLAYS_EXAMPLE = [
    {"name": "valve1-0", "format": "skab", "file": "/data/skab/valve1/0.csv", "rows": 1147, "skipped_rows": 0,
     "key": "(the replay's name)", "columns": ["Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure"],
     "start": "2020-03-09T10:14:33Z", "end": "2020-03-09T10:34:00Z"}
]  # fmt: skip


@router.get(
    "/v1/replays",
    summary="Recorded data sets that can be replayed as live streams",
    responses={200: {"content": {"application/json": {"example": REPLAYS_EXAMPLE}}}},
)
def list_replays(request: Request) -> list[dict]:
    """Name, format, file, rows (and rows skipped for an unreadable time), key, columns, time span."""
    cat = catalogue(request)
    return [get_replay(request, name).listing() for name in cat.files]


async def replay_lines(replay: Replay, since_us: int | None, speed: float, bounds: Bounds) -> AsyncIterator[bytes]:
    """The rows after the cursor, each when its time comes on a clock running `speed` times faster.

    The replay's clock starts at its first row served; rows that arrive late in the file (time
    going backwards) are due at once. A cursor skips the file up to its first row after `since`."""
    ts = replay.ts_us
    start = 0 if since_us is None else int(np.argmax(ts > since_us)) if (ts > since_us).any() else len(ts)
    stop = len(ts)
    if bounds.end_us is not None:
        stop = start + int(np.argmax(ts[start:] >= bounds.end_us)) if (ts[start:] >= bounds.end_us).any() else stop
    if start >= stop:
        return
    due = np.maximum.accumulate(ts[start:stop])  # pacing follows the newest time seen so far
    loop = asyncio.get_running_loop()
    began, deadline = loop.time(), loop.time() + bounds.max_seconds
    i, t0 = 0, int(due[0])
    while i < len(due):
        now = t0 + (loop.time() - began) * speed * US
        j = max(i + 1, int(np.searchsorted(due, now, side="right")))
        if bounds.limit is not None:
            j = min(j, i + max(1, bounds.limit - i))
            j = int(np.searchsorted(due, due[j - 1], side="right"))  # finish the instant
        yield b"".join(replay.lines[start + i : start + j])
        i = j
        if (bounds.limit is not None and i >= bounds.limit) or i >= len(due):
            return
        wait = (int(due[i]) - t0) / US / speed - (loop.time() - began)
        left = deadline - loop.time()
        if left <= 0:
            return
        if wait > 0:
            await asyncio.sleep(min(wait, left))
        if loop.time() >= deadline:
            return


@router.get(
    response_class=NdjsonStream,
    path="/v1/stream/replay/{name}",
    summary="A recorded data set replayed as a live NDJSON stream",
)
async def stream_replay(
    request: Request,
    sim: SimulationDep,
    name: Annotated[str, Path(description="A name from GET /v1/replays")],
    speed: Annotated[float, Query(gt=0, description="How many times faster than recorded")] = 1.0,
    since: Annotated[str | None, Query(description="Exclusive cursor, ISO 8601; default: from the start")] = None,
    limit: LimitParam = None,
    end: EndParam = None,
    max_seconds: MaxSecondsParam = None,
) -> StreamingResponse:
    """Lines `{"ts", "sensor", <columns>}` in the file's order, paced by their times at `speed`."""
    replay = get_replay(request, name)
    since_us = parse_time(sim, "since", since) if since else None
    body = replay_lines(replay, since_us, speed, bounds(sim, limit, end, max_seconds))
    return ndjson(body, since or "")
