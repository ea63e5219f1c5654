"""Training options checked in real (tiny) runs, not only as settings: early stopping and the plateau
schedule on a flat validation metric, both across a stop and resume; the compiled loss (label
smoothing) and optimizer (weight decay); class weights. (Warm-up + cosine across a resume:
tests/test_resume.py.)"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from model_helpers import stop_after_epoch, tiny_dataset

from fer_core.store.runs import ModelStore
from fer_core.training import loop
from fer_core.training.config import TrainConfig
from fer_core.training.loop import train
from fer_core.training.resuming import resume

pytestmark = pytest.mark.slow

# Plateau patience 2 and early-stopping patience 4 on a validation metric that never moves: epoch 1 is
# the best, the learning rate halves after epoch 3 (epochs 4-5 train at half), the run stops after epoch 5.
FLAT = dict(architecture="mini_xception", batch_size=8, augment=False, seed=5, precision="float32",
            optimizer="adam", learning_rate=0.004, lr_schedule="plateau", reduce_lr_patience=2,
            early_stopping_patience=4, epochs=12)
EXPECTED_LR = [0.004, 0.004, 0.004, 0.002, 0.002]


class _FlatValidation(keras.callbacks.Callback):
    """Runs first at each epoch end and makes the validation metrics the same every epoch."""

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs.update(val_loss=1.5, val_accuracy=0.25)


@pytest.fixture
def flat_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = loop._schedule_callbacks
    monkeypatch.setattr(loop, "_schedule_callbacks", lambda config, monitor: {"flat": _FlatValidation(),
                                                                              **schedule(config, monitor)})


def _lrs(store: ModelStore, run_id: str) -> list[float]:
    return [h["lr"] for h in store.history(run_id)]


def test_early_stopping_and_plateau_act_on_a_flat_metric(flat_validation) -> None:
    store = ModelStore()
    run_id = train(tiny_dataset(340, 70), TrainConfig(**FLAT), store=store)
    meta = store.read_meta(run_id)
    assert [h["epoch"] for h in store.history(run_id)] == [1, 2, 3, 4, 5]  # stopped 4 epochs after the best
    assert _lrs(store, run_id) == pytest.approx(EXPECTED_LR, rel=1e-5)
    assert meta["status"] == "finished" and meta["best_epoch"] == 1


def test_early_stopping_and_plateau_survive_a_resume(flat_validation) -> None:
    store = ModelStore()
    ds = tiny_dataset(340, 70)
    stopper = stop_after_epoch(store, 2)  # 34 steps an epoch: seen in epoch 3, which is trained again
    run_id = train(ds, TrainConfig(**FLAT), store=store, callbacks=[stopper],
                   on_start=lambda rid: setattr(stopper, "run_id", rid))
    assert store.get(run_id).status == "stopped"
    resume(ds, run_id, store=store)
    meta = store.read_meta(run_id)
    # The counters carried on: the same stop epoch and learning-rate drop as without the interruption.
    assert [h["epoch"] for h in store.history(run_id)] == [1, 2, 3, 4, 5]
    assert _lrs(store, run_id) == pytest.approx(EXPECTED_LR, rel=1e-5)
    assert meta["status"] == "finished" and meta["best_epoch"] == 1 and meta["resumed"] == [2]


class _Compiled(keras.callbacks.Callback):
    def on_train_begin(self, logs=None) -> None:
        self.loss = self.model.loss.get_config()
        self.optimizer = self.model.optimizer.get_config()
        self.optimizer_class = type(self.model.optimizer).__name__


def test_the_compiled_loss_and_optimizer_follow_the_settings() -> None:
    probe = _Compiled()
    config = TrainConfig(architecture="mini_xception", batch_size=32, augment=False, precision="float32",
                         epochs=1, optimizer="adamw", learning_rate=0.002, weight_decay=0.05, label_smoothing=0.1,
                         early_stopping_patience=0, lr_schedule="cosine", warmup_epochs=0)
    train(tiny_dataset(140, 35), config, store=ModelStore(), callbacks=[probe])
    assert probe.loss["label_smoothing"] == pytest.approx(0.1)
    assert probe.optimizer_class == "AdamW"
    assert probe.optimizer["weight_decay"] == pytest.approx(0.05)
    assert probe.optimizer["learning_rate"] == pytest.approx(0.002, rel=1e-5)


def test_class_weights_are_balanced_on_the_training_labels() -> None:
    from sklearn.utils.class_weight import compute_class_weight

    ds = tiny_dataset(350, 35)
    keep = np.concatenate([np.flatnonzero(ds.splits["train"].labels != 3),
                           np.flatnonzero(ds.splits["train"].labels == 3)[:10]])  # happy made rare
    train_split = ds.splits["train"]
    ds.splits["train"] = type(train_split)(train_split.images[keep], train_split.labels[keep],
                                           train_split.sources[keep])
    store = ModelStore()
    config = TrainConfig(architecture="mini_xception", batch_size=32, augment=False, precision="float32", epochs=1,
                         class_weights=True, validation="test", early_stopping_patience=0)
    run_id = train(ds, config, store=store)
    weights = {int(k): v for k, v in store.read_meta(run_id)["class_weight"].items()}
    labels = ds.splits["train"].labels
    expected = compute_class_weight("balanced", classes=np.arange(7), y=labels)
    assert [weights[k] for k in range(7)] == pytest.approx(list(expected), rel=1e-4)
    assert weights[3] > 2 * weights[0]  # the rare class weighs more
