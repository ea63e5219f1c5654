"""Camera shifts as training augmentation (`--camera-augment`): what webcams and phones do to faces.

FER-2013's faces are clean crops; a webcam's are blurred, compressed, dim, noisy, small or partly
covered (benchmarks/robustness.py measures every shipped model under those shifts). With
`camera_augment`, each training image gets, with probability CAMERA_PROBABILITY, one shift drawn
at random with a random strength: Gaussian blur (sigma 0.5-2), motion blur (3-9 px, any
direction), JPEG (quality 15-60), brightness (x0.5-1.5), contrast (x0.5-1.5), sensor noise
(sigma 3-20 of 255), low resolution (16-36 px and back), a black band over the eyes or the mouth.
The detector's box (shift, tighter, looser) is the affine augmentation's job (shift and zoom).

One NumPy / OpenCV implementation serves both training feeds: the NumPy feed calls it directly,
the tf.data feed through `tf.numpy_function` with a seed drawn per batch, so both give the
same kind of images. Deterministic for a given generator.
"""

from __future__ import annotations

import cv2
import numpy as np

CAMERA_PROBABILITY = 0.5
KINDS = ("gaussian_blur", "motion_blur", "jpeg", "brightness", "contrast", "noise", "low_resolution", "band")


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    m = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    k = cv2.warpAffine(k, m, (length, length))
    return k / max(float(k.sum()), 1e-6)


def shift_image(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One float32 (H, W) image in [0, 1] through one camera shift of random strength."""
    h, w = img.shape
    if kind == "gaussian_blur":
        return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 2.0)))
    if kind == "motion_blur":
        kernel = _motion_kernel(int(rng.integers(1, 5)) * 2 + 1, float(rng.uniform(0, 180)))
        return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    if kind == "jpeg":
        u8 = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        _, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 61))])
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    if kind == "brightness":
        return img * float(rng.uniform(0.5, 1.5))
    if kind == "contrast":
        mean = float(img.mean())
        return (img - mean) * float(rng.uniform(0.5, 1.5)) + mean
    if kind == "noise":
        return img + rng.normal(0.0, rng.uniform(3, 20) / 255.0, img.shape).astype(np.float32)
    if kind == "low_resolution":
        side = int(rng.integers(16, 37))
        small = cv2.resize(img, (side, side * h // w), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == "band":
        out = img.copy()
        top = (0.31 if rng.random() < 0.5 else 0.66) * h + rng.uniform(-0.04, 0.04) * h
        height = rng.uniform(0.12, 0.22) * h
        out[int(top):int(top + height), :] = 0.0
        return out
    raise ValueError(f"unknown camera shift {kind!r}")


def camera_shifts(x: np.ndarray, rng: np.random.Generator, probability: float = CAMERA_PROBABILITY) -> np.ndarray:
    """float32 (B, H, W, C) images in [0, 1] -> a new array where each image, with `probability`,
    went through one random camera shift (colour images: the same shift on each channel)."""
    out = np.array(x, dtype=np.float32, copy=True)
    apply = rng.random(len(out)) < probability
    kinds = rng.integers(0, len(KINDS), len(out))
    for i in np.flatnonzero(apply):
        seed = int(rng.integers(0, 2**31 - 1))
        for c in range(out.shape[-1]):
            out[i, ..., c] = shift_image(out[i, ..., c], KINDS[kinds[i]], np.random.default_rng(seed))
    return np.clip(out, 0.0, 1.0, out=out)


def camera_shifts_seeded(x: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """`camera_shifts` with a generator from an integer seed array (the tf.data feed's numpy_function)."""
    return camera_shifts(x, np.random.default_rng([int(s) for s in np.ravel(seed)]))
