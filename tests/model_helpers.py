"""Small datasets for the model/training/evaluation tests (no TensorFlow import here).

`demo_dataset()` is fer_core.data's synthetic demo set when that package exists; else a
learnable synthetic set built here with the same shape (Dataset-like: splits of uint8
(N, 48, 48) images, FER_LABELS indices and sources).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from fer_core.paths import PROJECT_ROOT


@dataclass
class TinySplit:
    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray


@dataclass
class TinyDataset:
    name: str
    splits: dict[str, TinySplit]
    fingerprint: str
    synthetic: bool = True
    report: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(source="tests"))


def pattern_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """One easy-to-learn texture per class (stripes of 3 frequencies x 2 orientations, checks)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    out = np.empty((n, 48, 48), dtype=np.uint8)
    for i, k in enumerate(labels):
        phase = rng.uniform(0, 2 * np.pi)
        freq = (2, 4, 7)[int(k) % 3] * 2 * np.pi / 48
        if k < 3:
            img = np.sin(freq * yy + phase)
        elif k < 6:
            img = np.sin(freq * xx + phase)
        else:
            img = np.sign(np.sin(4 * 2 * np.pi / 48 * yy + phase) * np.sin(4 * 2 * np.pi / 48 * xx))
        img = 128 + 70 * img + rng.normal(0, 25, (48, 48))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def tiny_dataset(n_train: int = 420, n_test: int = 140, seed: int = 0) -> TinyDataset:
    rng = np.random.default_rng(seed)
    splits = {}
    for name, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        y = np.arange(n) % 7
        rng.shuffle(y)
        splits[name] = TinySplit(pattern_images(y, s), y.astype(np.int64),
                                 np.array([f"{name} {i}" for i in range(n)]))
    return TinyDataset("tiny-patterns", splits, f"tiny-{seed}-{n_train}-{n_test}")


def demo_dataset():
    """The project's synthetic demo set."""
    from fer_core.data import load_demo

    return load_demo()


def train_demo_run(root):
    """(store, run_id, dataset) of one short real training on the demo set into the store at `root`.

    mini_xception, a few epochs (DEMO_TRAIN): the training and evaluation tests share one, through
    the session fixture `demo_run` (tests/conftest.py), so the suite trains once.
    """
    from fer_core.store.runs import ModelStore
    from fer_core.training.config import TrainConfig
    from fer_core.training.loop import train

    store = ModelStore(root)
    ds = demo_dataset()
    run_id = train(ds, TrainConfig(**DEMO_TRAIN), store=store)
    return store, run_id, ds


# The short training the tests use: the whole demo train split (1,680 images after the 20%
# validation split), no augmentation (the demo faces already vary in pose), 6 epochs: about
# 30 s on 2 cores and ~0.85 test accuracy on the demo set (chance: 0.14).
DEMO_TRAIN = dict(
    architecture="mini_xception",
    epochs=6,
    batch_size=64,
    learning_rate=3e-3,
    augment=False,
    early_stopping_patience=4,
    reduce_lr_patience=2,
    seed=7,
    name="test run",
)


def stop_after_epoch(store, epoch: int):
    """A Keras callback that requests a stop (STOP file) at the end of `epoch` (1-based): that epoch is
    complete. Set its `run_id` once the run has one (train's on_start)."""
    import keras

    class StopAfterEpoch(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.run_id = None

        def on_epoch_end(self, e: int, logs=None) -> None:
            if e + 1 == epoch:
                store.request_stop(self.run_id)

    return StopAfterEpoch()


# The models shipped in models/ (their tests: test_shipped_models.py, test_model_import.py).
SHIPPED_ROOT = PROJECT_ROOT / "models"
SHIPPED = sorted(p.parent.name for p in SHIPPED_ROOT.glob("*/meta.json") if json.loads(p.read_text()).get("shipped"))
