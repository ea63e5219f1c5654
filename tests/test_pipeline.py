"""tf.data pipeline: autotune off, scaling, shapes, labels, augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.training.pipeline import PREPROCESSING, make_dataset


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    base = ((xx * 3 + yy * 2) % 256).astype(np.uint8)  # asymmetric, so a flip shows
    images = np.stack([np.roll(base, i, axis=1) for i in range(n)])
    return images, rng.integers(0, 7, n)


def test_autotune_disabled_and_fixed_parallelism() -> None:
    x, y = _data()
    for training in (True, False):
        ds = make_dataset(x, y, 16, training=training, augment=training, seed=1)
        assert ds.options().autotune.enabled is False


def test_eval_dataset_scales_and_keeps_order() -> None:
    x, y = _data(37)
    batches = list(make_dataset(x, y, 16, training=False))
    assert [b[0].shape[0] for b in batches] == [16, 16, 5]
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert images.shape == (37, 48, 48, 1) and images.dtype == np.float32
    np.testing.assert_allclose(images[..., 0], x / 255.0, atol=1e-6)
    assert labels.shape == (37, 7)
    np.testing.assert_array_equal(labels.argmax(1), y)
    assert PREPROCESSING == {"color": "grayscale", "scale": "0-1"}


def test_augmentation_changes_images_keeps_shape_and_labels() -> None:
    x, y = _data(64)
    ds = make_dataset(x, y, 64, training=True, augment=True, random_erasing=True, seed=3)
    images, onehot = (t.numpy() for t in next(iter(ds)))
    assert images.shape == (64, 48, 48, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    # Training shuffles: match every augmented image to its source via its label multiset.
    np.testing.assert_array_equal(np.sort(onehot.argmax(1)), np.sort(y))
    plain = x / 255.0
    changed = [min(np.abs(img[..., 0] - p).mean() for p in plain) > 1e-3 for img in images]
    assert np.mean(changed) > 0.9
    # Different augmentation every epoch, the same for the same seed.
    again = next(iter(ds))[0].numpy()
    assert not np.allclose(again, images)
    same = next(iter(make_dataset(x, y, 64, training=True, augment=True, random_erasing=True, seed=3)))[0]
    np.testing.assert_allclose(same.numpy(), images)


def test_no_augmentation_only_shuffles() -> None:
    x, y = _data(20)
    images, onehot = (t.numpy() for t in next(iter(make_dataset(x, y, 20, training=True, augment=False, seed=0))))
    order = [int(np.argmin([np.abs(img[..., 0] - p / 255.0).sum() for p in x])) for img in images]
    assert sorted(order) == list(range(20))
    np.testing.assert_allclose(images[..., 0], x[order] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(onehot.argmax(1), y[order])


def test_sample_weights_pass_through() -> None:
    x, y = _data(10)
    w = np.linspace(0.5, 2.0, 10)
    batch = next(iter(make_dataset(x, y, 10, training=False, sample_weights=w)))
    assert len(batch) == 3
    np.testing.assert_allclose(batch[2].numpy(), w, rtol=1e-6)


def test_bad_inputs() -> None:
    x, y = _data(10)
    with pytest.raises(ValueError, match="uint8"):
        make_dataset(x.astype(np.float32), y, 4, training=False)
    with pytest.raises(ValueError, match="labels"):
        make_dataset(x, y[:5], 4, training=False)
    with pytest.raises(ValueError, match="range"):
        make_dataset(x, y + 7, 4, training=False)


def test_training_drops_ragged_last_batch_evaluation_keeps_it() -> None:
    x, y = _data(37)
    assert [int(b[0].shape[0]) for b in make_dataset(x, y, 16, training=True)] == [16, 16]
    assert [int(b[0].shape[0]) for b in make_dataset(x, y, 64, training=True)] == [37]  # fewer than a batch
    assert [int(b[0].shape[0]) for b in make_dataset(x, y, 16, training=False)] == [16, 16, 5]
