"""The backend-agnostic training feed (fer_core.training.feeding) and the engine running on it.

Under TensorFlow make_feed is the tf.data pipeline; under JAX / PyTorch it is array_batches, a
keras.utils.PyDataset. Both are exercised here on the TensorFlow backend (PyDataset runs on every
backend); a JAX run of the engine is checked where JAX is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_core.data import load_demo
from fer_core.store.runs import ModelStore
from fer_core.training import callbacks as callbacks_module
from fer_core.training import config as training_config
from fer_core.training import feeding
from fer_core.training.config import TrainConfig
from fer_core.training.feeding import array_batches, augment_images, erase, make_feed
from fer_core.training.loop import select_strategy, train

ROOT = Path(__file__).resolve().parents[1]


def _data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:48, 0:48]
    base = ((xx * 3 + yy * 2) % 256).astype(np.uint8)  # asymmetric, so a flip shows
    images = np.stack([np.roll(base, i, axis=1) for i in range(n)])
    return images, np.arange(n) % 7


def test_make_feed_is_tf_data_under_tensorflow() -> None:
    import tensorflow as tf

    x, y = _data()
    assert isinstance(make_feed(x, y, 16, training=True, augment=True), tf.data.Dataset)


def test_eval_batches_keep_every_image_in_order() -> None:
    x, y = _data(37)
    feed = array_batches(x, y, 16, training=False)
    assert len(feed) == 3
    batches = [feed[i] for i in range(len(feed))]
    assert [b[0].shape for b in batches] == [(16, 48, 48, 1), (16, 48, 48, 1), (5, 48, 48, 1)]
    images = np.concatenate([b[0] for b in batches])
    np.testing.assert_allclose(images[..., 0], x / 255.0, atol=1e-6)
    onehot = np.concatenate([b[1] for b in batches])
    assert onehot.dtype == np.float32 and onehot.shape == (37, 7)
    np.testing.assert_array_equal(onehot.argmax(1), y)


def test_training_batches_shuffle_per_epoch_drop_ragged_and_are_reproducible() -> None:
    x, y = _data(37)
    w = np.linspace(0.5, 2.0, 37).astype(np.float32)
    feed = array_batches(x, y, 16, training=True, seed=5, sample_weights=w)
    assert len(feed) == 2  # 37 // 16: the ragged batch is dropped
    first = [feed[i] for i in range(len(feed))]
    again = array_batches(x, y, 16, training=True, seed=5, sample_weights=w)
    for a, b in zip(first, (again[i] for i in range(2))):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    labels = first[0][1].argmax(1)
    # Each image still carries its own label and weight.
    for img, label, weight in zip(first[0][0], labels, first[0][2]):
        src = int(np.argmin(np.abs(x / 255.0 - img[..., 0]).sum(axis=(1, 2))))
        assert y[src] == label and w[src] == weight
    feed.on_epoch_end()
    assert not np.array_equal(feed[0][0], first[0][0])  # a new order next epoch


def test_augmentation_flips_and_warps_within_range(monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = _data(64)
    images = x[..., None].astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    out = augment_images(images, rng, random_erasing=True)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.mean([np.abs(o - i).mean() > 1e-3 for o, i in zip(out, images)]) > 0.9
    np.testing.assert_array_equal(images, x[..., None].astype(np.float32) / 255.0)  # the input is left alone
    # With rotation, shift and zoom off, every image is itself or its exact mirror.
    for name in ("ROTATION_DEG", "SHIFT_FRACTION", "ZOOM_FRACTION"):
        monkeypatch.setattr(training_config, name, 0.0)
    out = augment_images(images, np.random.default_rng(1))
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-5) for o, i in zip(out, images)]
    same = [np.allclose(o, i, atol=1e-5) for o, i in zip(out, images)]
    assert all(m or s for m, s in zip(mirrored, same))
    assert 10 < sum(mirrored) < 54


def test_random_erasing_fills_one_rectangle_of_bounded_area(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training_config, "ERASE_PROBABILITY", 1.0)
    x = np.zeros((50, 48, 48, 1), np.float32)
    erase(x, np.random.default_rng(0))
    for img in x[..., 0]:
        rows, cols = np.nonzero(img)
        assert len(rows) > 0
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 0.01 * 48 * 48 <= h * w <= 0.25 * 48 * 48


def test_engine_trains_on_the_numpy_feed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The whole engine on array_batches (as under JAX): it learns, saves, and the run is complete."""
    monkeypatch.setattr(feeding, "keras_backend", lambda: "jax")
    made: list[object] = []
    real = feeding.array_batches
    monkeypatch.setattr(feeding, "array_batches", lambda *a, **k: made.append(1) or real(*a, **k))
    store = ModelStore(tmp_path / "store")
    config = TrainConfig(architecture="mini_xception", epochs=3, batch_size=32, max_train_images=700,
                         random_erasing=True, precision="float32", learning_rate=3e-3)
    run_id = train(load_demo(), config, store)
    meta = store.read_meta(run_id)
    assert len(made) == 2  # train and validation feeds
    assert meta["status"] == "finished" and len(meta["history"]) == 3
    assert meta["history"][-1]["loss"] < meta["history"][0]["loss"]
    assert store.model_path(run_id).is_file()
    assert type(select_strategy()).__name__ == "_NoStrategy"


def test_resume_checkpoints_follow_the_interval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    saved: list[int] = []
    real = callbacks_module.save_last
    monkeypatch.setattr(callbacks_module, "save_last",
                        lambda store, run_id, model, epoch, loop: saved.append(epoch) or real(store, run_id, model, epoch, loop))
    config = TrainConfig(architecture="mini_xception", epochs=4, batch_size=32, max_train_images=300,
                         precision="float32")
    train(load_demo(), config, ModelStore(tmp_path / "store"), checkpoint_every_s=1e9)
    assert saved == [1, 4]  # the first, then only the last planned epoch
    saved.clear()
    train(load_demo(), config, ModelStore(tmp_path / "store2"))  # default: after every epoch
    assert saved == [1, 2, 3, 4]


def test_gpu_tool_packs_the_train_split_with_its_identity(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(ROOT / "docs" / "train_on_gpu.py"), "pack", "demo", str(tmp_path / "p")],
                   check=True, env=env, capture_output=True, timeout=300)
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import train_on_gpu
    finally:
        sys.path.remove(str(ROOT / "docs"))
    packed = train_on_gpu.load_packed(tmp_path / "p")
    demo = load_demo()
    assert json.loads((tmp_path / "p" / "dataset.json").read_text())["fingerprint"] == demo.fingerprint
    assert packed.fingerprint == demo.fingerprint and packed.synthetic is True
    assert list(packed.splits) == ["train"]
    np.testing.assert_array_equal(packed.splits["train"].images, demo.splits["train"].images)
    np.testing.assert_array_equal(packed.splits["train"].labels, demo.splits["train"].labels)


def test_engine_trains_on_jax_and_the_model_serves_under_tensorflow(tmp_path: Path) -> None:
    """The path that made the shipped default: the engine trains under KERAS_BACKEND=jax (the NumPy feed, no
    tf.data) in a subprocess (and a second run distilled from the first, with mixup and CutMix), and the stored model loads and predicts here under TensorFlow. jax is in
    requirements.txt; under CI=true a missing jax is a failure, not a skip."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("jax is not installed: requirements.txt installs it for this test")
        pytest.skip("jax is not installed")
    code = (
        "import keras\n"
        "from fer_core.data import load_demo\n"
        "from fer_core.store.runs import ModelStore\n"
        "from fer_core.training import feeding\n"
        "from fer_core.training.config import TrainConfig\n"
        "from fer_core.training.loop import train\n"
        f"s = ModelStore({str(tmp_path / 'store')!r})\n"
        "r = train(load_demo(), TrainConfig(architecture='mini_xception', epochs=2, batch_size=32,"
        " max_train_images=300, precision='float32'), s)\n"
        "d = train(load_demo(), TrainConfig(architecture='mini_xception', epochs=1, batch_size=32, max_train_images=300,"
        " precision='float32', teachers=[r], mixup=0.2, cutmix=1.0), s)\n"  # distilled, mixed: JAX too
        "t = s.read_meta(d)['teachers']\n"
        "assert t['runs'] == [r] and 0 <= t['val_accuracy'] <= 1 and s.read_meta(d)['status'] == 'finished', t\n"
        "print(keras.backend.backend(), feeding.keras_backend(), r, s.read_meta(r)['status'])\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    backend, feed_backend, run_id, status = out.stdout.strip().splitlines()[-1].split()
    assert (backend, feed_backend, status) == ("jax", "jax", "finished")
    store = ModelStore(tmp_path / "store")
    assert [e["epoch"] for e in store.history(run_id)] == [1, 2]
    from fer_core.inference.classifier import EmotionClassifier

    probs = EmotionClassifier.from_store(store, run_id, warm_up_to=0).predict_proba(list(load_demo().splits["test"].images[:8]))
    assert probs.shape == (8, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
