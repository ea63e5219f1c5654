"""A corpus job from start to finish: `run_batch(srcs, out, ...)`, and `--resume` of one cut short.

    manifest = run_batch(["photos/", "interviews.zip"], "labels/", engine="local")
    manifest["counts"]   # files done / failed / no face, faces, rows
    pd.read_parquet("labels/rows")

A new job freezes its inputs and settings in OUT (fer_core.corpus.output); a resumed one takes
them from there and does only the items with no rows yet. The model is the one the job started
with: a resume with another model, other sources or settings is refused (a new OUT is the way).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fer_core.corpus.inputs import freeze_inputs, read_items
from fer_core.corpus.output import LOCK_FILE, JobFolder
from fer_core.corpus.progress import Progress, Tracker
from fer_core.errors import FerError
from fer_core.store.atomic import now_iso

ENGINES = ("local", "ray")
FORMAT = 1


@dataclass(frozen=True)
class BatchSettings:
    """What decides the rows (a resume must keep them)."""

    detector: str = "auto"
    max_fps: float | None = 2.0  # video frames analysed per second of video (None: every frame)
    whole_image: bool = False  # a photo with no face found is classified as a whole
    shard_size: int = 256  # photos per shard (a video is a shard of its own)

    def check(self) -> None:
        if self.max_fps is not None and not self.max_fps > 0:
            raise FerError("--max-fps must be more than 0")
        if self.shard_size < 1:
            raise FerError("--shard-size must be 1 or more")


def _new_manifest(srcs: Sequence[str], run: Any, settings: BatchSettings, counts: dict[str, int]) -> dict[str, Any]:
    meta = run.meta or {}
    return {"format": FORMAT, "state": "running", "created": now_iso(),
            "sources": [str(s) for s in srcs],
            "model": {"run_id": run.run_id, "name": meta.get("name") or run.run_id,
                      "labels": list(meta.get("labels") or []), "probability_columns": "FER_LABELS order",
                      "architecture": meta.get("architecture")},
            "settings": asdict(settings), "inputs": counts, "counts": {}, "runs": []}


def open_job(out: str | Path, srcs: Sequence[str], run_id: str | None, settings: BatchSettings, resume: bool,
             store: Any = None) -> tuple[JobFolder, dict[str, Any]]:
    """The job folder and its manifest: a new job (inputs frozen), or the one to resume."""
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore

    folder = JobFolder(out)
    store = store or ModelStore()
    if folder.exists():
        if not resume:
            raise FerError(f"{folder.root} already holds a corpus job: add --resume to finish it, or choose "
                           "another --out")
        manifest = folder.read_manifest()
        if srcs and [str(s) for s in srcs] != manifest.get("sources"):
            raise FerError(f"{folder.root} is a job over {manifest.get('sources')}; resume it without SRC "
                           "(or with the same ones), or choose another --out for other sources")
        if run_id and resolve_run(store, run_id).run_id != manifest["model"]["run_id"]:
            raise FerError(f"{folder.root} was started with the model {manifest['model']['run_id']}; a resume "
                           "keeps it (rows of two models would not compare); choose another --out")
        if not folder.inputs.is_file():
            raise FerError(f"{folder.root}: inputs.parquet is missing, the job cannot be resumed")
        return folder, manifest
    if resume:
        raise FerError(f"{folder.root} holds no corpus job to resume")
    if not srcs:
        raise FerError("name at least one folder, zip, glob, list file, photo or video to label")
    if folder.root.exists() and any(p.name != LOCK_FILE for p in folder.root.iterdir()):
        raise FerError(f"{folder.root} is not empty; a corpus job writes into an empty or new folder")
    settings.check()
    run = resolve_run(store, run_id)
    folder.root.mkdir(parents=True, exist_ok=True)
    counts = freeze_inputs(srcs, folder.inputs)
    manifest = _new_manifest(srcs, run, settings, counts)
    folder.write_manifest(manifest)
    return folder, manifest


def run_batch(
    srcs: Sequence[str],
    out: str | Path,
    *,
    run_id: str | None = None,
    settings: BatchSettings | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int = 0,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    classifier: Any = None,
    store: Any = None,
) -> dict[str, Any]:
    """Run (or resume) a corpus job; the final manifest. `classifier`: an already loaded classifier
    of the job's model (the app's cache), else it is loaded here (local engine) or in each Ray worker."""
    if engine not in ENGINES:
        raise FerError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    folder = JobFolder(out)
    with folder.lock():
        return _run(folder, srcs, run_id, settings, engine, address, workers, resume, progress, cancel, classifier,
                    store)


def _run(folder: JobFolder, srcs: Sequence[str], run_id: str | None, settings: BatchSettings | None, engine: str,
         address: str | None, workers: int, resume: bool, progress: Callable[[Progress], None] | None,
         cancel: threading.Event | None, classifier: Any, store: Any) -> dict[str, Any]:
    folder, manifest = open_job(folder.root, srcs, run_id, settings or BatchSettings(), resume, store)
    settings = BatchSettings(**manifest["settings"])
    total = int(manifest["inputs"]["files"])
    done = folder.scan_done(total)
    folder.sources.unlink(missing_ok=True)  # an earlier run's summary no longer describes the rows
    tracker = Tracker(Progress(total, done=int(done.sum()), done_at_start=int(done.sum())), progress)
    model_id = manifest["model"]["run_id"]
    started, began = time.monotonic(), now_iso()
    manifest.update(state="running", engine=engine)
    folder.write_manifest(manifest)
    stopped: str | None = "failed"
    try:
        items = read_items(folder.inputs, done)
        if done.all():
            stopped = None  # nothing left: a resume of a finished job changes nothing
        elif engine == "local":
            from fer_core.corpus.local import LocalEngine

            if classifier is None:
                classifier = _load_classifier(model_id, store)
            stopped = LocalEngine(classifier, model_id, settings.detector, settings.whole_image, settings.max_fps,
                                  settings.shard_size, workers).run(folder, items, tracker, cancel)
        else:
            from fer_core.corpus.ray_engine import RayEngine

            stopped = RayEngine(model_id, settings, address=address, workers=workers,
                                models_dir=str(_store_root(store))).run(folder, done, tracker, cancel)
    finally:
        counts = folder.summarise()
        tracker.tick(force=True)
        complete = counts["done"] >= total
        manifest.update(state="done" if complete else (stopped or "stopped"), counts=counts, finished=now_iso())
        manifest["runs"].append({"engine": engine, "address": address, "started": began,
                                 "seconds": round(time.monotonic() - started, 2),
                                 "files": int(counts["done"] - tracker.progress.done_at_start),
                                 "stopped": None if complete else (stopped or "stopped")})
        folder.write_manifest(manifest)
    return manifest


def _store_root(store: Any) -> Path:
    from fer_core.store.runs import ModelStore

    return (store or ModelStore()).root


def _load_classifier(run_id: str, store: Any) -> Any:
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.store.runs import ModelStore

    return EmotionClassifier.from_store(store or ModelStore(), run_id, warm_up_to=1)
