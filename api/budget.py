"""API_MEMORY_BUDGET_MB -> rows per streamed chunk, so that API_MAX_STREAMS answers at once fit.

While a bulk answer streams it holds a few chunks at once: the one its producer builds (with the
grid's temporaries), the two `prefetched` queues, the one being encoded and its bytes. The
process itself holds IDLE_MB and a few KB per door (the doors' keys and sensor schedules). So a
chunk may have (budget - idle) / (API_MAX_STREAMS x the bytes a row costs while it streams) rows,
at most API_CHUNK_ROWS. Chunks are rows, not hours, whatever the fleet's width (the door
simulator splits an hour of a wide fleet by doors). The bytes are the server's peak RSS measured
with API_MAX_STREAMS json answers at once (the largest encoding; bench/api_bench.py
--fleet-factor), rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.fleet import Fleet
from api.settings import Settings

MB = 1 << 20
IDLE_MB = 160  # uvicorn, FastAPI, numpy, pandas and pyarrow with the default fleet, idle (measured 138 MB)
DOOR_BYTES = 3_000  # a door's keys and sensor schedules (measured 2,500 B: a 39,000-door fleet idles at 234 MB)
# A streaming row's share of what a stream holds. Doors: measured 720 B (default fleet) and 580 B (1000x),
# four json answers at once; robots: 580 B measured for one arrow answer, the rest a margin for json.
ROW_BYTES = {"doors": 800, "robots": 1_400}
MIN_CHUNK_ROWS = 1_000  # below this, the per-chunk overheads (an Arrow batch, a queue hand-off) dominate


@dataclass(frozen=True)
class ChunkRows:
    """Rows per streamed chunk of each family's readings."""

    doors: int
    robots: int


def idle_bytes(fleet: Fleet) -> int:
    return IDLE_MB * MB + DOOR_BYTES * sum(s.doors for s in fleet.stores)


def chunk_rows(settings: Settings, fleet: Fleet) -> ChunkRows:
    """The chunk rows that keep API_MAX_STREAMS answers within the budget; a ValueError naming the
    settings when even MIN_CHUNK_ROWS rows a chunk cannot fit."""
    streams = settings.max_streams
    idle = idle_bytes(fleet)
    room = settings.memory_budget_mb * MB - idle
    per_stream = MIN_CHUNK_ROWS * max(ROW_BYTES.values())
    if room < streams * per_stream:
        least = -(-(idle + streams * per_stream) // MB)
        raise ValueError(
            f"API_MEMORY_BUDGET_MB={settings.memory_budget_mb} cannot hold API_MAX_STREAMS={streams} answers: "
            f"this fleet idles at about {idle // MB} MB and each answer needs {per_stream / MB:.1f} MB or more; "
            f"set it to at least {least} or lower API_MAX_STREAMS"
        )
    fit = {family: room // (streams * cost) for family, cost in ROW_BYTES.items()}
    return ChunkRows(doors=min(settings.chunk_rows, fit["doors"]), robots=min(settings.chunk_rows, fit["robots"]))
