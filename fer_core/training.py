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
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from fer_core.errors import FerError, StoreError, TrainingBusyError
from fer_core.labels import FER_LABELS
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
    label_smoothing: float = 0.0
    seed: int = 1234
    name: str | None = None
    max_train_images: int | None = None  # cap the train split (stratified) for quick runs

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
        if self.max_train_images is not None:
            _check_int("max_train_images", self.max_train_images, 14, 10**9)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 1:
            raise ValueError(f"learning_rate must be a number in (0, 1]; got {lr!r}")
        self.learning_rate = float(lr)
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
                    state: dict[str, Any]) -> list[Any]:
    """The run's own Keras callbacks: stop check, best checkpoint, epoch events (in that order)."""
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
            if self.model.stop_training and state.get("stop_reason"):
                event["partial"] = True  # the epoch was cut short by a stop request
            state["history"].append(event)
            store.append_event(run_id, event)
            store.update_meta(
                run_id,
                history=state["history"],
                best_epoch=state.get("best_epoch"),
                metrics=_metrics(state, monitor),
            )

    return [StopCallback(), BestCheckpoint(), EpochEvents()]


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _save_checkpoint(store: ModelStore, run_id: str, model: Any, epoch: int, kept_epoch: int | None) -> None:
    """store.save_model; a full disk (or file-size quota) becomes a StoreError that says what is kept.

    The store writes a temp file and replaces model.keras only once it is complete, so the
    previous checkpoint is still there, unchanged.
    """
    try:
        store.save_model(run_id, model)
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        kept = (f"model.keras still holds the best model so far (epoch {kept_epoch})" if kept_epoch
                else "no model had been saved yet")
        raise StoreError(
            f"Could not save the model of epoch {epoch}: {exc.strerror or exc} (is the disk full?). "
            f"The run stops; {kept}. Free some disk space and train again."
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


def cosine_lr(epoch: int, lr: float | None = None, *, base: float, epochs: int) -> float:
    """Learning rate of `epoch` (0-based) under cosine decay from `base` to base/100 over `epochs`."""
    floor = base / 100
    progress = min(max(epoch, 0), max(epochs - 1, 1)) / max(epochs - 1, 1)
    return float(floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _make_optimizer(config: TrainConfig) -> Any:
    import keras

    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.learning_rate)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=config.learning_rate, weight_decay=1e-4)
    return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9, nesterov=True)


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


def _train_in_run(store: ModelStore, run_id: str, data: TrainingData, config: TrainConfig,
                  extra_callbacks: Sequence[Any]) -> None:
    import keras

    from fer_core.architectures import build_model
    from fer_core.pipeline import make_dataset

    stop_flag = threading.Event()
    state: dict[str, Any] = {
        "history": [],
        "train_images": int(len(data.y_train)),
        "val_images": int(len(data.y_val)),
    }
    monitor = "val_accuracy"
    status, error = "failed", None
    started = time.perf_counter()
    store.append_event(run_id, {
        "event": "start", "time": now_iso(), "architecture": config.architecture,
        "train_images": state["train_images"], "val_images": state["val_images"],
        "validation": data.validation_source, "epochs": config.epochs,
    })
    try:
        with _stop_on_signals(stop_flag):
            keras.utils.set_random_seed(config.seed)
            strategy = select_strategy()
            with strategy.scope():
                model = build_model(config.architecture, INPUT_SHAPE, len(FER_LABELS), seed=config.seed)
                model.compile(
                    optimizer=_make_optimizer(config),
                    loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                    metrics=["accuracy"],
                )
            store.update_meta(
                run_id,
                num_params=int(model.count_params()),
                class_weight=data.class_weight,
                validation_source=data.validation_source,
                train_images=state["train_images"],
                val_images=state["val_images"],
            )
            train_ds = make_dataset(
                data.x_train, data.y_train, config.batch_size, training=True, augment=config.augment,
                random_erasing=config.random_erasing, seed=config.seed, sample_weights=data.sample_weights,
            )
            val_ds = make_dataset(data.x_val, data.y_val, max(config.batch_size, 256), training=False)
            cbs: list[Any] = _make_callbacks(store, run_id, monitor, stop_flag, state)
            if config.lr_schedule == "cosine":
                cbs.insert(0, keras.callbacks.LearningRateScheduler(
                    functools.partial(cosine_lr, base=config.learning_rate, epochs=config.epochs), verbose=0))
            elif config.reduce_lr_patience > 0:
                cbs.insert(0, keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss", factor=0.5, patience=config.reduce_lr_patience, min_lr=1e-6, verbose=0))
            if config.early_stopping_patience > 0:
                cbs.insert(0, keras.callbacks.EarlyStopping(
                    monitor=monitor, mode="max", patience=config.early_stopping_patience,
                    restore_best_weights=True, verbose=0))
            cbs.append(keras.callbacks.TerminateOnNaN())
            cbs.extend(extra_callbacks)
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=cbs,
                      shuffle=False, verbose=0)
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
                total_seconds=round(time.perf_counter() - started, 2),
            )
        with contextlib.suppress(Exception):
            store.append_event(run_id, {
                "event": "end", "status": status, "error": error, "time": now_iso(),
                "best_epoch": state.get("best_epoch"), "epochs_run": len(state["history"]),
            })
        with contextlib.suppress(Exception):
            store.clear_stop(run_id)
