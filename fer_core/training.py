"""The training engine: one call trains one model into a run of the model store.

    config = TrainConfig(architecture="mini_xception", epochs=30)
    run_id = train(dataset, config)            # blocks; progress goes to events.jsonl

While it runs, the run's meta.json says status "running" (with pid), events.jsonl gets one
"epoch" line per epoch, and model.keras always holds the best model so far (saved
atomically). It stops early on: EarlyStopping, a STOP file (`store.request_stop(run_id)`),
or SIGTERM/SIGINT (when called from the main thread). Final status: "finished", "stopped"
or "failed" (the exception is re-raised). Only one training runs per store at a time.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from fer_core.errors import FerError, StoreError, TrainingBusyError
from fer_core.labels import FER_LABELS
from fer_core.precision import PRECISIONS, default_precision
from fer_core.checkpoints import read_last, remove_last, save_last
from fer_core.store import ModelStore, now_iso, process_identity

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("plateau", "cosine")
INPUT_SHAPE = (48, 48, 1)
STOP_CHECK_EVERY = 20  # batches


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (stored as meta.json "params")."""

    architecture: str = "mini_xception"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    optimizer: str = "adam"  # "adam" | "adamw" | "sgd" (Nesterov momentum 0.9)
    augment: bool = True
    random_erasing: bool = False
    class_weights: bool = False  # sklearn compute_class_weight("balanced")
    validation: str = "0.2"  # fraction of train (stratified) or a split name such as "test"
    early_stopping_patience: int = 8  # 0 disables early stopping
    reduce_lr_patience: int = 4  # 0 disables the plateau schedule
    lr_schedule: str = "plateau"  # "plateau" (ReduceLROnPlateau) | "cosine" (decay to ~0 over `epochs`)
    warmup_epochs: int = 0  # cosine only: linear warm-up from learning_rate/10 over the first epochs
    label_smoothing: float = 0.0
    weight_decay: float | None = None  # decoupled weight decay; None: 1e-4 for adamw, none for adam / sgd
    seed: int = 1234
    name: str | None = None
    max_train_images: int | None = None  # cap the train split (stratified) for quick runs
    # "bf16": bfloat16 compute with float32 weights and a float32 softmax (fer_core.precision);
    # the default where the CPU (AMX / AVX512-BF16) or GPU runs it natively.
    precision: str = field(default_factory=default_precision)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with a clear message for any value out of range."""
        from fer_core.architectures import ARCHITECTURES

        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"Unknown architecture {self.architecture!r}. Known architectures: {', '.join(ARCHITECTURES)}."
            )
        _check_int("epochs", self.epochs, 1, 10_000)
        _check_int("batch_size", self.batch_size, 1, 4096)
        _check_int("early_stopping_patience", self.early_stopping_patience, 0, 10_000)
        _check_int("reduce_lr_patience", self.reduce_lr_patience, 0, 10_000)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_int("warmup_epochs", self.warmup_epochs, 0, 10_000)
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})")
        if not isinstance(self.precision, str) or self.precision.lower() not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        self.precision = self.precision.lower()
        if self.max_train_images is not None:
            _check_int("max_train_images", self.max_train_images, 14, 10**9)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 1:
            raise ValueError(f"learning_rate must be a number in (0, 1]; got {lr!r}")
        self.learning_rate = float(lr)
        wd = self.weight_decay
        if wd is not None:
            if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not math.isfinite(wd) or not 0 <= wd < 0.1:
                raise ValueError(f"weight_decay must be a number in [0, 0.1); got {wd!r}")
            self.weight_decay = float(wd)
        ls = self.label_smoothing
        if isinstance(ls, bool) or not isinstance(ls, (int, float)) or not 0 <= ls < 1:
            raise ValueError(f"label_smoothing must be a number in [0, 1); got {ls!r}")
        self.label_smoothing = float(ls)
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        self.optimizer = self.optimizer.lower()
        if not isinstance(self.lr_schedule, str) or self.lr_schedule.lower() not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}; got {self.lr_schedule!r}")
        self.lr_schedule = self.lr_schedule.lower()
        for flag in ("augment", "random_erasing", "class_weights"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false; got {getattr(self, flag)!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"name must be text; got {self.name!r}")
        self.validation = str(self.validation).strip()
        frac = self.validation_fraction
        if frac is not None:
            if not 0 < frac < 1 or frac > 0.5:
                raise ValueError(f"validation fraction must be in (0, 0.5]; got {self.validation!r}")
        elif not self.validation or self.validation == "train":
            raise ValueError(
                f"validation must be a fraction of train such as '0.2' or another split name such as 'test'; "
                f"got {self.validation!r}"
            )

    @property
    def validation_fraction(self) -> float | None:
        """The validation fraction, or None when validation names a split."""
        try:
            return float(self.validation)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict (unknown keys are an error, missing ones take defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def recommended(cls, architecture: str, **overrides: Any) -> TrainConfig:
        """The recommended recipe of an architecture (ARCHITECTURES), with overrides."""
        from fer_core.architectures import get_spec

        return cls(**{**get_spec(architecture).recommended_config(), **overrides})


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number in [{lo}, {hi}]; got {value!r}")


# --------------------------------------------------------------------------- data


@dataclass
class TrainingData:
    """The arrays a run trains and validates on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    validation_source: str  # "train fraction 0.2" or a split name
    sample_weights: np.ndarray | None = None
    class_weight: dict[int, float] | None = None


def _stratified_take(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a stratified random subset of size n (plain random when strata are too small)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if n >= len(y):
        return idx
    try:
        keep, _ = train_test_split(idx, train_size=n, stratify=y, random_state=seed)
    except ValueError:
        keep, _ = train_test_split(idx, train_size=n, random_state=seed)
    return np.sort(keep)


def prepare_training_data(dataset: Any, config: TrainConfig) -> TrainingData:
    """Train/validation arrays per config (cap, stratified split, class weights)."""
    from sklearn.model_selection import train_test_split
    from sklearn.utils.class_weight import compute_class_weight

    splits = dataset.splits
    if "train" not in splits:
        raise ValueError(f"the dataset has no 'train' split (splits: {', '.join(splits) or 'none'})")
    x = np.asarray(splits["train"].images)
    y = np.asarray(splits["train"].labels, dtype=np.int64)
    if len(y) < 14:
        raise ValueError(f"the train split has only {len(y)} images; at least 14 are needed")
    if config.max_train_images is not None and config.max_train_images < len(y):
        keep = _stratified_take(y, config.max_train_images, config.seed)
        x, y = x[keep], y[keep]

    frac = config.validation_fraction
    if frac is not None:
        idx = np.arange(len(y))
        try:
            tr, va = train_test_split(idx, test_size=frac, stratify=y, random_state=config.seed)
        except ValueError:  # a class with a single image cannot be stratified
            tr, va = train_test_split(idx, test_size=frac, random_state=config.seed)
        x_tr, y_tr, x_va, y_va = x[np.sort(tr)], y[np.sort(tr)], x[np.sort(va)], y[np.sort(va)]
        source = f"train fraction {config.validation}"
    else:
        if config.validation not in splits:
            raise ValueError(
                f"validation split {config.validation!r} is not in the dataset (splits: {', '.join(splits)})"
            )
        x_tr, y_tr = x, y
        x_va = np.asarray(splits[config.validation].images)
        y_va = np.asarray(splits[config.validation].labels, dtype=np.int64)
        source = config.validation
    if len(y_va) == 0:
        raise ValueError("the validation set is empty")

    weights = class_weight = None
    if config.class_weights:
        present = np.unique(y_tr)
        w = compute_class_weight("balanced", classes=present, y=y_tr)
        class_weight = {int(c): float(v) for c, v in zip(present, w)}
        weights = np.array([class_weight[int(c)] for c in y_tr], dtype=np.float32)
    return TrainingData(x_tr, y_tr, x_va, y_va, source, weights, class_weight)


# --------------------------------------------------------------------------- callbacks


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


def _make_callbacks(store: ModelStore, run_id: str, monitor: str, stop_flag: threading.Event,
                    state: dict[str, Any], schedule: dict[str, Any]) -> list[Any]:
    """The run's own Keras callbacks: stop check, best checkpoint, epoch events, last checkpoint
    (in that order). `schedule` names the EarlyStopping / ReduceLROnPlateau callbacks whose
    counters the last checkpoint records."""
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
                _save_checkpoint(store, run_id, self.model, epoch + 1, state.get("best_epoch"))
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
                metrics=_metrics(state, monitor),
            )

    class LastCheckpoint(base):  # type: ignore[misc, valid-type]
        """Saves weights + optimizer state and the loop's state after every complete epoch (resume)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if state.get("cut_short"):
                return  # a resumed run starts again at this epoch
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


def _restore_loop_callback(schedule: dict[str, Any], saved: dict[str, Any]) -> Any:
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


def _save_checkpoint(store: ModelStore, run_id: str, model: Any, epoch: int, kept_epoch: int | None) -> None:
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


def _metrics(state: dict[str, Any], monitor: str) -> dict[str, Any]:
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
def _stop_on_signals(stop_flag: threading.Event) -> Iterator[None]:
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


def select_strategy() -> Any:
    """MirroredStrategy when more than one GPU is visible, the default strategy otherwise."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def cosine_lr(epoch: int, lr: float | None = None, *, base: float, epochs: int, warmup: int = 0) -> float:
    """Learning rate of `epoch` (0-based): a linear warm-up from base/10 to `base` over `warmup`
    epochs, then cosine decay from `base` to base/100 over the remaining epochs."""
    if warmup > 0 and epoch < warmup:
        return float(base * (0.1 + 0.9 * epoch / warmup))
    floor = base / 100
    span = max(epochs - warmup - 1, 1)
    progress = min(max(epoch - warmup, 0), span) / span
    return float(floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _make_optimizer(config: TrainConfig) -> Any:
    import keras

    wd = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.learning_rate, weight_decay=wd)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                      weight_decay=1e-4 if config.weight_decay is None else config.weight_decay)
    return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9, nesterov=True, weight_decay=wd)


def _dataset_info(dataset: Any) -> dict[str, Any]:
    report = getattr(dataset, "report", None)
    return {
        "name": getattr(dataset, "name", None),
        "source": getattr(report, "source", None) if report is not None else None,
        "fingerprint": getattr(dataset, "fingerprint", None),
        "synthetic": bool(getattr(dataset, "synthetic", False)),
    }


def build_run_meta(dataset: Any, config: TrainConfig) -> dict[str, Any]:
    """meta.json content of a run that is about to start (status "running")."""
    from fer_core.pipeline import PREPROCESSING

    return {
        "name": config.name,
        "architecture": config.architecture,
        "labels": list(FER_LABELS),
        "input_shape": list(INPUT_SHAPE),
        "preprocessing": dict(PREPROCESSING),
        "dataset": _dataset_info(dataset),
        "params": config.to_dict(),
        "history": [],
        "metrics": {},
        "best_epoch": None,
        "num_params": None,
        "status": "running",
        "error": None,
        **process_identity(),
    }


def train(
    dataset: Any,
    config: TrainConfig,
    store: ModelStore | None = None,
    run_id: str | None = None,
    callbacks: Sequence[Any] = (),
    on_start: Callable[[str], None] | None = None,
) -> str:
    """Train `config.architecture` on `dataset` into a run of `store`; returns the run id.

    `dataset` is a fer_core.data Dataset (splits with uint8 images and FER_LABELS indices).
    With `run_id` of a run created beforehand (store.create_run), that run is used; a
    `run_id` that does not exist yet names the new run; None picks a fresh id. `callbacks` are extra Keras callbacks; `on_start(run_id)`
    is called once the run holds the training lock. Raises TrainingBusyError when another
    training holds the store's lock, ValueError on bad settings or data, and re-raises any
    training exception after recording it (status "failed").
    """
    config.validate()
    store = store or ModelStore()
    data = prepare_training_data(dataset, config)  # bad data fails before a run folder exists

    meta = build_run_meta(dataset, config)
    existing = run_id is not None and store.run_dir(run_id).is_dir()
    tentative = run_id or store.new_run_id(config.architecture)
    locked = False
    try:
        with store.acquire_training_lock(tentative) as lock:
            locked = True
            if existing:
                old = store.read_meta(run_id)
                meta["name"] = meta["name"] or old.get("name")
                meta["created"] = old.get("created") or now_iso()
                store.update_meta(run_id, **meta)
            else:
                run_id = store.create_run(meta, run_id=run_id).run_id
                lock.set_run_id(run_id)
            if on_start is not None:
                on_start(run_id)
            _train_in_run(store, run_id, data, config, callbacks)
    except TrainingBusyError as exc:
        if existing and not locked:
            with contextlib.suppress(Exception):
                store.update_meta(run_id, status="failed", error=str(exc))
        raise
    assert run_id is not None
    return run_id


RESUMABLE = ("stopped", "failed")


def resume_check(store: ModelStore, run_id: str, dataset: Any | None = None) -> tuple[TrainConfig, dict[str, Any]]:
    """Whether run `run_id` can be resumed: its TrainConfig and last checkpoint, or a StoreError
    that says why not (finished, still running, no or damaged checkpoint, another dataset)."""
    info = store.get(run_id)
    if info.status == "running":
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
) -> str:
    """Continue a stopped, failed or killed run from its last complete epoch; returns the run id.

    The model, optimizer state (step, slots, learning rate), schedule position, best-so-far
    checkpoint, early-stopping / plateau counters and epoch counter carry on; epochs are
    appended to the same events.jsonl after a "resume" event. Raises StoreError when the run
    cannot be resumed (see resume_check) and TrainingBusyError when another training runs.
    """
    store = store or ModelStore()
    store.check_not_training()
    config, last = resume_check(store, run_id, dataset)
    data = prepare_training_data(dataset, config)
    with store.acquire_training_lock(run_id):
        config, last = resume_check(store, run_id, dataset)  # unchanged while we waited for the lock?
        store.update_meta(run_id, status="running", error=None, **process_identity())
        if on_start is not None:
            on_start(run_id)
        _train_in_run(store, run_id, data, config, callbacks, last=last)
    return run_id


def _build_compiled(config: TrainConfig, last: dict[str, Any] | None) -> Any:
    """The run's compiled model: fresh, or with the weights and optimizer state of `last`."""
    import keras

    from fer_core.architectures import build_model

    model = build_model(config.architecture, INPUT_SHAPE, len(FER_LABELS), seed=config.seed)
    model.compile(
        optimizer=_make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    if last is not None:
        model.optimizer.build(model.trainable_variables)  # so its slots exist to be loaded
        try:
            model.load_weights(last["path"])
        except Exception as exc:  # noqa: BLE001 - any failure: the checkpoint does not fit
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise StoreError(f"The resume checkpoint {last['path'].name} could not be loaded: {first}") from exc
    return model


def _schedule_callbacks(config: TrainConfig, monitor: str) -> dict[str, Any]:
    """The learning-rate schedule and early stopping of `config`, by name."""
    import keras

    out: dict[str, Any] = {}
    if config.early_stopping_patience > 0:
        out["early_stopping"] = keras.callbacks.EarlyStopping(
            monitor=monitor, mode="max", patience=config.early_stopping_patience,
            restore_best_weights=True, verbose=0)
    if config.lr_schedule == "cosine":
        out["cosine"] = keras.callbacks.LearningRateScheduler(
            functools.partial(cosine_lr, base=config.learning_rate, epochs=config.epochs,
                              warmup=config.warmup_epochs), verbose=0)
    elif config.reduce_lr_patience > 0:
        out["plateau"] = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.5, patience=config.reduce_lr_patience, min_lr=1e-6, verbose=0)
    return out


def _train_in_run(store: ModelStore, run_id: str, data: TrainingData, config: TrainConfig,
                  extra_callbacks: Sequence[Any], last: dict[str, Any] | None = None) -> None:
    import keras

    from fer_core.pipeline import make_dataset
    from fer_core.precision import precision_scope

    stop_flag = threading.Event()
    initial_epoch = int(last["epoch"]) if last else 0
    state: dict[str, Any] = {
        "history": list(last.get("history") or []) if last else [],
        "train_images": int(len(data.y_train)),
        "val_images": int(len(data.y_val)),
    }
    if last:
        state.update(best_value=last.get("best_value"), best_epoch=last.get("best_epoch"),
                     best_logs=last.get("best_logs") or {})
    monitor = "val_accuracy"
    status, error = "failed", None
    started = time.perf_counter()
    earlier_seconds = float(store.read_meta(run_id).get("total_seconds") or 0.0) if last else 0.0
    store.append_event(run_id, {
        "event": "resume" if last else "start", "time": now_iso(), "architecture": config.architecture,
        "train_images": state["train_images"], "val_images": state["val_images"],
        "validation": data.validation_source, "epochs": config.epochs, "precision": config.precision,
        **({"from_epoch": initial_epoch} if last else {}),
    })
    try:
        with _stop_on_signals(stop_flag), precision_scope(config.precision):
            keras.utils.set_random_seed(config.seed + initial_epoch)
            strategy = select_strategy()
            with strategy.scope():
                model = _build_compiled(config, last)
            store.update_meta(
                run_id,
                num_params=int(model.count_params()),
                class_weight=data.class_weight,
                validation_source=data.validation_source,
                train_images=state["train_images"],
                val_images=state["val_images"],
                precision=config.precision,
                **({"history": state["history"], "resumed": [*_resumes(store, run_id), initial_epoch]} if last else {}),
            )
            # A resumed run draws other shuffles and augmentations than the epochs it already ran.
            data_seed = config.seed + initial_epoch
            train_ds = make_dataset(
                data.x_train, data.y_train, config.batch_size, training=True, augment=config.augment,
                random_erasing=config.random_erasing, seed=data_seed, sample_weights=data.sample_weights,
            )
            val_ds = make_dataset(data.x_val, data.y_val, max(config.batch_size, 256), training=False)
            schedule = _schedule_callbacks(config, monitor)
            cbs: list[Any] = [*schedule.values(), *_make_callbacks(store, run_id, monitor, stop_flag, state, schedule)]
            if last:
                cbs.append(_restore_loop_callback(schedule, last.get("callbacks") or {}))
            cbs.append(keras.callbacks.TerminateOnNaN())
            cbs.extend(extra_callbacks)
            if initial_epoch < config.epochs:
                model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=initial_epoch,
                          callbacks=cbs, shuffle=False, verbose=0)
            if state.get("best_epoch") is None and not store.model_path(run_id).exists():
                _save_checkpoint(store, run_id, model, len(state["history"]), None)  # no usable metric: keep what we have
            losses = [e.get("loss") for e in state["history"]]
            if losses and losses[-1] is None:
                status, error = "failed", "the loss became NaN (try a lower learning rate)"
            elif stop_flag.is_set():
                status = "stopped"
            else:
                status = "finished"
    except BaseException as exc:
        status = "failed"
        if isinstance(exc, FerError):
            error = str(exc)
        else:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise
    finally:
        with contextlib.suppress(Exception):
            store.update_meta(
                run_id,
                status=status,
                error=error,
                metrics=_metrics(state, monitor),
                best_epoch=state.get("best_epoch"),
                history=state["history"],
                total_seconds=round(earlier_seconds + time.perf_counter() - started, 2),
            )
        with contextlib.suppress(Exception):
            store.append_event(run_id, {
                "event": "end", "status": status, "error": error, "time": now_iso(),
                "best_epoch": state.get("best_epoch"), "epochs_run": len(state["history"]),
            })
        with contextlib.suppress(Exception):
            store.clear_stop(run_id)
        if status == "finished":
            remove_last(store, run_id)  # nothing left to resume: free the optimizer-state checkpoint


def _resumes(store: ModelStore, run_id: str) -> list[int]:
    with contextlib.suppress(Exception):
        return [int(e) for e in store.read_meta(run_id).get("resumed") or []]
    return []
