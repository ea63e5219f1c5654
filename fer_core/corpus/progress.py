"""Where a corpus job stands while it runs: files, faces, failures, rates and time left."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    total: int  # files in the job
    done: int = 0  # files finished (in earlier runs of the job too)
    faces: int = 0  # face rows written in this run
    failed: int = 0  # files that could not be read
    started: float = field(default_factory=time.monotonic)
    done_at_start: int = 0  # finished before this run (--resume)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def files_per_s(self) -> float:
        return (self.done - self.done_at_start) / self.elapsed

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.elapsed

    @property
    def eta_s(self) -> float | None:
        rate = self.files_per_s
        return (self.total - self.done) / rate if rate > 0 else None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    def line(self) -> str:
        """One line for a log: 'files 120/2,110 (5%) · 31.2 files/s · 75.0 faces/s · 64 s left'."""
        eta = self.eta_s
        return (f"files {self.done:,}/{self.total:,} ({100 * self.fraction:.0f}%) · {self.files_per_s:.1f} files/s · "
                f"{self.faces_per_s:.1f} faces/s · {self.failed:,} failed"
                + (f" · {eta:.0f} s left" if eta is not None else ""))


class Tracker:
    """Counts rows as engines write them and calls `report(progress)` at most every `every` seconds."""

    def __init__(self, progress: Progress, report: Callable[[Progress], None] | None = None, every: float = 0.5):
        self.progress = progress
        self.report = report
        self.every = every
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        items: set[int] = set()
        with self._lock:
            for r in rows:
                items.add(int(r["item"]))
                if r["status"] == "face":
                    self.progress.faces += 1
                elif r["status"] == "error":
                    self.progress.failed += 1
            self.progress.done += len(items)
        self.tick()

    def add_counts(self, files: int, faces: int, failed: int) -> None:
        with self._lock:
            self.progress.done += files
            self.progress.faces += faces
            self.progress.failed += failed
        self.tick()

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.report is not None and (force or now - self._last >= self.every):
            self._last = now
            self.report(self.progress)
