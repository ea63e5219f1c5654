"""The run's own Keras callbacks (stop check, best checkpoint, epoch events, resume checkpoint),
the disk-full guard around saves, and signal handling that turns SIGTERM/SIGINT into a clean stop."""

from __future__ import annotations

import contextlib
import errno
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from fer_core.errors import StoreError
from fer_core.store.atomic import now_iso
from fer_core.store.checkpoints import save_last
from fer_core.store.runs import ModelStore
from fer_core.training.config import STOP_CHECK_EVERY



def _keras_callback_base() -> type:
    import keras

    return keras.callbacks.Callback


def _current_lr(model: Any) -> float | None:
    try:
        import keras

        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # noqa: BLE001
        return None


def _float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def make_callbacks(store: ModelStore, run_id: str, monitor: str, stop_flag: threading.Event,
                   state: dict[str, Any], schedule: dict[str, Any], checkpoint_every_s: float = 0.0) -> list[Any]:
    """The run's own Keras callbacks: stop check, best checkpoint, epoch events, last checkpoint
    (in that order). `schedule` names the EarlyStopping / ReduceLROnPlateau callbacks whose
    counters the last checkpoint records. `checkpoint_every_s`: least seconds between two resume
    checkpoints (0: after every epoch; the last planned epoch is always saved). An accelerator can
    finish a FER-2013 epoch in a second or two, while a checkpoint with optimizer state is tens of
    MB: docs/train_on_gpu.py asks for one a minute."""
    base = _keras_callback_base()

    class StopCallback(base):  # type: ignore[misc, valid-type]
        """Stops at the next batch check when the STOP file exists or a signal arrived."""

        def _check(self) -> None:
            if stop_flag.is_set() or store.stop_requested(run_id):
                stop_flag.set()
                state["stop_reason"] = state.get("stop_reason") or "stop requested"
                self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if stop_flag.is_set() or (batch + 1) % STOP_CHECK_EVERY == 0:
                self._check()
                if self.model.stop_training:
                    state["cut_short"] = True  # this epoch did not see all its batches

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self._check()

    class BestCheckpoint(base):  # type: ignore[misc, valid-type]
        """Saves the model through the store (atomic) whenever `monitor` improves."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = _float_or_none((logs or {}).get(monitor))
            state["improved"] = False
            if value is None:
                return
            best = state.get("best_value")
            better = best is None or (value > best if monitor.endswith("accuracy") else value < best)
            if better:
                save_checkpoint(store, run_id, self.model, epoch + 1, state.get("best_epoch"))
                state.update(best_value=value, best_epoch=epoch + 1, best_logs=dict(logs or {}), improved=True)

    class EpochEvents(base):  # type: ignore[misc, valid-type]
        """Appends an "epoch" event per epoch and refreshes meta (history, best epoch, metrics)."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            state["epoch_start"] = time.perf_counter()
            state["epoch_lr"] = _current_lr(self.model)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            seconds = time.perf_counter() - state.get("epoch_start", time.perf_counter())
            event = {
                "event": "epoch",
                "epoch": epoch + 1,
                "loss": _float_or_none(logs.get("loss")),
                "accuracy": _float_or_none(logs.get("accuracy")),
                "val_loss": _float_or_none(logs.get("val_loss")),
                "val_accuracy": _float_or_none(logs.get("val_accuracy")),
                "lr": state.get("epoch_lr"),
                "seconds": round(seconds, 3),
                "images_per_second": round(state["train_images"] / seconds, 1) if seconds > 0 else None,
                "time": now_iso(),
            }
            if state.get("cut_short") or (self.model.stop_training and state.get("stop_reason")):
                event["partial"] = True  # the epoch was cut short by a stop request
            state["history"].append(event)
            store.append_event(run_id, event)
            store.update_meta(
                run_id,
                history=state["history"],
                best_epoch=state.get("best_epoch"),
                metrics=run_metrics(state, monitor),
            )

    class LastCheckpoint(base):  # type: ignore[misc, valid-type]
        """Saves weights + optimizer state and the loop's state after every complete epoch (resume)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if state.get("cut_short"):
                return  # a resumed run starts again at this epoch
            now = time.monotonic()
            last_planned = epoch + 1 >= int((self.params or {}).get("epochs") or 0)
            if not last_planned and now - state.get("last_saved", -math.inf) < checkpoint_every_s:
                return
            state["last_saved"] = now
            loop = {
                "history": state["history"],
                "best_value": state.get("best_value"),
                "best_epoch": state.get("best_epoch"),
                "best_logs": state.get("best_logs"),
                "callbacks": {name: {k: getattr(cb, k, None) for k in _RESTORED_ATTRS}
                              for name, cb in schedule.items()},
                "time": now_iso(),
            }
            _guard_disk(lambda: save_last(store, run_id, self.model, epoch + 1, loop),
                        f"the resume checkpoint of epoch {epoch + 1}", state.get("best_epoch"))

    return [StopCallback(), BestCheckpoint(), EpochEvents(), LastCheckpoint()]


# Counters of EarlyStopping / ReduceLROnPlateau that a resumed run carries on from.
_RESTORED_ATTRS = ("wait", "best", "cooldown_counter", "best_epoch")


def restore_loop_callback(schedule: dict[str, Any], saved: dict[str, Any]) -> Any:
    """A callback that, after the others' on_train_begin reset them, puts back their saved counters."""
    base = _keras_callback_base()

    class RestoreLoopState(base):  # type: ignore[misc, valid-type]
        def on_train_begin(self, logs: dict | None = None) -> None:
            for name, cb in schedule.items():
                for key, value in (saved.get(name) or {}).items():
                    if key in _RESTORED_ATTRS and value is not None and hasattr(cb, key):
                        setattr(cb, key, value)

    return RestoreLoopState()


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def save_checkpoint(store: ModelStore, run_id: str, model: Any, epoch: int, kept_epoch: int | None) -> None:
    """store.save_model; a full disk (or file-size quota) becomes a StoreError that says what is kept.

    The store writes a temp file and replaces model.keras only once it is complete, so the
    previous checkpoint is still there, unchanged.
    """
    _guard_disk(lambda: store.save_model(run_id, model), f"the model of epoch {epoch}", kept_epoch)


def _guard_disk(save: Callable[[], Any], what: str, kept_epoch: int | None) -> None:
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


def run_metrics(state: dict[str, Any], monitor: str) -> dict[str, Any]:
    best = state.get("best_logs") or {}
    history = state["history"]
    out: dict[str, Any] = {
        "monitor": monitor,
        "best_epoch": state.get("best_epoch"),
        "best_val_accuracy": _float_or_none(best.get("val_accuracy")),
        "val_accuracy": _float_or_none(best.get("val_accuracy")),
        "best_val_loss": _float_or_none(best.get("val_loss")),
        "train_accuracy_at_best": _float_or_none(best.get("accuracy")),
        "train_loss_at_best": _float_or_none(best.get("loss")),
        "epochs_run": len(history),
        "train_images": state["train_images"],
        "val_images": state["val_images"],
        "training_seconds": round(sum(e["seconds"] for e in history), 2),
    }
    rates = [e["images_per_second"] for e in history if e.get("images_per_second")]
    out["images_per_second"] = round(float(np.median(rates)), 1) if rates else None
    return out


# --------------------------------------------------------------------------- signals


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


# --------------------------------------------------------------------------- train
