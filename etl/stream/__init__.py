"""The streaming job: `python -m etl stream` (docs/streaming.md).

    source (API stream, replay, NDJSON file)  ->  deserialise  ->  key by sensor
      ->  per-key step: impute, scale, score, threshold  ->  alerts, dead letters, counts

`step.py` holds the per-key step as a plain function over serialisable state; `detectors.py`
the detector protocol it calls; `records.py` the deserialiser; `source.py` and `sinks.py` the
engine's connectors; `flow.py` the Bytewax dataflow, a thin adapter over the rest.
"""
