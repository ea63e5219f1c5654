"""Camera-shift augmentation (--camera-augment): each shift, both training feeds, the setting."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.training.camera_shifts import KINDS, camera_shifts, shift_image


def faces(n: int = 8) -> np.ndarray:
    """Smooth, asymmetric float32 faces-like images (B, 48, 48, 1) in [0.2, 0.8]."""
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    return np.stack([np.roll(base, 3 * i, axis=1) for i in range(n)])[..., None].astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
def test_each_shift_changes_the_face_and_stays_an_image(kind: str) -> None:
    img = faces(1)[0, ..., 0]
    outs = [shift_image(img, kind, np.random.default_rng(seed)) for seed in range(5)]  # random strengths
    out = outs[0]
    assert all(o.shape == img.shape and o.dtype == np.float32 for o in outs)
    assert np.mean([np.abs(o - img).mean() for o in outs]) > 0.003, kind
    if kind == "band":
        assert (out == 0).all(axis=1).sum() >= 5  # whole rows blacked out


def test_half_the_batch_is_shifted_reproducibly_and_within_range() -> None:
    x = faces(400)
    a = camera_shifts(x, np.random.default_rng(7))
    b = camera_shifts(x, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    changed = np.abs(a - x).reshape(len(x), -1).mean(axis=1) > 1e-4
    assert 0.4 < changed.mean() < 0.6  # CAMERA_PROBABILITY of the faces
    assert np.array_equal(x, faces(400))  # the input is left as it is
    assert np.array_equal(camera_shifts(x, np.random.default_rng(7), probability=0.0), x)
    with pytest.raises(ValueError, match="unknown camera shift"):
        shift_image(x[0, ..., 0], "sepia", np.random.default_rng(0))


def test_both_training_feeds_apply_it_only_when_asked() -> None:
    from fer_core.training.feeding import array_batches
    from fer_core.training.pipeline import make_dataset

    x = (faces(64)[..., 0] * 255).astype(np.uint8)
    y = np.arange(64) % 7
    for make in (make_dataset, array_batches):
        plain = np.asarray(make(x, y, 64, training=True, augment=False, seed=3)[0][0] if make is array_batches
                           else next(iter(make(x, y, 64, training=True, augment=False, seed=3)))[0])
        feed = make(x, y, 64, training=True, augment=False, seed=3, camera_augment=True)
        shifted = np.asarray(feed[0][0] if make is array_batches else next(iter(feed))[0])
        assert shifted.shape == plain.shape and shifted.min() >= 0 and shifted.max() <= 1
        same_order = np.sort(plain.reshape(64, -1).mean(axis=1))
        assert not np.allclose(np.sort(shifted.reshape(64, -1).mean(axis=1)), same_order, atol=1e-4), make.__name__
        evaluation = make(x, y, 64, training=False, camera_augment=True)  # never on validation batches
        ev = np.asarray(evaluation[0][0] if make is array_batches else next(iter(evaluation))[0])
        assert np.allclose(ev, x[..., None] / 255.0, atol=1e-6)


def test_the_setting_is_a_training_option() -> None:
    from fer_core.errors import FerError
    from fer_core.training.config import TrainConfig

    assert TrainConfig.from_settings({"camera_augment": True}).camera_augment is True
    assert TrainConfig().camera_augment is False
    with pytest.raises(FerError, match="camera_augment must be true or false"):
        TrainConfig.from_settings({"camera_augment": "yes please"})
