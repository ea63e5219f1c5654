"""Training input for any Keras backend: tf.data under TensorFlow, a NumPy `PyDataset` elsewhere.

`make_feed(...)` takes the same arguments as fer_core.training.pipeline.make_dataset. Under the
TensorFlow backend it returns that tf.data pipeline; under JAX or PyTorch (a GPU machine without
TensorFlow, see docs/train_on_gpu.py) it returns `array_batches(...)`: the same batches, targets (one-hot or soft),
ragged-last-batch rule and augmentation (flip, rotation, shift, zoom with reflected borders, random
erasing filled with noise, camera shifts: fer_core.training.camera_shifts; mixup and CutMix:
fer_core.training.mixing), computed with NumPy and OpenCV in worker threads. Nothing here imports
TensorFlow unless the backend is TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fer_core.training import config
from fer_core.training.camera_shifts import camera_shifts
from fer_core.training.mixing import batch_targets, check_targets, mix_batch
from fer_core.training.split import check_batch_arrays

WORKERS = 4


def keras_backend() -> str:
    import keras

    return str(keras.backend.backend())


def make_feed(
    images_uint8: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    training: bool,
    augment: bool = False,
    random_erasing: bool = False,
    seed: int = 1234,
    sample_weights: np.ndarray | None = None,
    num_classes: int = 7,
    camera_augment: bool = False,
    soft_targets: np.ndarray | None = None,
    mixup: float = 0.0,
    cutmix: float = 0.0,
) -> Any:
    """Batches for `model.fit` on the active Keras backend (see the module docstring)."""
    kwargs = dict(training=training, augment=augment, random_erasing=random_erasing, seed=seed,
                  sample_weights=sample_weights, num_classes=num_classes, camera_augment=camera_augment,
                  soft_targets=soft_targets, mixup=mixup, cutmix=cutmix)
    if keras_backend() == "tensorflow":
        from fer_core.training.pipeline import make_dataset

        return make_dataset(images_uint8, labels, batch_size, **kwargs)
    return array_batches(images_uint8, labels, batch_size, **kwargs)


def affine_matrices(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """(n, 2, 3) output->input affine maps: a random flip, rotation, zoom and shift per image."""
    flip = rng.random(n) < 0.5
    angle = rng.uniform(-config.ROTATION_DEG, config.ROTATION_DEG, n) * (math.pi / 180.0)
    zoom = rng.uniform(1.0 - config.ZOOM_FRACTION, 1.0 + config.ZOOM_FRACTION, n)
    dx = rng.uniform(-config.SHIFT_FRACTION, config.SHIFT_FRACTION, n) * width
    dy = rng.uniform(-config.SHIFT_FRACTION, config.SHIFT_FRACTION, n) * height
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    sx = np.where(flip, -1.0, 1.0) * zoom
    cos, sin = np.cos(angle), np.sin(angle)
    a0, a1, b0, b1 = cos * sx, -sin * zoom, sin * sx, cos * zoom
    a2 = cx - a0 * cx - a1 * cy + dx
    b2 = cy - b0 * cx - b1 * cy + dy
    return np.stack([np.stack([a0, a1, a2], 1), np.stack([b0, b1, b2], 1)], 1).astype(np.float32)


def augment_images(x: np.ndarray, rng: np.random.Generator, random_erasing: bool = False) -> np.ndarray:
    """Augment float32 (B, H, W, C) images in [0, 1] (a new array; `x` is left as it is)."""
    import cv2

    n, h, w = x.shape[:3]
    out = np.empty_like(x)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for i, m in enumerate(affine_matrices(rng, n, h, w)):
        warped = cv2.warpAffine(x[i], m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
        out[i] = warped.reshape(out[i].shape)
    if random_erasing:
        erase(out, rng)
    return np.clip(out, 0.0, 1.0, out=out)


def erase(x: np.ndarray, rng: np.random.Generator) -> None:
    """Random erasing in place: with probability config.ERASE_PROBABILITY per image, a rectangle of noise."""
    n, h, w = x.shape[:3]
    apply = rng.random(n) < config.ERASE_PROBABILITY
    area = rng.uniform(*config.ERASE_AREA, n) * h * w
    ratio = np.exp(rng.uniform(math.log(config.ERASE_ASPECT[0]), math.log(config.ERASE_ASPECT[1]), n))
    eh = np.minimum(np.round(np.sqrt(area * ratio)), h).astype(int)
    ew = np.minimum(np.round(np.sqrt(area / ratio)), w).astype(int)
    for i in np.flatnonzero(apply):
        y0 = int(rng.integers(0, h - eh[i] + 1))
        x0 = int(rng.integers(0, w - ew[i] + 1))
        patch = x[i, y0:y0 + eh[i], x0:x0 + ew[i]]
        patch[...] = rng.random(patch.shape, dtype=np.float32)


def array_batches(*args: Any, **kwargs: Any) -> Any:
    """A `keras.utils.PyDataset` of (images, targets[, weights]) batches; arguments as make_feed's
    (plus `workers`, threads that prepare batches ahead).

    Training batches are reshuffled every epoch (seeded by `seed` and the epoch) and the ragged last
    batch is dropped; augmentation draws from a generator seeded by (seed, epoch, batch), so worker
    threads do not change the result. Evaluation batches keep every image in order.
    """
    return _array_batches_class()(*args, **kwargs)


_CLASS: type | None = None


def _array_batches_class() -> type:
    """The PyDataset subclass behind array_batches (built on first use: Keras is imported lazily)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import keras

    base = keras.utils.PyDataset

    class _ArrayBatches(base):  # type: ignore[misc, valid-type]
        def __init__(self, images_uint8: np.ndarray, labels: np.ndarray, batch_size: int, training: bool,
                     augment: bool = False, random_erasing: bool = False, seed: int = 1234,
                     sample_weights: np.ndarray | None = None, num_classes: int = 7,
                     camera_augment: bool = False, soft_targets: np.ndarray | None = None, mixup: float = 0.0,
                     cutmix: float = 0.0, workers: int = WORKERS) -> None:
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=16)
            self.x, self.y, self.w = check_batch_arrays(images_uint8, labels, batch_size, sample_weights, num_classes)
            self.num_classes = int(num_classes)
            self.batch_size, self.training, self.seed = int(batch_size), bool(training), int(seed)
            self.augment, self.random_erasing = bool(training and augment), bool(training and random_erasing)
            self.camera = bool(training and camera_augment)
            self.soft = None if soft_targets is None else check_targets(soft_targets, len(self.y), self.num_classes)
            self.mixup, self.cutmix = (float(mixup), float(cutmix)) if training else (0.0, 0.0)
            self.drop = bool(training and len(self.y) >= self.batch_size)
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> np.ndarray:
            if not self.training:
                return np.arange(len(self.y))
            return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.y))

        def __len__(self) -> int:
            n = len(self.y)
            return n // self.batch_size if self.drop else math.ceil(n / self.batch_size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
            idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
            images = self.x[idx].astype(np.float32) / 255.0
            rng = np.random.default_rng((self.seed, self.epoch, int(i)))
            if self.augment:
                images = augment_images(images, rng, random_erasing=self.random_erasing)
            elif self.random_erasing:
                erase(images, rng)
            if self.camera:
                images = camera_shifts(images, rng)
            targets = batch_targets(self.y[idx], self.num_classes, None if self.soft is None else self.soft[idx])
            weights = None if self.w is None else self.w[idx]
            if self.mixup > 0 or self.cutmix > 0:
                images, targets, weights = mix_batch(images, targets, rng, mixup=self.mixup, cutmix=self.cutmix,
                                                     weights=weights)
            return (images, targets) if weights is None else (images, targets, weights)

        def on_epoch_end(self) -> None:
            # Called once the epoch's batches are consumed and the worker threads stopped.
            self.epoch += 1
            self.order = self._order()

    _CLASS = _ArrayBatches
    return _CLASS
