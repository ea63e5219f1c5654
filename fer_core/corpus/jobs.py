"""Corpus jobs off the caller's thread, for the app: a page rerun, a reload or a second tab finds
the job running (or finished, on disk) instead of starting it again; Cancel keeps what is done and
Resume finishes it.

    job = CORPUS_JOBS.start(["/data/photos"], run_id, engine="local", settings=BatchSettings())
    job.state, job.progress            # while it runs; job.cancel() stops it
    job.manifest / job.error           # once it has ended

Each job is a folder under `<cache>/corpus/jobs/` (fer_core.corpus.output). One job runs at a time
per server (each uses every core). No Streamlit here.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_core.corpus.job import BatchSettings, run_batch
from fer_core.corpus.output import JobFolder
from fer_core.corpus.progress import Progress
from fer_core.errors import FerError
from fer_core.paths import cache_dir


@dataclass
class CorpusJob:
    key: str
    folder: JobFolder
    state: str = "running"  # running | done | cancelled | interrupted | failed | stopped
    progress: Progress | None = None
    error: str | None = None
    manifest: dict[str, Any] | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def finished(self) -> bool:
        return self.state != "running"


class CorpusJobs:
    """The app server's corpus jobs (thread-safe)."""

    def __init__(self, root: Path | None = None):
        self._root = root
        self._jobs: dict[str, CorpusJob] = {}
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self._root or cache_dir() / "corpus"

    def running(self) -> CorpusJob | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.state == "running"), None)

    def get(self, key: str) -> CorpusJob | None:
        with self._lock:
            job = self._jobs.get(key)
        if job is not None:
            return job
        folder = JobFolder(self.root / "jobs" / key)
        if not key or "/" in key or not folder.exists():
            return None
        try:
            manifest = folder.read_manifest()
        except FerError as exc:
            return CorpusJob(key, folder, state="failed", error=str(exc))
        state = manifest.get("state", "stopped")
        return CorpusJob(key, folder, state="stopped" if state == "running" else state, manifest=manifest)

    def recent(self, limit: int = 20) -> list[CorpusJob]:
        """Jobs on disk, newest first."""
        base = self.root / "jobs"
        if not base.is_dir():
            return []
        keys = sorted((p.name for p in base.iterdir() if (p / "manifest.json").is_file()), reverse=True)
        return [j for k in keys[:limit] if (j := self.get(k)) is not None]

    def save_upload(self, data: bytes, name: str) -> Path:
        """An uploaded zip kept under the cache (by content), so the job can read it as a file."""
        folder = self.root / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}-{Path(name).name or 'upload.zip'}"
        if not path.is_file():
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    def start(self, srcs: list[str], run_id: str | None, *, engine: str = "local",
              settings: BatchSettings | None = None, classifier: Callable[[], Any] | None = None,
              resume_key: str | None = None) -> CorpusJob:
        """A new job over `srcs`, or (`resume_key`) the rest of a stopped one. `classifier()` gives
        the loaded classifier of the job's model for the local engine (called in the job's thread)."""
        with self._lock:
            busy = next((j for j in self._jobs.values() if j.state == "running"), None)
            if busy is not None:
                raise FerError(f"the job {busy.key} is running; wait for it or cancel it first")
            key = resume_key or self._new_key(srcs)
            job = CorpusJob(key, JobFolder(self.root / "jobs" / key))
            self._jobs[key] = job
        threading.Thread(target=self._run, args=(job, srcs, run_id, engine, settings, classifier, bool(resume_key)),
                         name=f"corpus-{key}", daemon=True).start()
        return job

    def _new_key(self, srcs: list[str]) -> str:
        base = time.strftime("%Y%m%d-%H%M%S") + f"-{hashlib.sha256(repr(srcs).encode()).hexdigest()[:6]}"
        key, n = base, 2
        while key in self._jobs or (self.root / "jobs" / key).exists():
            key, n = f"{base}-{n}", n + 1
        return key

    def _run(self, job: CorpusJob, srcs: list[str], run_id: str | None, engine: str, settings: BatchSettings | None,
             classifier: Callable[[], Any] | None, resume: bool) -> None:
        def report(p: Progress) -> None:
            job.progress = p

        try:
            loaded = classifier() if classifier is not None and engine == "local" else None
            job.manifest = run_batch([] if resume else srcs, job.folder.root, run_id=None if resume else run_id,
                                     settings=settings, engine=engine, resume=resume, progress=report,
                                     cancel=job._cancel, classifier=loaded)
            job.state = job.manifest["state"] if job.manifest["state"] != "running" else "stopped"
        except Exception as exc:  # noqa: BLE001 - the page shows it; what was written stays
            job.error = str(exc) if isinstance(exc, FerError) else f"{type(exc).__name__}: {exc}"
            job.state = "failed"
            if job.folder.exists():
                try:
                    job.manifest = job.folder.read_manifest()
                except FerError:
                    pass


CORPUS_JOBS = CorpusJobs()  # the app server's jobs (one process, every session)
