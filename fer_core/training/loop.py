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
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from fer_core.errors import FerError, StoreError
from fer_core.labels import FER_LABELS
from fer_core.store.atomic import now_iso
from fer_core.store.checkpoints import remove_last
from fer_core.store.processes import process_identity
from fer_core.store.runs import ModelStore
from fer_core.training.config import INPUT_SHAPE, TrainConfig, cosine_lr
from fer_core.training.run_state import RunState, save_checkpoint, stop_on_signals
from fer_core.training.split import TrainingData, prepare_training_data


def select_strategy() -> Any:
    """MirroredStrategy when more than one GPU is visible, the default strategy otherwise;
    a no-op scope under a Keras backend other than TensorFlow (JAX, PyTorch)."""
    from fer_core.training.feeding import keras_backend

    if keras_backend() != "tensorflow":
        return _NoStrategy()
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class _NoStrategy:
    def scope(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def _make_optimizer(config: TrainConfig) -> Any:
    import keras

    wd = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.learning_rate, weight_decay=wd)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=config.learning_rate,
                                      weight_decay=1e-4 if config.weight_decay is None else config.weight_decay)
    return keras.optimizers.SGD(learning_rate=config.learning_rate, momentum=0.9, nesterov=True, weight_decay=wd)


def dataset_info(dataset: Any) -> dict[str, Any]:
    """What a run records about the dataset it trains on."""
    report = getattr(dataset, "report", None)
    return {
        "name": getattr(dataset, "name", None),
        "source": getattr(report, "source", None) if report is not None else None,
        "fingerprint": getattr(dataset, "fingerprint", None),
        "synthetic": bool(getattr(dataset, "synthetic", False)),
    }


def build_run_meta(config: TrainConfig, dataset: dict[str, Any], status: str = "running") -> dict[str, Any]:
    """meta.json content of a run about to train (status "running"), or of one created for a
    worker to train (status "starting": `dataset` then holds only its source)."""
    from fer_core.preprocess import DEFAULT_PREPROCESSING

    return {
        "name": config.name,
        "architecture": config.architecture,
        "labels": list(FER_LABELS),
        "input_shape": list(INPUT_SHAPE),
        "preprocessing": dict(DEFAULT_PREPROCESSING),
        "dataset": dataset,
        "params": config.to_dict(),
        "history": [],
        "metrics": {},
        "best_epoch": None,
        "num_params": None,
        "status": status,
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
    checkpoint_every_s: float = 0.0,
) -> str:
    """Train `config.architecture` on `dataset` into a run of `store`; returns the run id.

    `dataset` is a fer_core.data Dataset (splits with uint8 images and FER_LABELS indices).
    `run_id`: None creates a new run with a fresh id; the id of a run `jobs.start_training`
    created (status "starting") trains that run (see training.worker); any other id names the
    new run. The run is created only once the training lock is held, so a refused or invalid
    training leaves nothing behind. `callbacks` are extra Keras callbacks; `on_start(run_id)`
    is called once the run holds the training lock; `checkpoint_every_s` spaces the resume
    checkpoints (callbacks.LastCheckpoint). Raises TrainingBusyError when another training
    holds the store's lock, ValueError on bad settings or data, and re-raises any training
    exception after recording it (status "failed").
    """
    config.validate()
    store = store or ModelStore()
    created = run_id is not None and store.run_dir(run_id).is_dir()
    if created and store.read_meta(run_id).get("status") != "starting":  # as written: its creator may be gone
        raise StoreError(f"Run {run_id} already exists: train a new run, or resume this one.")
    data = prepare_training_data(dataset, config)  # bad data fails before a run folder exists
    if config.teachers:
        from fer_core.training.distill import resolve_teachers

        resolve_teachers(store, config.teachers)  # an unknown teacher fails before a run folder exists
    meta = build_run_meta(config, dataset_info(dataset))
    with store.acquire_training_lock(run_id or store.new_run_id(config.architecture)) as lock:
        if created:
            assert run_id is not None
            old = store.read_meta(run_id)
            meta["name"] = meta["name"] or old.get("name")
            known = {k: v for k, v in meta["dataset"].items() if v is not None}
            meta["dataset"] = {**(old.get("dataset") or {}), **known}  # keeps the source it was given
            store.update_meta(run_id, **meta)
        else:
            run_id = store.create_run(meta, run_id=run_id).run_id
            lock.set_run_id(run_id)
        if on_start is not None:
            on_start(run_id)
        train_in_run(store, run_id, data, config, callbacks, checkpoint_every_s=checkpoint_every_s)
    return run_id


def _build_compiled(config: TrainConfig, last: dict[str, Any] | None) -> Any:
    """The run's compiled model: fresh, or with the weights and optimizer state of `last`."""
    import keras

    from fer_core.training.architectures import build_model

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


def train_in_run(store: ModelStore, run_id: str, data: TrainingData, config: TrainConfig,
                 extra_callbacks: Sequence[Any], last: dict[str, Any] | None = None,
                 checkpoint_every_s: float = 0.0) -> None:
    """Train the run (it holds the training lock), from `last` (a resume checkpoint) or from scratch,
    and record how it ended: status, error, metrics, the "end" event."""
    state = RunState(store, run_id, train_images=int(len(data.y_train)), val_images=int(len(data.y_val)))
    if last:
        state.resume_from(last)
    status, error = "failed", None
    started = time.perf_counter()
    earlier_seconds = float(store.read_meta(run_id).get("total_seconds") or 0.0) if last else 0.0
    initial_epoch = int(last["epoch"]) if last else 0
    store.append_event(run_id, {
        "event": "resume" if last else "start", "time": now_iso(), "architecture": config.architecture,
        "train_images": state.train_images, "val_images": state.val_images,
        "validation": data.validation_source, "epochs": config.epochs, "precision": config.precision,
        **({"from_epoch": initial_epoch} if last else {}),
    })
    try:
        with stop_on_signals(state.stop_flag):
            _fit(state, data, config, extra_callbacks, last, checkpoint_every_s)
        status, error = _outcome(state)
    except BaseException as exc:
        status = "failed"
        error = str(exc) if isinstance(exc, FerError) else (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        raise
    finally:
        _record_end(state, status, error, total_seconds=round(earlier_seconds + time.perf_counter() - started, 2))


def _fit(state: RunState, data: TrainingData, config: TrainConfig, extra_callbacks: Sequence[Any],
         last: dict[str, Any] | None, checkpoint_every_s: float) -> None:
    """Build (or restore) the model and run model.fit with the run's callbacks."""
    import keras

    from fer_core.training.callbacks import run_callbacks
    from fer_core.training.feeding import make_feed
    from fer_core.training.precision import precision_scope

    store, run_id = state.store, state.run_id
    initial_epoch = int(last["epoch"]) if last else 0
    soft = _soft_targets(store, run_id, data, config)  # float32 teachers, before the run's precision applies
    with precision_scope(config.precision):
        keras.utils.set_random_seed(config.seed + initial_epoch)
        with select_strategy().scope():
            model = _build_compiled(config, last)
        store.update_meta(
            run_id, num_params=int(model.count_params()), class_weight=data.class_weight,
            validation_source=data.validation_source, train_images=state.train_images,
            val_images=state.val_images, precision=config.precision,
            **({"history": state.history, "resumed": [*_resumes(store, run_id), initial_epoch]} if last else {}),
        )
        # A resumed run draws other shuffles and augmentations than the epochs it already ran.
        train_ds = make_feed(
            data.x_train, data.y_train, config.batch_size, training=True, augment=config.augment,
            random_erasing=config.random_erasing, seed=config.seed + initial_epoch, sample_weights=data.sample_weights,
            camera_augment=config.camera_augment, soft_targets=soft, mixup=config.mixup, cutmix=config.cutmix,
        )
        val_ds = make_feed(data.x_val, data.y_val, max(config.batch_size, 256), training=False)
        callbacks = [*run_callbacks(state, _schedule_callbacks(config, state.monitor), checkpoint_every_s, last),
                     *extra_callbacks]
        if initial_epoch < config.epochs:
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, initial_epoch=initial_epoch,
                      callbacks=callbacks, shuffle=False, verbose=0)
        if state.best_epoch is None and not store.model_path(run_id).exists():
            save_checkpoint(store, run_id, model, len(state.history), None)  # no usable metric: keep what we have


def _soft_targets(store: ModelStore, run_id: str, data: TrainingData, config: TrainConfig) -> Any:
    """The distillation targets of a run with teachers (fer_core.training.distill), else None."""
    if not config.teachers:
        return None
    from fer_core.training.distill import resolve_teachers, teacher_targets

    targets, record = teacher_targets(store, run_id, resolve_teachers(store, config.teachers), data,
                                      config.distill_weight)
    if record is not None:
        store.update_meta(run_id, teachers=record)
        store.append_event(run_id, {"event": "teachers", "time": now_iso(), **record})
    return targets


def _outcome(state: RunState) -> tuple[str, str | None]:
    """How a run that returned from fit ended: (status, error)."""
    losses = [e.get("loss") for e in state.history]
    if losses and losses[-1] is None:
        return "failed", "the loss became NaN (try a lower learning rate)"
    return ("stopped" if state.stop_flag.is_set() else "finished"), None


def _record_end(state: RunState, status: str, error: str | None, total_seconds: float) -> None:
    """Write how the run ended into meta.json and events.jsonl (never raises: the run's own error wins)."""
    store, run_id = state.store, state.run_id
    with contextlib.suppress(Exception):
        store.update_meta(run_id, status=status, error=error, metrics=state.metrics(), best_epoch=state.best_epoch,
                          history=state.history, total_seconds=total_seconds)
    with contextlib.suppress(Exception):
        store.append_event(run_id, {"event": "end", "status": status, "error": error, "time": now_iso(),
                                    "best_epoch": state.best_epoch, "epochs_run": len(state.history)})
    with contextlib.suppress(Exception):
        store.clear_stop(run_id)
    if status == "finished":
        remove_last(store, run_id)  # nothing left to resume: free the optimizer-state checkpoint


def _resumes(store: ModelStore, run_id: str) -> list[int]:
    with contextlib.suppress(Exception):
        return [int(e) for e in store.read_meta(run_id).get("resumed") or []]
    return []
