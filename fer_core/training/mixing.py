"""Mixup and CutMix of training batches (`--mixup ALPHA`, `--cutmix ALPHA`), and soft targets.

Both draw a weight `lam` from Beta(alpha, alpha) per batch and pair every image with another of
the same batch (a random permutation):
- mixup blends the two images, `lam * a + (1 - lam) * b`;
- CutMix pastes a random rectangle of `b` into `a`, `lam` being the share of `a` left.
The targets (one-hot labels or a teacher's soft labels, fer_core.training.distill) are blended
with the same `lam`, and so are sample weights. With both on, each batch gets one of the two at
random. Neither touches validation batches.

One NumPy implementation serves both training feeds, as camera shifts do: the NumPy feed calls
`mix_batch` directly, tf.data through `tf.numpy_function` (`mix_batch_seeded`). Deterministic
for a given generator.
"""

from __future__ import annotations

import numpy as np


def check_targets(targets: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    """Soft targets as float32 (n, num_classes): finite, non-negative rows summing to 1; ValueError otherwise."""
    t = np.asarray(targets, dtype=np.float32)
    if t.shape != (n, num_classes):
        raise ValueError(f"soft targets must have shape ({n}, {num_classes}); got {t.shape}")
    if n and (not np.isfinite(t).all() or t.min() < 0 or np.abs(t.sum(axis=1) - 1.0).max() > 1e-3):
        raise ValueError("soft targets must be probabilities: finite, non-negative, each row summing to 1")
    return t


def batch_targets(labels: np.ndarray, num_classes: int, soft: np.ndarray | None = None) -> np.ndarray:
    """Targets of a batch: `soft` where given (already checked), one-hot labels otherwise."""
    if soft is not None:
        return np.asarray(soft, dtype=np.float32)
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


def _cut_box(rng: np.random.Generator, h: int, w: int, lam: float) -> tuple[int, int, int, int]:
    """A rectangle of about (1 - lam) of the image, centred at a random point, clipped to the image."""
    ratio = np.sqrt(1.0 - lam)
    ch, cw = int(round(h * ratio)), int(round(w * ratio))
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + (ch - ch // 2), h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + (cw - cw // 2), w)
    return y0, y1, x0, x1


def mix_batch(images: np.ndarray, targets: np.ndarray, rng: np.random.Generator, *, mixup: float = 0.0,
              cutmix: float = 0.0, weights: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Mixup or CutMix of a float32 (B, H, W, C) batch and its (B, K) targets (new arrays).

    `mixup` and `cutmix` are the Beta distribution's alpha (0: that kind off). Returns the images,
    the targets and the sample weights (None when none were given), mixed with the same weight.
    """
    kinds = [k for k, a in (("mixup", mixup), ("cutmix", cutmix)) if a > 0]
    n = len(images)
    if not kinds or n < 2:
        return images, targets, weights
    kind = kinds[int(rng.integers(0, len(kinds)))] if len(kinds) > 1 else kinds[0]
    alpha = mixup if kind == "mixup" else cutmix
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(n)
    if kind == "mixup":
        out = (lam * images + (1.0 - lam) * images[perm]).astype(np.float32)
    else:
        h, w = images.shape[1:3]
        y0, y1, x0, x1 = _cut_box(rng, h, w, lam)
        out = np.array(images, dtype=np.float32, copy=True)
        out[:, y0:y1, x0:x1] = images[perm, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)  # the share of each image actually kept
    mixed = (lam * targets + (1.0 - lam) * targets[perm]).astype(np.float32)
    if weights is not None:
        weights = (lam * weights + (1.0 - lam) * weights[perm]).astype(np.float32)
    return out, mixed, weights


def mix_batch_seeded(images: np.ndarray, targets: np.ndarray, weights: np.ndarray, seed: np.ndarray,
                     mixup: float, cutmix: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mix_batch for tf.numpy_function: a generator from the batch's stateless seed (two ints); the
    weights are always given (ones where the run has none)."""
    rng = np.random.default_rng([int(v) for v in np.asarray(seed).reshape(-1)] + [7])
    out, mixed, w = mix_batch(np.asarray(images, np.float32), np.asarray(targets, np.float32), rng,
                              mixup=float(mixup), cutmix=float(cutmix), weights=np.asarray(weights, np.float32))
    assert w is not None
    return out, mixed, w
