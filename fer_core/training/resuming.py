"""Resume a stopped, failed or killed run from its last complete epoch (store.checkpoints).

`resume_check` is the one place the resume rules are written (the CLI, the app's jobs and its
Resume button ask it); this module imports no TensorFlow until `resume` trains."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fer_core.errors import StoreError
from fer_core.store.checkpoints import read_last
from fer_core.store.processes import process_identity
from fer_core.store.runs import ModelStore
from fer_core.training.config import TrainConfig

RESUMABLE = ("stopped", "failed")


def resume_check(store: ModelStore, run_id: str, dataset: Any | None = None) -> tuple[TrainConfig, dict[str, Any]]:
    """Whether run `run_id` can be resumed: its TrainConfig and last checkpoint, or a StoreError
    that says why not (finished, still running, no or damaged checkpoint, another dataset)."""
    info = store.get(run_id)
    if info.status in ("starting", "running"):
        raise StoreError(f"Run {run_id} is still training: it cannot be resumed while it runs.")
    if info.status == "finished":
        raise StoreError(f"Run {run_id} has finished all its epochs: there is nothing to resume.")
    if info.status not in RESUMABLE:
        raise StoreError(f"Run {run_id} cannot be resumed (status: {info.status}: {info.error or 'unreadable'}).")
    if info.meta.get("imported") or info.meta.get("shipped"):
        raise StoreError(f"Run {run_id} was not trained in this store: it cannot be resumed.")
    last = read_last(store, run_id)
    if last is None:
        raise StoreError(
            f"Run {run_id} has no resume checkpoint (it stopped before its first epoch ended, or was trained "
            "by an older version): train a new run instead."
        )
    params = dict(info.meta.get("params") or {})
    params.setdefault("precision", "float32")  # runs from before the precision option trained in float32
    try:
        config = TrainConfig.from_dict(params)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"Run {run_id} cannot be resumed: its stored settings are not valid ({exc}).") from None
    if dataset is not None:
        stored = (info.meta.get("dataset") or {}).get("fingerprint")
        current = getattr(dataset, "fingerprint", None)
        if stored and current != stored:
            raise StoreError(
                f"Run {run_id} was trained on another dataset ({(info.meta.get('dataset') or {}).get('name')}, "
                f"fingerprint {stored[:12]}); the data given now differs (fingerprint {str(current)[:12]}). "
                "Resume it with the same data, or train a new run."
            )
    return config, last


def resume(
    dataset: Any,
    run_id: str,
    store: ModelStore | None = None,
    callbacks: Sequence[Any] = (),
    on_start: Callable[[str], None] | None = None,
    checkpoint_every_s: float = 0.0,
) -> str:
    """Continue a stopped, failed or killed run from its last complete epoch; returns the run id.

    The model, optimizer state (step, slots, learning rate), schedule position, best-so-far
    checkpoint, early-stopping / plateau counters and epoch counter carry on; epochs are
    appended to the same events.jsonl after a "resume" event. Raises StoreError when the run
    cannot be resumed (see resume_check) and TrainingBusyError when another training runs.
    """
    from fer_core.training.loop import train_in_run
    from fer_core.training.split import prepare_training_data

    store = store or ModelStore()
    store.check_not_training()
    config, last = resume_check(store, run_id, dataset)
    data = prepare_training_data(dataset, config)
    with store.acquire_training_lock(run_id):
        config, last = resume_check(store, run_id, dataset)  # unchanged while we waited for the lock?
        store.update_meta(run_id, status="running", error=None, **process_identity())
        if on_start is not None:
            on_start(run_id)
        train_in_run(store, run_id, data, config, callbacks, last=last, checkpoint_every_s=checkpoint_every_s)
    return run_id
