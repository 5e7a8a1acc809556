"""A one-line progress bar on a terminal; silent anywhere else (logs, Airflow, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.width = width
        self.label, self.total, self.began = "", 1, 0.0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.began = label, max(1, total), time.monotonic()
        self.update(0, 0)

    def update(self, done: int, rows: int) -> None:
        if not self.enabled:
            return
        filled = int(self.width * done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.monotonic() - self.began
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} pages, {rows:,} rows, {elapsed:.0f} s")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
