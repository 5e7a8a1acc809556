"""Scoring of anomaly detectors against labelled series (point, event and NAB metrics)."""
