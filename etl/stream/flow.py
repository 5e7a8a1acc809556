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
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from etl.stream.records import Shape, parse
from etl.stream.sinks import LakeSink, SinkConfig
from etl.stream.source import HttpSpec, StreamSource
from etl.stream.step import Reading, StepParams, step


@dataclass(frozen=True)
class JobConfig:
    http: tuple[HttpSpec, ...]
    files: dict[str, str]
    shapes: dict[str, Shape]  # per source name
    params: dict[str, StepParams]  # per source name
    sink: SinkConfig


class KeyLogic(StatefulBatchLogic):
    """One key's state in the engine: `step` over each reading of a batch; the snapshot is a pickle.

    Bytewax's own stateful_map snapshots with copy.deepcopy, which took 90 % of the job's CPU on
    HalfSpaceTrees' trees; pickled bytes are immutable, as a snapshot must be, and ~50x cheaper
    (and HalfSpaceTrees pickles only its masses: etl/stream/detectors.py).

    The scores of a batch leave as one ("scores", [row, ...]) item, not one item per reading:
    every item costs the engine a hop to the sink, and a reading's score is the bulk of them."""

    def __init__(self, params: dict[str, StepParams], resume: bytes | None) -> None:
        self.params = params
        self.state = pickle.loads(resume) if resume is not None else None

    def on_batch(self, values: list) -> tuple[list, bool]:
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
    emitted = op.stateful_batch("step", keyed, lambda resume: KeyLogic(params, resume))
    op.output("lake", emitted, LakeSink(config.sink))
    return flow
