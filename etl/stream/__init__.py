"""The streaming job: `python -m etl stream` (docs/streaming.md).

    source (API stream, replay, NDJSON file)  ->  deserialise  ->  key by sensor
      ->  per-key step: impute, scale, score, threshold  ->  alerts, dead letters, counts

`step.py` holds the per-key step as a plain function over serialisable state; `detectors.py`
the detector protocol it calls; `records.py` the deserialiser; `source.py` and `sinks.py` the
engine's connectors; `flow.py` the Bytewax dataflow, a thin adapter over the rest.
"""

import gc

# Python's default first threshold (700 allocations) ran a collection every third of a batch of
# readings; the batch's objects then survived into the oldest generation, whose full collections
# walked every module and tree object of the process: 0.25 of a SKAB run's 1.4 CPU s.
GC_THRESHOLDS = (10_000, 10, 10)


def settle_collector() -> None:
    """Once start-up is done: what exists now (modules, the detector's library) is never walked by
    the collector again (gc.freeze), and it runs on fewer, larger generations (GC_THRESHOLDS).
    bench/stream_bench.py measures the detector alone under the same settings."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
