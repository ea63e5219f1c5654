"""Video analyses off the caller's thread, one per (file content, model, detector, sampling), for the
app: a page rerun or a second browser tab finds the job running or done instead of starting it
again, and a finished analysis is found again on disk (cached by the file's hash).

    job = VIDEO_JOBS.start(data, "talk.mp4", run_id, detector_name, options, load_classifier)
    job.state, job.done, job.total, job.fps      # while it runs; job.cancel() ends it early
    job.result / job.error                        # once it has ended

Each job keeps its files in `<cache>/videos/<key>/`: the source, annotated.mp4, frames.csv and
summary.json. A failed job leaves nothing; at most `keep` analyses stay on disk (oldest out first).
No TensorFlow or Streamlit here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fer_core.errors import FerError
from fer_core.inference.video import VideoOptions, VideoOutputs, analyse_video
from fer_core.paths import cache_dir


@dataclass
class VideoJob:
    key: str
    name: str
    folder: Path
    state: str = "running"  # running | done | cancelled | failed
    done: int = 0
    total: int = 0
    fps: float = 0.0
    error: str | None = None
    summary: dict[str, Any] | None = None  # the result's summary (also summary.json)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def video(self) -> Path:
        return self.folder / "annotated.mp4"

    @property
    def csv(self) -> Path:
        return self.folder / "frames.csv"

    @property
    def summary_path(self) -> Path:
        return self.folder / "summary.json"

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    def cancel(self) -> None:
        self._cancel.set()


def job_key(data_hash: str, run_id: str, detector: str, options: VideoOptions) -> str:
    settings = json.dumps([run_id, detector, asdict(options)], sort_keys=True)
    return f"{data_hash[:20]}-{hashlib.sha256(settings.encode()).hexdigest()[:10]}"


def file_hash(data: bytes | Path) -> str:
    h = hashlib.sha256()
    if isinstance(data, Path):
        with open(data, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    else:
        h.update(data)
    return h.hexdigest()


class VideoJobs:
    """The process's video analyses (thread-safe)."""

    def __init__(self, root: Path | None = None, keep: int = 6):
        self._root = root
        self.keep = keep
        self._jobs: dict[str, VideoJob] = {}
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root or cache_dir() / "videos"

    def get(self, key: str) -> VideoJob | None:
        with self._lock:
            job = self._jobs.get(key)
        return job or self._from_disk(key)

    def start(self, data: bytes | Path, name: str, run_id: str, detector: str, options: VideoOptions,
              make_pipeline_parts: Callable[[], tuple[Any, Any]]) -> VideoJob:
        """The job for this file and these settings: the running or finished one, or a new one.
        `make_pipeline_parts() -> (classifier, detector)` is called in the job's thread."""
        key = job_key(file_hash(data), run_id, detector, options)
        with self._lock:
            job = self._jobs.get(key) or self._from_disk(key)
            if job is not None and job.state in ("running", "done"):
                self._jobs[key] = job
                return job
            folder = self.root / key
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            source = folder / ("source" + (Path(name).suffix.lower() or ".mp4"))
            if isinstance(data, Path):
                shutil.copyfile(data, source)
            else:
                source.write_bytes(data)
            job = VideoJob(key, name, folder)
            self._jobs[key] = job
        threading.Thread(target=self._run, args=(job, source, options, make_pipeline_parts),
                         name=f"video-{key}", daemon=True).start()
        self._prune(keep_key=key)
        return job

    def _run(self, job: VideoJob, source: Path, options: VideoOptions, parts: Callable[[], tuple[Any, Any]]) -> None:
        def progress(done: int, total: int, fps: float) -> None:
            job.done, job.total, job.fps = done, total, fps

        try:
            classifier, detector = parts()
            result = analyse_video(source, classifier, detector,
                                   VideoOutputs(csv=job.csv, summary=job.summary_path, video=job.video),
                                   options, progress=progress, cancel=job._cancel)
            job.summary = {**result.summary(), "name": job.name}
            job.summary_path.write_text(json.dumps(job.summary, indent=2), encoding="utf-8")
            job.state = "cancelled" if result.stopped else "done"
            if result.stopped:  # a cancelled analysis is not the file's result: not found again on disk
                job.summary_path.unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - the page shows it; the folder goes
            job.error = str(exc) if isinstance(exc, FerError) else f"{type(exc).__name__}: {exc}"
            job.state = "failed"
            shutil.rmtree(job.folder, ignore_errors=True)
        finally:
            source.unlink(missing_ok=True)  # the results stay; the upload's copy is not needed any more

    def _from_disk(self, key: str) -> VideoJob | None:
        folder = self.root / key
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (folder / "frames.csv").is_file():
            return None
        frames = int(summary.get("frames_read") or 0)
        return VideoJob(key, str(summary.get("name") or key), folder, state="done", done=frames,
                        total=frames, fps=float(summary.get("frames_per_second") or 0), summary=summary)

    def _prune(self, keep_key: str) -> None:
        try:
            folders = sorted((p for p in self.root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        with self._lock:
            running = {k for k, j in self._jobs.items() if j.state == "running"} | {keep_key}
            for old in folders[: max(0, len(folders) - self.keep)]:
                if old.name not in running:
                    shutil.rmtree(old, ignore_errors=True)
                    self._jobs.pop(old.name, None)


VIDEO_JOBS = VideoJobs()  # the app server's analyses (one process, every session)
