"""The Bytewax dataflow: a thin adapter that wires the source, the deserialiser, the per-key step and the sinks.

    read -> deserialise and key by sensor -> step (stateful, per key) -> lake sink

Deserialising works a batch at a time and a bad record travels as a dead-letter row under its
source's key, passed through by the step: each hop between operators costs per item, and fewer
hops left more of the CPU to the detector (bench/stream_bench.py).

Keys are spread over the workers by the engine (a key's state lives on one worker at a time);
the sink's partitions are fixed, so the files an alert lands in do not depend on how many
workers ran.
"""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from etl.stream.records import Shape, parse
from etl.stream.sinks import LakeSink, SinkConfig
from etl.stream.source import HttpSpec, StreamSource
from etl.stream.step import Reading, StepParams, dead_row, step


@dataclass(frozen=True)
class JobConfig:
    http: tuple[HttpSpec, ...]
    files: dict[str, str]
    shapes: dict[str, Shape]  # per source name
    params: dict[str, StepParams]  # per source name
    sink: SinkConfig
    memory_budget_mb: int = 1024  # ETL_MEMORY_BUDGET_MB: bounds the keys with state in this process


BASE_MB = 320  # a job's own peak with few keys: interpreter, pyarrow, river, Bytewax (bench/stream_bench.py)


class KeyBudget:
    """The keys that hold state in this process, at most as many as the memory budget fits.

    A key's state is the detector's (HalfSpaceTrees: 4.4 MiB; motion: 11 KiB) and the step's; the
    job must keep ETL_MEMORY_BUDGET_MB whatever the number of keys, so a key beyond the budget is
    refused: its readings become dead letters with the reason (counted, never silently dropped)."""

    def __init__(self, budget_mb: int, key_kib: int) -> None:
        self.max_keys = max(1, (budget_mb - BASE_MB) * 1024 // max(1, key_kib))
        self.budget_mb = budget_mb
        self.keys: set[str] = set()
        self.lock = threading.Lock()  # the workers of a process are threads

    def admit(self, key: str, restored: bool) -> bool:
        with self.lock:
            if key in self.keys or restored or len(self.keys) < self.max_keys:
                self.keys.add(key)  # a key restored from a snapshot held state already: kept
                return True
            return False

    def refusal(self) -> str:
        return (f"over the memory budget: {self.max_keys} keys with state fill ETL_MEMORY_BUDGET_MB="
                f"{self.budget_mb} in this process")  # fmt: skip


class KeyLogic(StatefulBatchLogic):
    """One key's state in the engine: `step` over each reading of a batch; the snapshot is a pickle.

    Bytewax's own stateful_map snapshots with copy.deepcopy, which took 90 % of the job's CPU on
    HalfSpaceTrees' trees; pickled bytes are immutable, as a snapshot must be, and ~50x cheaper
    (and HalfSpaceTrees pickles only its masses: etl/stream/detectors.py).

    The scores of a batch leave as one ("scores", [row, ...]) item, not one item per reading:
    every item costs the engine a hop to the sink, and a reading's score is the bulk of them."""

    def __init__(self, params: dict[str, StepParams], resume: bytes | None, budget: KeyBudget) -> None:
        self.params = params
        self.state = pickle.loads(resume) if resume is not None else None
        self.budget, self.admitted = budget, False

    def on_batch(self, values: list) -> tuple[list, bool]:
        if not self.admitted:
            key = next((r.sensor for r in values if isinstance(r, Reading)), None)
            if key is not None and not self.budget.admit(key, self.state is not None):
                return [("dead", refused(r, self.budget.refusal())) for r in values], StatefulBatchLogic.DISCARD
            self.admitted = key is not None
        out, scores = [], []
        state = self.state
        for r in values:
            if isinstance(r, Reading):
                state, emitted = step(state, r, self.params[r.source])
                kind, row = emitted[0]
                if kind == "score":
                    scores.append(row)
                    if len(emitted) > 1:
                        out += emitted[1:]
                else:  # time going backwards: a dead letter only
                    out += emitted
            else:  # a dead letter from the deserialiser: passed on, the state untouched
                out.append(("dead", r))
        self.state = state
        if scores:
            out.append(("scores", scores))
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


def refused(r: Reading | dict, reason: str) -> dict:
    if not isinstance(r, Reading):
        return r  # already a dead letter
    return dead_row(r.source, r.pos, r.ts, r.sensor, reason, repr(r.values), r.ts_us)


def build(config: JobConfig) -> Dataflow:
    shapes, params = config.shapes, config.params
    flow = Dataflow("sensor_stream")
    raw = op.input("read", flow, StreamSource(list(config.http), config.files))

    def deserialise(items: list) -> list[tuple[str, Reading | dict]]:
        out = []
        for source, pos, line, received in items:
            r = parse(source, pos, line, received, shapes[source])
            out.append((r.sensor, r) if isinstance(r, Reading) else (source, r))
        return out

    keyed = op.flat_map_batch("deserialise", raw, deserialise)
    key_kib = max(p.detector.key_kib for p in params.values()) if params else 1
    budget = KeyBudget(config.memory_budget_mb, key_kib)
    emitted = op.stateful_batch("step", keyed, lambda resume: KeyLogic(params, resume, budget))
    op.output("lake", emitted, LakeSink(config.sink))
    return flow
