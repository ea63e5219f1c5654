"""tf.data input pipelines for training and evaluation.

Autotune is DISABLED on every dataset built here, with fixed parallelism and prefetch:
with autotune on, about half the epochs on a 2-core CPU ended with an 18-47 s idle stall
while the iterator was torn down (see ../shared/NOTES.md).

Elements are ``(images, targets)`` or ``(images, targets, sample_weights)``: images float32
(B, 48, 48, 1) scaled to [0, 1] (PREPROCESSING), targets float32 (B, K): one-hot labels, or a
teacher's soft labels (fer_core.training.distill), mixed by mixup / CutMix where asked
(fer_core.training.mixing).

Augmentation (training only, per image): horizontal flip, rotation (+-10 deg), shift
(+-10%), zoom (+-10%) in one affine warp with reflected borders, and optional random
erasing (cutout filled with noise). Randomness is seeded and differs from epoch to epoch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from fer_core.preprocess import DEFAULT_PREPROCESSING
from fer_core.training.camera_shifts import camera_shifts_seeded
from fer_core.training.mixing import batch_targets, check_targets, mix_batch_seeded
from fer_core.training.config import (
    ERASE_AREA,
    ERASE_ASPECT,
    ERASE_PROBABILITY,
    ROTATION_DEG,
    SHIFT_FRACTION,
    ZOOM_FRACTION,
)
from fer_core.training.split import check_batch_arrays

PREPROCESSING: dict[str, str] = dict(DEFAULT_PREPROCESSING)
PARALLEL_CALLS = 2
PREFETCH = 2


def pipeline_options() -> tf.data.Options:
    """Options every fer_core dataset uses: autotune off (the stall fix), deterministic order."""
    opts = tf.data.Options()
    opts.autotune.enabled = False
    opts.deterministic = True
    return opts


def _affine_transforms(batch: tf.Tensor, height: int, width: int, seed: tf.Tensor) -> tf.Tensor:
    """Per-image projective transforms (output -> input mapping) for flip+rotate+shift+zoom."""
    n = tf.shape(batch)[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    flip = tf.random.stateless_uniform([n], seeds[0]) < 0.5
    angle = tf.random.stateless_uniform([n], seeds[1], -ROTATION_DEG, ROTATION_DEG) * (math.pi / 180.0)
    zoom = tf.random.stateless_uniform([n], seeds[2], 1.0 - ZOOM_FRACTION, 1.0 + ZOOM_FRACTION)
    dx = tf.random.stateless_uniform([n], seeds[3], -SHIFT_FRACTION, SHIFT_FRACTION) * width
    dy = tf.random.stateless_uniform([n], seeds[4], -SHIFT_FRACTION, SHIFT_FRACTION) * height
    cx = (width - 1) / 2.0
    cy = (height - 1) / 2.0
    # Output pixel (x, y) samples the input at A @ (x - c) + c + shift, where A combines
    # a horizontal flip, a rotation and a zoom (zoom > 1 samples a larger area: zoom out).
    sx = tf.where(flip, -1.0, 1.0) * zoom
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0 = cos * sx
    a1 = -sin * zoom
    b0 = sin * sx
    b1 = cos * zoom
    a2 = cx - a0 * cx - a1 * cy + dx
    b2 = cy - b0 * cx - b1 * cy + dy
    zeros = tf.zeros([n])
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _random_erasing(x: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Cutout: with probability ERASE_PROBABILITY per image, fill a random rectangle with noise."""
    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 6)
    apply = tf.random.stateless_uniform([n], seeds[0]) < ERASE_PROBABILITY
    area = tf.random.stateless_uniform([n], seeds[1], *ERASE_AREA) * hf * wf
    log_r = tf.random.stateless_uniform([n], seeds[2], math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1]))
    ratio = tf.exp(log_r)
    eh = tf.minimum(tf.round(tf.sqrt(area * ratio)), hf)
    ew = tf.minimum(tf.round(tf.sqrt(area / ratio)), wf)
    y0 = tf.floor(tf.random.stateless_uniform([n], seeds[3]) * (hf - eh + 1.0))
    x0 = tf.floor(tf.random.stateless_uniform([n], seeds[4]) * (wf - ew + 1.0))
    rows = tf.range(hf)[None, :]
    cols = tf.range(wf)[None, :]
    in_rows = (rows >= y0[:, None]) & (rows < (y0 + eh)[:, None])  # (n, h)
    in_cols = (cols >= x0[:, None]) & (cols < (x0 + ew)[:, None])  # (n, w)
    mask = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]
    noise = tf.random.stateless_uniform(tf.shape(x), seeds[5])
    return tf.where(mask[..., None], noise, x)


def augment_batch(x: tf.Tensor, seed: tf.Tensor, random_erasing: bool = False) -> tf.Tensor:
    """Augment a float32 (B, H, W, C) batch in [0, 1] with a stateless int seed of shape (2,)."""
    height, width = int(x.shape[1]), int(x.shape[2])
    seeds = tf.random.experimental.stateless_split(seed, 2)
    transforms = _affine_transforms(x, height, width, seeds[0])
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=transforms,
        output_shape=tf.constant([height, width], tf.int32),
        fill_value=tf.constant(0.0, tf.float32),
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    if random_erasing:
        x = _random_erasing(x, seeds[1])
    return tf.clip_by_value(x, 0.0, 1.0)


def make_dataset(
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
) -> tf.data.Dataset:
    """A batched tf.data.Dataset of (images, targets[, sample weights]).

    training=True shuffles every epoch (seeded), drops the ragged last batch and applies
    augmentation when `augment` (random erasing too when `random_erasing`); training=False
    keeps every image in order and never augments. `camera_augment` adds camera shifts
    (fer_core.training.camera_shifts, through tf.numpy_function: the NumPy feed's own code).
    `soft_targets` (N, K) replace the one-hot labels; `mixup` / `cutmix` (Beta alphas, 0: off) mix
    training batches (fer_core.training.mixing, the same way). Autotune is disabled; parallelism
    and prefetch are fixed to 2.
    """
    x, y, w = check_batch_arrays(images_uint8, labels, batch_size, sample_weights, num_classes)
    soft = None if soft_targets is None else check_targets(soft_targets, len(y), num_classes)
    t = batch_targets(y, num_classes, soft)
    tensors: tuple[Any, ...] = (x, t) if w is None else (x, t, w)

    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if training:
        ds = ds.shuffle(max(len(y), 1), seed=seed, reshuffle_each_iteration=True)
    # Training drops the ragged last batch (reshuffled each epoch, so every image still gets
    # used): constant batch shapes, no tiny noisy BatchNorm batches, and no batch sizes that
    # trip oneDNN gradient bugs (see architectures.mini_xception). Evaluation keeps every image.
    drop = bool(training and len(y) >= int(batch_size))
    ds = ds.batch(int(batch_size), drop_remainder=drop)

    do_augment = bool(training and augment)
    do_erase = bool(training and random_erasing)
    do_camera = bool(training and camera_augment)
    do_mix = bool(training and (mixup > 0 or cutmix > 0))

    def prepare(*batch: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return (tf.cast(batch[0], tf.float32) / 255.0, *batch[1:])

    if do_augment or do_erase or do_camera or do_mix:
        # One random int64 per batch, different in every epoch: stateless ops seeded by it.
        rng = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rng))

        def prepare_augmented(batch: tuple[tf.Tensor, ...], r: tf.Tensor) -> tuple[tf.Tensor, ...]:
            images, *rest = prepare(*batch)
            s = tf.stack([r, tf.constant(seed, tf.int64)])
            s = tf.cast(tf.math.floormod(s, 2**31 - 1), tf.int32)
            if do_augment:
                images = augment_batch(images, s, random_erasing=do_erase)
            elif do_erase:
                images = _random_erasing(images, s)
            if do_camera:
                shape = images.shape
                images = tf.numpy_function(camera_shifts_seeded, [images, s], tf.float32, stateful=False)
                images.set_shape(shape)
            if do_mix:
                images, rest = _mix(images, rest, s, float(mixup), float(cutmix))
            return (images, *rest)

        ds = ds.map(prepare_augmented, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    else:
        ds = ds.map(prepare, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    ds = ds.prefetch(PREFETCH)
    return ds.with_options(pipeline_options())


def _mix(images: tf.Tensor, rest: list[tf.Tensor], seed: tf.Tensor, mixup: float, cutmix: float
         ) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Mixup / CutMix of a batch through the NumPy implementation (weights, where given, mixed too)."""
    targets = rest[0]
    weights = rest[1] if len(rest) > 1 else tf.ones(tf.shape(targets)[:1], tf.float32)
    out, mixed, w = tf.numpy_function(mix_batch_seeded, [images, targets, weights, seed, mixup, cutmix],
                                      [tf.float32, tf.float32, tf.float32], stateful=False)
    out.set_shape(images.shape)
    mixed.set_shape(targets.shape)
    w.set_shape(weights.shape)
    return out, [mixed, w] if len(rest) > 1 else [mixed]
