"""What one training run's loop and its Keras callbacks share: `RunState` (was an untyped dict),
the disk-full guard around saves, and signal handling that turns SIGTERM/SIGINT into a clean stop.

No TensorFlow import here: the callbacks (fer_core.training.callbacks) bring Keras.
"""

from __future__ import annotations

import contextlib
import errno
import math
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_core.errors import StoreError
from fer_core.store.atomic import now_iso
from fer_core.store.runs import ModelStore


def float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


@dataclass
class RunState:
    """One run while it trains: where it is stored, its epochs so far, its best epoch, why it stops."""

    store: ModelStore
    run_id: str
    train_images: int
    val_images: int
    monitor: str = "val_accuracy"
    stop_flag: threading.Event = field(default_factory=threading.Event)
    history: list[dict[str, Any]] = field(default_factory=list)  # one "epoch" event per epoch
    best_value: float | None = None
    best_epoch: int | None = None
    best_logs: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    cut_short: bool = False  # the current epoch did not see all its batches (a stop came)
    epoch_start: float = 0.0
    epoch_lr: float | None = None
    last_saved: float = -math.inf  # time.monotonic() of the last resume checkpoint

    def resume_from(self, last: dict[str, Any]) -> None:
        """Carry on from a resume checkpoint's loop state (store.checkpoints.read_last)."""
        self.history = list(last.get("history") or [])
        self.best_value = last.get("best_value")
        self.best_epoch = last.get("best_epoch")
        self.best_logs = dict(last.get("best_logs") or {})

    def is_better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.monitor.endswith("accuracy") else value < self.best_value

    def loop_checkpoint(self, counters: dict[str, Any]) -> dict[str, Any]:
        """What a resume checkpoint stores besides the weights (with the schedule callbacks' counters)."""
        return {"history": self.history, "best_value": self.best_value, "best_epoch": self.best_epoch,
                "best_logs": self.best_logs, "callbacks": counters, "time": now_iso()}

    def metrics(self) -> dict[str, Any]:
        """meta.json's "metrics": the best epoch's figures and the run's throughput."""
        best = self.best_logs or {}
        rates = [e["images_per_second"] for e in self.history if e.get("images_per_second")]
        return {
            "monitor": self.monitor,
            "best_epoch": self.best_epoch,
            "best_val_accuracy": float_or_none(best.get("val_accuracy")),
            "val_accuracy": float_or_none(best.get("val_accuracy")),
            "best_val_loss": float_or_none(best.get("val_loss")),
            "train_accuracy_at_best": float_or_none(best.get("accuracy")),
            "train_loss_at_best": float_or_none(best.get("loss")),
            "epochs_run": len(self.history),
            "train_images": self.train_images,
            "val_images": self.val_images,
            "training_seconds": round(sum(e["seconds"] for e in self.history), 2),
            "images_per_second": round(float(np.median(rates)), 1) if rates else None,
        }


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def save_checkpoint(store: ModelStore, run_id: str, model: Any, epoch: int, kept_epoch: int | None) -> None:
    """store.save_model; a full disk (or file-size quota) becomes a StoreError that says what is kept.

    The store writes a temp file and replaces model.keras only once it is complete, so the
    previous checkpoint is still there, unchanged.
    """
    guard_disk(lambda: store.save_model(run_id, model), f"the model of epoch {epoch}", kept_epoch)


def guard_disk(save: Callable[[], Any], what: str, kept_epoch: int | None) -> None:
    """Run `save`; a full disk (or file-size quota) becomes a StoreError that says what is kept."""
    try:
        save()
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        kept = (f"model.keras still holds the best model so far (epoch {kept_epoch})" if kept_epoch
                else "no model had been saved yet")
        raise StoreError(
            f"Could not save {what}: {exc.strerror or exc} (is the disk full?). "
            f"The run stops; {kept}. Free some disk space and resume or train again."
        ) from exc


@contextlib.contextmanager
def stop_on_signals(stop_flag: threading.Event) -> Iterator[None]:
    """SIGTERM / SIGINT set `stop_flag` (a second one raises KeyboardInterrupt). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if stop_flag.is_set():
            raise KeyboardInterrupt(f"second stop signal {signal.Signals(signum).name}")
        stop_flag.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # pragma: no cover - not allowed here
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
