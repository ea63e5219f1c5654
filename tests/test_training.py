"""Training engine: config validation, data split, a real short run, stop/kill/failure paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from model_helpers import DEMO_TRAIN, tiny_dataset

from fer_core.errors import StoreError, TrainingBusyError
from fer_core.labels import FER_LABELS
from fer_core.paths import PROJECT_ROOT
from fer_core.store.runs import ModelStore
from fer_core.training.config import TrainConfig
from fer_core.training.loop import build_run_meta, train
from fer_core.training.split import prepare_training_data

TESTS_DIR = Path(__file__).resolve().parent
QUICK = dict(architecture="mini_xception", epochs=3, batch_size=16, early_stopping_patience=0,
             reduce_lr_patience=0, augment=False, seed=3)


# --------------------------------------------------------------------------- config


def test_config_defaults_roundtrip_and_recommended() -> None:
    c = TrainConfig()
    assert (c.architecture, c.epochs, c.batch_size, c.optimizer, c.validation) == ("mini_xception", 30, 64, "adam", "0.2")
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert TrainConfig.from_dict(d) == c
    assert TrainConfig.from_dict({"optimizer": "SGD"}).optimizer == "sgd"
    r = TrainConfig.recommended("vgg_fer", epochs=5)
    assert (r.architecture, r.optimizer, r.epochs) == ("vgg_fer", "adamw", 5)
    assert (r.weight_decay, r.warmup_epochs, r.lr_schedule) == (0.05, 3, "cosine")  # the shipped default's recipe
    compact = TrainConfig.recommended("vgg_compact")  # the Train page's default recipe
    assert (compact.lr_schedule, compact.label_smoothing, compact.random_erasing) == ("cosine", 0.1, True)
    assert TrainConfig.recommended("vgg_compact", lr_schedule="plateau").lr_schedule == "plateau"
    assert TrainConfig(validation="test").validation_fraction is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"architecture": "resnet"}, "Unknown architecture"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"validation": "0.9"}, "validation"),
        ({"validation": "train"}, "validation"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"augment": "yes"}, "augment"),
        ({"max_train_images": 3}, "max_train_images"),
    ],
)
def test_config_rejects_bad_values(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields)


def test_cosine_lr_decays_from_base_to_a_hundredth() -> None:
    from fer_core.training.config import cosine_lr

    lrs = [cosine_lr(e, base=0.1, epochs=5) for e in range(5)]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.001)
    assert lrs[2] == pytest.approx((0.1 + 0.001) / 2)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert cosine_lr(0, base=0.1, epochs=1) == pytest.approx(0.1)  # one epoch: no decay, no division by 0


def test_cosine_schedule_sets_each_epochs_learning_rate(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "m")
    config = TrainConfig(**{**QUICK, "epochs": 3, "learning_rate": 0.02, "lr_schedule": "cosine",
                            "reduce_lr_patience": 2})
    run_id = train(tiny_dataset(120, 28), config, store=store)
    lrs = [e["lr"] for e in store.read_events(run_id) if e["event"] == "epoch"]
    assert lrs == pytest.approx([0.02, 0.0101, 0.0002], rel=1e-4)
    assert store.read_meta(run_id)["params"]["lr_schedule"] == "cosine"


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown training settings: colour"):
        TrainConfig.from_dict({"colour": "red"})


def test_prepare_training_data_split_cap_and_weights() -> None:
    ds = tiny_dataset(420, 70)
    ds.splits["train"].labels[:200] = 3  # imbalanced
    data = prepare_training_data(ds, TrainConfig(validation="0.2", max_train_images=300, class_weights=True))
    assert len(data.y_train) + len(data.y_val) == 300 and len(data.y_val) == 60
    assert data.sample_weights is not None and len(data.sample_weights) == len(data.y_train)
    assert data.class_weight[3] < 1.0 < data.class_weight[0]  # "balanced": rare classes weigh more
    # Stratified: class proportions of train and validation agree.
    frac_tr = np.bincount(data.y_train, minlength=7) / len(data.y_train)
    frac_va = np.bincount(data.y_val, minlength=7) / len(data.y_val)
    assert np.abs(frac_tr - frac_va).max() < 0.03
    named = prepare_training_data(ds, TrainConfig(validation="test"))
    assert len(named.y_train) == 420 and len(named.y_val) == 70 and named.validation_source == "test"
    with pytest.raises(ValueError, match="private_test"):
        prepare_training_data(ds, TrainConfig(validation="private_test"))


# --------------------------------------------------------------------------- a real run


def test_short_training_on_demo_set_beats_chance(demo_run) -> None:
    started = time.perf_counter()
    store, run_id, ds = demo_run
    info = store.get(run_id)
    assert info.status == "finished" and info.usable
    meta = info.meta
    assert meta["architecture"] == "mini_xception" and meta["labels"] == list(FER_LABELS)
    assert meta["input_shape"] == [48, 48, 1]
    assert meta["preprocessing"] == {"color": "grayscale", "scale": "0-1"}
    assert meta["dataset"]["synthetic"] is True and meta["dataset"]["fingerprint"] == ds.fingerprint
    assert meta["params"] == TrainConfig(**DEMO_TRAIN).to_dict()
    assert meta["name"] == "test run" and meta["num_params"] < 100_000
    assert meta["pid"] == os.getpid() and meta["error"] is None
    events = store.read_events(run_id)
    epochs = [e for e in events if e["event"] == "epoch"]
    assert events[0]["event"] == "start" and events[-1] == {**events[-1], "event": "end", "status": "finished"}
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    assert meta["history"] == epochs
    for e in epochs:
        assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "time"} <= set(e)
    best = max(epochs, key=lambda e: e["val_accuracy"])
    assert meta["best_epoch"] == best["epoch"]
    assert meta["metrics"]["val_accuracy"] == pytest.approx(best["val_accuracy"])
    # The saved model is the best epoch's: its accuracy on the test split beats chance (1/7) widely.
    model = store.load_model(run_id)
    test = ds.splits["test"]
    probs = np.asarray(model.predict_on_batch(test.images[..., None].astype("float32") / 255.0))
    accuracy = float((probs.argmax(1) == test.labels).mean())
    assert accuracy >= 0.6, accuracy
    assert store.training_lock_holder() is None
    print(f"demo training: test accuracy {accuracy:.3f}, {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------- stop, failure, busy


class _RequestStopAt(keras.callbacks.Callback):
    """Requests a stop through the store's STOP file at (epoch, batch)."""

    def __init__(self, store: ModelStore, epoch: int, batch: int) -> None:
        super().__init__()
        self.store, self.epoch, self.batch, self.current = store, epoch, batch, 0
        self.run_id: str | None = None
        self.stopped_at: int | None = None

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.current = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if (self.current, batch) == (self.epoch, self.batch):
            self.store.request_stop(self.run_id)
        if self.model.stop_training and self.stopped_at is None:
            self.stopped_at = batch


def test_stop_file_stops_quickly_and_keeps_best_model(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "m")
    ds = tiny_dataset(500, 70)  # 400 train images / batch 8 = 50 batches per epoch
    stopper = _RequestStopAt(store, epoch=1, batch=2)
    config = TrainConfig(**{**QUICK, "epochs": 20, "batch_size": 8})
    run_id = train(ds, config, store=store, run_id="my-named-run", callbacks=[stopper],
                   on_start=lambda rid: setattr(stopper, "run_id", rid))
    assert run_id == "my-named-run"  # a run id that did not exist yet names the new run
    info = store.get(run_id)
    assert info.status == "stopped" and info.error is None
    assert stopper.stopped_at is not None and stopper.stopped_at < 25  # within the 20-batch check
    epochs = [e for e in store.read_events(run_id) if e["event"] == "epoch"]
    assert len(epochs) == 2 and epochs[-1].get("partial") is True
    assert store.read_events(run_id)[-1]["status"] == "stopped"
    assert store.load_model(run_id).output_shape == (None, 7)
    assert not store.stop_requested(run_id)  # cleared at the end
    assert store.training_lock_holder() is None


def test_sigterm_stops_and_restores_handlers(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "m")
    before = signal.getsignal(signal.SIGTERM)

    class SendTerm(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGTERM)

    ds = tiny_dataset(140, 14)
    config = TrainConfig(**{**QUICK, "epochs": 10})
    # A run created beforehand for a worker (as the app's jobs do: status "starting") is trained in place.
    created = store.create_run({**build_run_meta(config, {"source": "demo"}, status="starting"), "pid": 1},
                               run_id="20260101-000000-ui")
    run_id = train(ds, config, store=store, run_id=created.run_id, callbacks=[SendTerm()])
    assert run_id == created.run_id and store.read_meta(run_id)["pid"] == os.getpid()
    assert store.read_meta(run_id)["dataset"]["fingerprint"] == ds.fingerprint  # what it trained on
    with pytest.raises(StoreError, match="already exists"):  # only a "starting" run is trained in place
        train(ds, config, store=store, run_id=run_id)
    assert store.get(run_id).status == "stopped"
    assert len(store.get(run_id).meta["history"]) <= 2
    assert signal.getsignal(signal.SIGTERM) == before


def test_exception_marks_failed_and_reraises(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "m")

    class Boom(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs=None) -> None:
            if epoch == 1:
                raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        train(tiny_dataset(140, 14), TrainConfig(**QUICK), store=store, callbacks=[Boom()])
    (info,) = store.list_runs()
    assert info.status == "failed" and "disk on fire" in info.error
    assert info.usable  # the best model so far is kept
    assert store.read_events(info.run_id)[-1]["status"] == "failed"
    assert store.training_lock_holder() is None


def test_busy_store_refuses_second_training(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "m")
    with store.acquire_training_lock("other-run"):
        with pytest.raises(TrainingBusyError, match="other-run"):
            train(tiny_dataset(140, 14), TrainConfig(**QUICK), store=store)
    assert store.list_runs() == []  # nothing half-created


# --------------------------------------------------------------------------- kill -9


def test_killed_training_is_interrupted_with_usable_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "m"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from model_helpers import tiny_dataset
        from fer_core.store.runs import ModelStore
        from fer_core.training.config import TrainConfig
        from fer_core.training.loop import train
        train(tiny_dataset(280, 14), TrainConfig(architecture="mini_xception", epochs=500, batch_size=16,
              early_stopping_patience=0, reduce_lr_patience=0, augment=False),
              store=ModelStore({str(root)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    store = ModelStore(root)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            runs = store.list_runs()
            if runs and any(e["event"] == "epoch" for e in store.read_events(runs[0].run_id)):
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        else:
            pytest.fail("no epoch event within 90 s")
        assert runs[0].status == "running"
        assert store.training_lock_holder()["run_id"] == runs[0].run_id
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (info,) = store.list_runs()
    assert info.status == "failed" and info.error == "interrupted"
    assert info.usable and store.load_model(info.run_id).output_shape == (None, 7)
    assert store.training_lock_holder() is None
    with store.acquire_training_lock("next"):  # a new training can start
        pass
