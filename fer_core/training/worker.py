"""The worker side of a training job: `python -m fer_core train --run RUN` (or `--resume RUN`).

The contract between the app side (fer_core.training.jobs) and this worker, in full:

1. `jobs.start_training` validates the settings and creates the run, once: meta.json with status
   "starting", the TrainConfig under "params" and the dataset source under "dataset". (Resume:
   `jobs.start_resume` checks the run with `resuming.resume_check`, the one resume check.)
2. It starts `python -m fer_core train --run RUN_ID` (resume: `--resume RUN_ID --data SOURCE`)
   as a detached process. The worker reads everything else from the run.
3. The worker takes the store's training lock for the run; the loop appends a "start" (or
   "resume") event and sets status "running". From then on the run's meta.json (status, error)
   and events.jsonl ("epoch" ... "end") are the whole story.
4. A worker that fails before step 3 appends one "start_failed" event (error, and `busy` when
   another training holds the store) and marks a "starting" run "failed".
5. `jobs` waits for step 3 or 4 (or for the process to end with neither) and, as the run's
   creator, cleans up once: a new run that never started is deleted.

Nothing here imports TensorFlow (the loop does, when it trains).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fer_core.errors import FerError, StoreError, TrainingBusyError
from fer_core.store.atomic import now_iso
from fer_core.store.runs import ModelStore

START_FAILED = "start_failed"
STARTED = ("start", "resume")


def start_outcome(events: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The first "start" / "resume" / "start_failed" event of `events` (those written since a
    launch), or None while the worker has not got that far."""
    for event in events:
        if event.get("event") in (*STARTED, START_FAILED):
            return event
    return None


@contextlib.contextmanager
def reporting_start_failure(store: ModelStore, run_id: str) -> Iterator[None]:
    """Step 4 of the contract: an exception before the run started is written into the run."""
    before = len(store.read_events(run_id))
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(Exception):
            if start_outcome(store.read_events(run_id)[before:]) is None:
                message = str(exc) if isinstance(exc, FerError) else (f"{type(exc).__name__}: {exc}".rstrip(": "))
                store.append_event(run_id, {"event": START_FAILED, "time": now_iso(), "error": message,
                                            "busy": isinstance(exc, TrainingBusyError)})
                if store.read_meta(run_id).get("status") == "starting":
                    store.update_meta(run_id, status="failed", error=message)
        raise


def train_created_run(
    store: ModelStore,
    run_id: str,
    load_dataset: Callable[[str], Any],
    callbacks: Sequence[Any] = (),
    on_start: Callable[[str], None] | None = None,
) -> str:
    """Train the run `jobs.start_training` created (status "starting") with its stored settings
    on its stored dataset source; `load_dataset(source)` reads the data (the CLI shows progress)."""
    from fer_core.training.config import TrainConfig
    from fer_core.training.loop import train

    info = store.get(run_id)
    if info.meta.get("status") != "starting":  # as written (the app that created it may have gone since)
        raise StoreError(f"Run {run_id} is {info.status}, not waiting to start: train a new run, or resume this one.")
    with reporting_start_failure(store, run_id):
        config = TrainConfig.from_settings(dict(info.meta.get("params") or {}))
        source = (info.meta.get("dataset") or {}).get("source")
        if not isinstance(source, str) or not source:
            raise StoreError(f"Run {run_id} does not say which dataset to train on.")
        dataset = load_dataset(source)
        return train(dataset, config, store=store, run_id=run_id, callbacks=callbacks, on_start=on_start)
