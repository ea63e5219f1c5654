"""Turn face crops into model input, following the conventions a model's meta.json records.

preprocessing = {"color": "grayscale" | "rgb", "scale": "0-1" | "-1-1" | "0-255"}
with input_shape = [H, W, C]. Project models use grayscale 48x48 scaled to [0, 1].
The command line names the scalings with words (SCALE_WORDS: unit, symmetric, raw): argparse
reads `--scale -1-1` as an unknown option. meta.json keeps the spellings above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

DEFAULT_PREPROCESSING: dict[str, str] = {"color": "grayscale", "scale": "0-1"}
SCALES = ("0-1", "-1-1", "0-255")  # as stored in meta.json and export sidecars
SCALE_WORDS = {"unit": "0-1", "symmetric": "-1-1", "raw": "0-255"}  # the command line's names for SCALES


def canonical_scale(name: str) -> str:
    """A scaling's stored spelling from its word or its stored spelling: 'symmetric' -> '-1-1'."""
    key = str(name).strip().lower()
    if key in SCALES:
        return key
    if key in SCALE_WORDS:
        return SCALE_WORDS[key]
    raise ValueError(f"unknown pixel scaling {name!r}; choose one of "
                     + ", ".join(f"{w} ({v})" for w, v in SCALE_WORDS.items()))


def scale_word(scale: str) -> str:
    """The command line's word for a stored scaling: '-1-1' -> 'symmetric' (unknown ones unchanged)."""
    return next((w for w, v in SCALE_WORDS.items() if v == scale), scale)


def scale_pixels(x: np.ndarray, scale: str) -> np.ndarray:
    """uint8-range pixels -> float32 in the model's scale."""
    x = np.asarray(x, dtype=np.float32)
    if scale == "0-1":
        return x / 255.0
    if scale == "-1-1":
        return x / 127.5 - 1.0
    if scale == "0-255":
        return x
    raise ValueError(f"unknown pixel scale {scale!r}; expected one of {SCALES}")


def to_gray(img: np.ndarray, channel_order: str = "bgr") -> np.ndarray:
    """Any uint8 image (HxW, HxWx1, HxWx3 in `channel_order`, HxWx4) -> HxW grayscale uint8."""
    img = np.asarray(img)
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        code = cv2.COLOR_BGR2GRAY if channel_order == "bgr" else cv2.COLOR_RGB2GRAY
        return cv2.cvtColor(img, code)
    if img.ndim == 3 and img.shape[2] == 4:
        code = cv2.COLOR_BGRA2GRAY if channel_order == "bgr" else cv2.COLOR_RGBA2GRAY
        return cv2.cvtColor(img, code)
    raise ValueError(f"unsupported image shape {img.shape}")


def prepare_faces(
    faces: Sequence[np.ndarray] | np.ndarray,
    input_shape: Sequence[int] = (48, 48, 1),
    preprocessing: dict[str, Any] | None = None,
) -> np.ndarray:
    """Grayscale uint8 face crops (any size, or an (N,H,W) array) -> float32 batch (N,H,W,C).

    The crops are resized to the model's input size; grayscale is repeated to 3 channels
    for RGB models (FER-2013 faces are gray, so that is what an RGB-trained model saw).
    """
    prep = {**DEFAULT_PREPROCESSING, **(preprocessing or {})}
    h, w, c = (int(v) for v in input_shape)
    batch = np.empty((len(faces), h, w), dtype=np.uint8)
    for i, face in enumerate(faces):
        face = np.asarray(face)
        if face.ndim != 2:
            face = to_gray(face)
        if face.shape != (h, w):
            interp = cv2.INTER_AREA if face.shape[0] > h else cv2.INTER_LINEAR
            face = cv2.resize(face, (w, h), interpolation=interp)
        batch[i] = face
    x = scale_pixels(batch, prep["scale"])[..., None]
    if c == 3:
        x = np.repeat(x, 3, axis=-1)
    elif c != 1:
        raise ValueError(f"unsupported channel count {c}")
    return x
