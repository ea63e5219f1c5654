"""The local engine (the default): every core busy, memory flat, nothing extra to install.

A small pool of worker processes reads photos and finds their faces (decoding and YuNet are
about 60% of the work; one OpenMP thread each), a few photos a task, with a bounded number of
tasks in flight; this process classifies the faces of many photos in one call as their results
come back (in order), and writes a shard every `shard_size` items. A video runs here through
the video engine while the pool works on the photos already queued. At most
`workers x in_flight x chunk` photos are decoded or waiting at any time, whatever the corpus size.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from fer_core.corpus.inputs import Item
from fer_core.corpus.output import JobFolder
from fer_core.corpus.progress import Tracker
from fer_core.corpus.work import classified_rows, find_in_items, init_detect_worker, video_item_rows

CHUNK = 8  # photos per worker task
IN_FLIGHT = 3  # tasks queued per worker
CLASSIFY_AT = 96  # faces gathered before one classifier call


@dataclass(frozen=True)
class LocalEngine:
    classifier: Any  # EmotionClassifier (or anything with predict_proba)
    model: str  # the run id written in every row
    detector: str = "auto"
    whole_image: bool = False
    max_fps: float | None = None
    shard_size: int = 256
    workers: int = 0  # detection processes; 0: one per core

    def run(self, folder: JobFolder, items: Iterable[Item], tracker: Tracker,
            cancel: threading.Event | None = None) -> str | None:
        """Process the items; None when all are done, "cancelled" / "interrupted" when stopped early
        (every item classified by then is written; the rest is left for --resume)."""
        workers = self.workers or os.cpu_count() or 1
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs TensorFlow
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_detect_worker)
        writer = _ShardWriter(self, folder, tracker)
        pending: deque[tuple[list[Item], Future]] = deque()
        chunk: list[Item] = []

        def submit(batch: list[Item]) -> None:
            future: Future = Future()
            try:
                future = pool.submit(find_in_items, batch, self.detector, self.whole_image)
            except BrokenProcessPool:  # workers could not start or died: this process does it
                future.set_result(None)
            pending.append((batch, future))

        def drain_one() -> None:
            batch, future = pending.popleft()
            try:
                found = future.result()
            except BrokenProcessPool:  # a worker died (a crash in a native library): do it here
                found = None
            writer.add_photos(batch, found or find_in_items(batch, self.detector, self.whole_image))

        stopped: str | None = None
        try:
            for item in items:
                if cancel is not None and cancel.is_set():
                    stopped = "cancelled"
                    break
                if item.kind == "video":
                    writer.add_video(item)
                    continue
                chunk.append(item)
                if len(chunk) >= CHUNK:
                    submit(chunk)
                    chunk = []
                while len(pending) >= workers * IN_FLIGHT:
                    drain_one()
            if stopped is None:
                if chunk:
                    submit(chunk)
                while pending:
                    drain_one()
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            pool.shutdown(wait=stopped is None, cancel_futures=True)
            writer.close()  # the items classified so far: whole items, one last shard
        return stopped


class _ShardWriter:
    """Gathers found faces, classifies them in large batches, writes shards of whole items."""

    def __init__(self, engine: LocalEngine, folder: JobFolder, tracker: Tracker):
        self.engine, self.folder, self.tracker = engine, folder, tracker
        self.waiting: list[tuple[Item, Any]] = []
        self.faces_waiting = 0
        self.rows: list[dict[str, Any]] = []
        self.first: int | None = None
        self.items = 0

    def add_photos(self, items: list[Item], found: list[Any]) -> None:
        self.waiting += list(zip(items, found))
        self.faces_waiting += sum(len(f.crops) for f in found)
        if self.faces_waiting >= CLASSIFY_AT or len(self.waiting) >= self.engine.shard_size:
            self._classify()

    def _classify(self) -> None:
        if not self.waiting:
            return
        items = [i for i, _ in self.waiting]
        rows = classified_rows(items, [f for _, f in self.waiting], self.engine.classifier, self.engine.model)
        self.waiting, self.faces_waiting = [], 0
        self.first = items[0].item if self.first is None else self.first
        self.rows += rows
        self.items += len(items)
        self.tracker.add(rows)
        if self.items >= self.engine.shard_size:
            self._write()

    def _write(self) -> None:
        if self.rows and self.first is not None:
            self.folder.write_shard(self.rows, self.first)
        self.rows, self.first, self.items = [], None, 0

    def add_video(self, item: Item) -> None:
        e = self.engine
        rows = video_item_rows(item, e.classifier, e.detector, e.max_fps, e.model)
        self.folder.write_shard(rows, item.item)  # a video is a shard of its own
        self.tracker.add(rows)

    def close(self) -> None:
        self._classify()
        self._write()
