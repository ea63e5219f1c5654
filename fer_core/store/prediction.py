"""A stored model as a function from 8-bit faces to class probabilities (the model's own label order).

Shared by evaluation and by the import / export checks, which score a model file on a labelled split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_core.labels import FER_LABELS
from fer_core.preprocess import prepare_faces


def make_predict_fn(model: Any, input_shape: Sequence[int]) -> Any:
    """A tf.function-compiled inference call for float32 batches (N, H, W, C) (traced once)."""
    import tensorflow as tf

    h, w, c = (int(v) for v in input_shape)

    @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.float32)], reduce_retracing=True)
    def predict(x: tf.Tensor) -> tf.Tensor:
        return model(x, training=False)

    return predict


def _to_probabilities(out: np.ndarray) -> np.ndarray:
    """Model outputs -> probabilities (softmax applied when the outputs are not already)."""
    out = np.asarray(out, dtype=np.float64)
    sums = out.sum(axis=1)
    if out.size and (out.min() < -1e-6 or np.abs(sums - 1.0).max() > 1e-3):
        z = out - out.max(axis=1, keepdims=True)
        e = np.exp(z)
        out = e / e.sum(axis=1, keepdims=True)
    return out


def predict_probabilities(
    model: Any,
    images_uint8: np.ndarray,
    input_shape: Sequence[int],
    preprocessing: dict[str, Any] | None,
    tta: bool = False,
    batch_size: int = 256,
    predict_fn: Any = None,
) -> np.ndarray:
    """Class probabilities in the MODEL's label order, float64 (N, classes).

    Faces go through fer_core.preprocess.prepare_faces (resize, color, scale as the model
    expects). TTA averages the image and its horizontal flip.
    """
    fn = predict_fn or make_predict_fn(model, input_shape)
    images = np.asarray(images_uint8)
    chunks = []
    for start in range(0, len(images), int(batch_size)):
        x = prepare_faces(images[start : start + int(batch_size)], input_shape, preprocessing)
        p = _to_probabilities(np.asarray(fn(x)))
        if tta:
            p = (p + _to_probabilities(np.asarray(fn(np.ascontiguousarray(x[:, :, ::-1, :]))))) / 2.0
        chunks.append(p)
    if not chunks:
        n_out = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else len(FER_LABELS)
        return np.zeros((0, n_out))
    return np.concatenate(chunks)
