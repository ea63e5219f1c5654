"""Training jobs that run outside the caller's process: the app side of the worker contract.

`start_training` creates the run (status "starting") and starts `python -m fer_core train --run
RUN_ID` detached; the worker (fer_core.training.worker, which writes the contract out) reads the
settings and the dataset from the run. The page follows the run's meta.json and events.jsonl, so
it stays responsive, a reload reattaches (the running job is found from the store, not from any
session state) and a stop is a file in the run folder. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fer_core.errors import FerError, StoreError, TrainingBusyError
from fer_core.paths import PROJECT_ROOT
from fer_core.store.layout import ACTIVE_STATUSES, RunInfo
from fer_core.store.lock import exclusive_flock
from fer_core.store.records import epochs_of
from fer_core.store.runs import ModelStore
from fer_core.training.config import TrainConfig
from fer_core.training.loop import build_run_meta
from fer_core.training.resuming import resume_check
from fer_core.training.worker import STARTED, start_outcome

JOB_LOG_DIR = ".jobs"
LAUNCH_LOCK_FILE = ".launch.lock"


@dataclass
class JobProgress:
    """A snapshot of one training run, built from its meta.json and events.jsonl."""

    run_id: str
    status: str
    epochs_total: int
    epochs: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None  # unix time of the start event
    ended: float | None = None
    error: str | None = None
    labelling: bool = False  # distillation: the teachers are labelling the training faces (before epoch 1)

    @property
    def epochs_done(self) -> int:
        return len(self.epochs)

    @property
    def fraction(self) -> float:
        return min(1.0, self.epochs_done / self.epochs_total) if self.epochs_total else 0.0

    @property
    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return max(0.0, (self.ended or time.time()) - self.started)

    @property
    def remaining_s(self) -> float | None:
        """Mean epoch time x epochs left (None before the first epoch ends)."""
        if self.status != "running" or not self.epochs:
            return None
        secs = [float(e.get("seconds") or 0.0) for e in self.epochs]
        return sum(secs) / len(secs) * max(0, self.epochs_total - self.epochs_done)

    @property
    def best(self) -> dict[str, Any] | None:
        scored = [e for e in self.epochs if e.get("val_accuracy") is not None]
        return max(scored, key=lambda e: e["val_accuracy"]) if scored else None


def _event_time(event: dict[str, Any]) -> float | None:
    t = event.get("time")
    if isinstance(t, (int, float)):
        return float(t)
    if isinstance(t, str):
        try:
            return datetime.fromisoformat(t).timestamp()
        except ValueError:
            return None
    return None


def progress(store: ModelStore, run_id: str) -> JobProgress:
    """Where a run stands (works while it runs and after it ended, across resumes)."""
    info = store.get(run_id)
    events = store.read_events(run_id)
    params = info.meta.get("params") or {}
    starts = [e for e in events if e.get("event") in ("start", "resume")]
    ends = [e for e in events if e.get("event") == "end"]
    epochs = epochs_of(events)
    started = _event_time(starts[-1]) if starts else None
    if started is not None and starts[-1].get("event") == "resume":
        # Elapsed time counts the epochs before the resume, not the time the run lay stopped.
        done = starts[-1].get("from_epoch") or 0
        started -= sum(float(e.get("seconds") or 0.0) for e in epochs if e.get("epoch", 0) <= done)
    ended = _event_time(ends[-1]) if ends and ends[-1] is events[-1] else None
    if ended is None and info.status != "running":
        ended = info.path.stat().st_mtime if info.path.exists() else None
    return JobProgress(
        run_id=run_id,
        status=info.status,
        epochs_total=int(params.get("epochs") or 0),
        epochs=epochs,
        started=started,
        ended=ended,
        error=info.error,
        labelling=bool(params.get("teachers")) and info.status == "running" and not epochs
        and not any(e.get("event") == "teachers" for e in events),
    )


def running_job(store: ModelStore) -> RunInfo | None:
    """The run that is training (or starting to) now on this store (its process alive), if any."""
    for run in store.list_runs():
        if run.status in ACTIVE_STATUSES:
            return run
    return None


def log_path(store: ModelStore, run_id: str) -> Path:
    return store.root / JOB_LOG_DIR / f"{run_id}.log"


def read_log_tail(store: ModelStore, run_id: str, max_chars: int = 4000) -> str:
    try:
        text = log_path(store, run_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-max_chars:]


@contextlib.contextmanager
def _launch_slot(store: ModelStore) -> Iterator[None]:
    """Held (flock on root/.launch.lock) from the busy check until the new training process holds
    the store's training lock: a second start in that window (another session, another server
    process) is refused at once instead of racing the first one to the lock."""

    def busy(fd: int) -> TrainingBusyError:
        return TrainingBusyError("A training is already running: another session started one a moment ago and it "
                                 "is still starting up. Follow or stop it on the Train page.")

    with exclusive_flock(store.root / LAUNCH_LOCK_FILE, busy):
        yield


def start_training(
    data_source: str,
    config: dict[str, Any],
    store: ModelStore | None = None,
    wait_s: float = 120.0,
) -> str:
    """Create a run for `config` (a TrainConfig dict) on `data_source` and train it in a subprocess.

    Returns the run id once the worker holds the store's training lock and has started the run
    (or already finished a very short one). Raises FerError on bad settings (before anything is
    created), TrainingBusyError when another training holds the store or is being started (by
    another session or process), and FerError with the worker's own message when it fails
    before starting (the run it was given is then deleted).
    """
    store = store or ModelStore()
    settings = TrainConfig.from_settings(dict(config))
    with _launch_slot(store):
        store.check_not_training()
        meta = build_run_meta(settings, {"source": str(data_source)}, status="starting")
        run_id = store.create_run(meta).run_id
        try:
            return _launch(store, run_id, ["--run", run_id], wait_s)
        except BaseException:
            _delete_unstarted(store, run_id)
            raise


def start_resume(data_source: str, run_id: str, store: ModelStore | None = None, wait_s: float = 120.0) -> str:
    """Resume a stopped, failed or killed run in a subprocess (see training.resuming).

    Returns `run_id` once the worker holds the training lock and has marked the run "running";
    TrainingBusyError when another training runs, StoreError / FerError with the reason when the
    run cannot be resumed (finished, no or damaged checkpoint, another dataset).
    """
    store = store or ModelStore()
    with _launch_slot(store):
        store.check_not_training()
        resume_check(store, run_id)
        return _launch(store, run_id, ["--resume", run_id, "--data", str(data_source)], wait_s)


def can_resume(store: ModelStore, run_id: str) -> str | None:
    """None when `run_id` can be resumed now, else why not (for a disabled button's help)."""
    try:
        resume_check(store, run_id)
    except FerError as exc:
        return str(exc)
    return None


def resume_source(store: ModelStore, run_id: str, fallback: str) -> str:
    """The dataset source to resume `run_id` on: the one it was trained on while it is still
    there ("demo", or a path that exists), else `fallback` (resume then checks the fingerprint)."""
    source = ((store.get(run_id).meta or {}).get("dataset") or {}).get("source")
    if isinstance(source, str) and source and (source == "demo" or Path(source).exists()):
        return source
    return fallback


def _launch(store: ModelStore, run_id: str, args: list[str], wait_s: float) -> str:
    """Run `python -m fer_core train ARGS` detached (output to the run's job log) and wait for
    the worker's first word in the run's events: started (return the run id) or start_failed
    (raise its error). A worker that ends without either left its reason in the log only."""
    log = log_path(store, run_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    before = len(store.read_events(run_id))
    cmd = [sys.executable, "-m", "fer_core", "train", *args, "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FER_MODELS_DIR": str(store.root)}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(PROJECT_ROOT), env=env, start_new_session=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        outcome = start_outcome(store.read_events(run_id)[before:])
        if outcome is not None and outcome.get("event") in STARTED:
            return run_id
        if outcome is not None:
            error = str(outcome.get("error") or "the training process gave no reason")
            raise TrainingBusyError(error) if outcome.get("busy") else FerError(f"Training could not start: {error}")
        code = proc.poll()
        if code is not None and start_outcome(store.read_events(run_id)[before:]) is None:
            tail = [ln.strip() for ln in read_log_tail(store, run_id).splitlines() if ln.strip()]
            raise FerError(f"Training could not start: the process ended (exit code {code})"
                           + (f": {tail[-1]}" if tail else "") + f"; see {log}.")
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # too late: the caller gives up on this start
    raise FerError(f"Training did not start within {wait_s:.0f} s; see {log}.")


def _delete_unstarted(store: ModelStore, run_id: str) -> None:
    """The one clean-up of the contract: a run start_training created whose worker never started it."""
    with contextlib.suppress(FerError):
        if not any(e.get("event") in STARTED for e in store.read_events(run_id)):
            store.delete(run_id)


def stop_training(store: ModelStore, run_id: str, force: bool = False) -> None:
    """Ask a run to stop after its current batch (it keeps the best model so far).

    With force, also send SIGTERM to its process (the training treats it as a stop).
    """
    info = store.get(run_id)
    if info.status != "running":
        raise StoreError(f"Run {run_id!r} is not running (status: {info.status}).")
    store.request_stop(run_id)
    pid = info.meta.get("pid")
    if force and isinstance(pid, int):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def wait(store: ModelStore, run_id: str, timeout_s: float = 600.0, poll_s: float = 0.5) -> JobProgress:
    """Block until the run is no longer running (for tests and scripts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        snap = progress(store, run_id)
        if snap.status not in ACTIVE_STATUSES or time.monotonic() > deadline:
            return snap
        time.sleep(poll_s)
