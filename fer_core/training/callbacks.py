"""The run's own Keras callbacks, in the order the loop adds them: stop check, best checkpoint,
epoch events, resume checkpoint; and the one that puts back the schedule's counters on resume.

They share one `RunState` (fer_core.training.run_state). This module imports Keras: the loop
imports it only when it trains.
"""

from __future__ import annotations

import time
from typing import Any

import keras

from fer_core.store.atomic import now_iso
from fer_core.store.checkpoints import save_last
from fer_core.training.config import STOP_CHECK_EVERY
from fer_core.training.run_state import RunState, float_or_none, guard_disk, save_checkpoint

# Counters of EarlyStopping / ReduceLROnPlateau that a resumed run carries on from.
RESTORED_ATTRS = ("wait", "best", "cooldown_counter", "best_epoch")


def current_lr(model: Any) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # noqa: BLE001
        return None


class StopCheck(keras.callbacks.Callback):
    """Stops at the next batch check when the STOP file exists or a signal arrived."""

    def __init__(self, state: RunState):
        super().__init__()
        self.state = state

    def _check(self) -> None:
        s = self.state
        if s.stop_flag.is_set() or s.store.stop_requested(s.run_id):
            s.stop_flag.set()
            s.stop_reason = s.stop_reason or "stop requested"
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.state.stop_flag.is_set() or (batch + 1) % STOP_CHECK_EVERY == 0:
            self._check()
            if self.model.stop_training:
                self.state.cut_short = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check()


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model through the store (atomic) whenever the monitored metric improves."""

    def __init__(self, state: RunState):
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        s = self.state
        value = float_or_none((logs or {}).get(s.monitor))
        if value is not None and s.is_better(value):
            save_checkpoint(s.store, s.run_id, self.model, epoch + 1, s.best_epoch)
            s.best_value, s.best_epoch, s.best_logs = value, epoch + 1, dict(logs or {})


class EpochEvents(keras.callbacks.Callback):
    """Appends an "epoch" event per epoch and refreshes meta (history, best epoch, metrics)."""

    def __init__(self, state: RunState):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.state.epoch_start = time.perf_counter()
        self.state.epoch_lr = current_lr(self.model)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        s, logs = self.state, logs or {}
        seconds = time.perf_counter() - s.epoch_start
        event = {
            "event": "epoch",
            "epoch": epoch + 1,
            **{k: float_or_none(logs.get(k)) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
            "lr": s.epoch_lr,
            "seconds": round(seconds, 3),
            "images_per_second": round(s.train_images / seconds, 1) if seconds > 0 else None,
            "time": now_iso(),
        }
        if s.cut_short or (self.model.stop_training and s.stop_reason):
            event["partial"] = True  # the epoch was cut short by a stop request
        s.history.append(event)
        s.store.append_event(s.run_id, event)
        s.store.update_meta(s.run_id, history=s.history, best_epoch=s.best_epoch, metrics=s.metrics())


class LastCheckpoint(keras.callbacks.Callback):
    """Saves weights + optimizer state and the loop's state after complete epochs (resume).

    `every_s`: least seconds between two (0: after every epoch; the last planned epoch is always
    saved). An accelerator can finish a FER-2013 epoch in a second or two, while a checkpoint with
    optimizer state is tens of MB: docs/train_on_gpu.py asks for one a minute.
    """

    def __init__(self, state: RunState, schedule: dict[str, Any], every_s: float = 0.0):
        super().__init__()
        self.state, self.schedule, self.every_s = state, schedule, every_s

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        s = self.state
        if s.cut_short:
            return  # a resumed run starts again at this epoch
        now = time.monotonic()
        last_planned = epoch + 1 >= int((self.params or {}).get("epochs") or 0)
        if not last_planned and now - s.last_saved < self.every_s:
            return
        s.last_saved = now
        counters = {name: {k: getattr(cb, k, None) for k in RESTORED_ATTRS} for name, cb in self.schedule.items()}
        loop = s.loop_checkpoint(counters)
        guard_disk(lambda: save_last(s.store, s.run_id, self.model, epoch + 1, loop),
                   f"the resume checkpoint of epoch {epoch + 1}", s.best_epoch)


class RestoreCounters(keras.callbacks.Callback):
    """After the schedule callbacks' on_train_begin reset them, puts back their saved counters."""

    def __init__(self, schedule: dict[str, Any], saved: dict[str, Any]):
        super().__init__()
        self.schedule, self.saved = schedule, saved

    def on_train_begin(self, logs: dict | None = None) -> None:
        for name, cb in self.schedule.items():
            for key, value in (self.saved.get(name) or {}).items():
                if key in RESTORED_ATTRS and value is not None and hasattr(cb, key):
                    setattr(cb, key, value)


def run_callbacks(state: RunState, schedule: dict[str, Any], checkpoint_every_s: float = 0.0,
                  last: dict[str, Any] | None = None) -> list[Any]:
    """The schedule's callbacks, then the run's own, in order (with the counters put back on resume)."""
    out: list[Any] = [*schedule.values(), StopCheck(state), BestCheckpoint(state), EpochEvents(state),
                      LastCheckpoint(state, schedule, checkpoint_every_s)]
    if last:
        out.append(RestoreCounters(schedule, last.get("callbacks") or {}))
    return [*out, keras.callbacks.TerminateOnNaN()]
