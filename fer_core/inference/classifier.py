"""Emotion classification of face crops with one compiled call per batch (no `model.predict`).

`EmotionClassifier` wraps a Keras model and the facts its meta.json records (labels,
input_shape, preprocessing). All faces of a frame (or of many images) go through one
`tf.function` call with a fixed input signature (batch dimension free, so nothing retraces);
batches are padded to a few fixed sizes (1, 2, 4, 8, 16, 32, 64) so the CPU kernels see a
handful of shapes, all warmed up on construction up to `warm_up_to`. `model.predict()` costs
~40 ms per call on this CPU; the compiled call ~2 ms for one 48x48 face (NOTES.md).

Probabilities always come out in FER_LABELS order, whatever order the model was trained in.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_core.labels import FER_LABELS, canonical_label, reorder_probabilities
from fer_core.preprocess import DEFAULT_PREPROCESSING, prepare_faces

BUCKETS = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class Prediction:
    """One face's result: probabilities in FER_LABELS order, the top label and its probability."""

    label: str
    confidence: float
    probabilities: np.ndarray  # (7,) float32, FER_LABELS order

    def as_dict(self) -> dict[str, float]:
        return {name: float(p) for name, p in zip(FER_LABELS, self.probabilities)}


class EmotionClassifier:
    """Batched, compiled emotion classification of face crops.

    Args:
        model: a Keras model taking (N, H, W, C) float32 and returning (N, len(labels)).
        labels: the model's class names in its output order (any order of the 7 FER classes).
        input_shape: (H, W, C); default: the model's own input shape.
        preprocessing: {"color": "grayscale"|"rgb", "scale": "0-1"|"-1-1"|"0-255"}.
        warm_up_to: batch sizes up to this are compiled at construction (0: none).
    """

    labels: tuple[str, ...] = FER_LABELS

    def __init__(
        self,
        model: Any,
        labels: Sequence[str] = FER_LABELS,
        input_shape: Sequence[int] | None = None,
        preprocessing: dict[str, Any] | None = None,
        *,
        warm_up_to: int = 8,
        name: str | None = None,
    ):
        import tensorflow as tf

        self.model = model
        self.model_labels = tuple(labels)
        unknown = [n for n in self.model_labels if canonical_label(n) is None]
        if unknown or len(self.model_labels) != len(FER_LABELS):
            raise ValueError(f"model labels must be the 7 FER-2013 classes in any order; got {list(self.model_labels)}")
        if input_shape is None:
            shape = tuple(model.input_shape)
            input_shape = shape[1:]
        self.input_shape = tuple(int(v) for v in input_shape)
        if len(self.input_shape) != 3 or self.input_shape[2] not in (1, 3):
            raise ValueError(f"input_shape must be (H, W, 1|3); got {self.input_shape}")
        self.preprocessing = {**DEFAULT_PREPROCESSING, **(preprocessing or {})}
        self.name = name or getattr(model, "name", "model")
        self._identity_order = tuple(canonical_label(n) for n in self.model_labels) == FER_LABELS
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec], reduce_retracing=True)
        self._softmax_checked = False
        self._gradcam = None
        self._needs_softmax = False
        self._lock = threading.Lock()  # guards the one-off softmax check only; calls run concurrently
        for b in BUCKETS:
            if b > warm_up_to:
                break
            self._run(np.zeros((b, *self.input_shape), np.float32))

    @classmethod
    def from_store(cls, store: Any, run_id: str, **kwargs: Any) -> EmotionClassifier:
        """Load a run's model and meta.json from a `fer_core.store.ModelStore`."""
        model = store.load_model(run_id)
        meta = store.read_meta(run_id)
        return cls(
            model,
            labels=meta.get("labels") or FER_LABELS,
            input_shape=meta.get("input_shape"),
            preprocessing=meta.get("preprocessing"),
            name=meta.get("name") or run_id,
            **kwargs,
        )

    # -- core ---------------------------------------------------------------------------------

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Model call on a preprocessed batch, padded to a bucket size; returns model-order probabilities."""
        n = len(x)
        out = []
        biggest = BUCKETS[-1]
        for start in range(0, n, biggest):
            chunk = x[start : start + biggest]
            m = len(chunk)
            size = next(b for b in BUCKETS if b >= m)
            if size != m:
                pad = np.zeros((size - m, *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, pad])
            y = self._fn(np.ascontiguousarray(chunk, dtype=np.float32))
            if isinstance(y, (list, tuple)):
                y = y[0]
            out.append(np.asarray(y)[:m])
        probs = np.concatenate(out) if out else np.zeros((0, len(self.model_labels)), np.float32)
        return self._ensure_probabilities(probs.astype(np.float32, copy=False))

    def _ensure_probabilities(self, y: np.ndarray) -> np.ndarray:
        if not self._softmax_checked and len(y) and np.any(y != 0):
            with self._lock:
                rows_ok = np.all(y >= -1e-6) and np.allclose(y.sum(axis=1), 1.0, atol=1e-3)
                self._needs_softmax = not rows_ok
                self._softmax_checked = True
        if self._needs_softmax:  # the model outputs logits
            z = y - y.max(axis=1, keepdims=True)
            e = np.exp(z)
            y = e / e.sum(axis=1, keepdims=True)
        return y

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """Already-preprocessed batch (N, H, W, C) float32 -> probabilities (N, 7) in FER_LABELS order."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, len(FER_LABELS)), np.float32)
        probs = self._run(x)
        return probs if self._identity_order else reorder_probabilities(probs, self.model_labels, FER_LABELS)

    def prepare(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Face crops (BGR, grayscale, any size) -> the model's input batch."""
        return prepare_faces(faces, self.input_shape, self.preprocessing)

    def predict_proba(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """BGR or grayscale uint8 face crops (any size) -> (N, 7) probabilities, FER_LABELS order."""
        if len(faces) == 0:
            return np.zeros((0, len(FER_LABELS)), np.float32)
        return self.predict_batch(self.prepare(faces))

    def predict(self, faces: Sequence[np.ndarray] | np.ndarray) -> list[Prediction]:
        """Face crops -> one Prediction per face (top label, confidence, probabilities)."""
        return predictions_from_probabilities(self.predict_proba(faces))

    # -- saliency -------------------------------------------------------------------------------

    def saliency(self, face: np.ndarray, class_name: str | None = None) -> np.ndarray:
        """Grad-CAM heatmap for one face crop: float32 (H, W) in [0, 1] at the crop's size.

        `class_name` (any FER class name) defaults to the top class. Uses fer_core.inference.saliency.GradCam
        (a compiled gradient call, built once per classifier). Not for the real-time path.
        """
        import cv2

        from fer_core.inference.saliency import GradCam

        face = np.asarray(face)
        if self._gradcam is None:
            self._gradcam = GradCam(self.model)
        index = None
        if class_name is not None:
            canon = canonical_label(class_name)
            if canon is None:
                raise ValueError(f"unknown class {class_name!r}")
            index = [canonical_label(n) for n in self.model_labels].index(canon)
        cam = self._gradcam(self.prepare([face]), index)
        h, w = face.shape[:2]
        return cv2.resize(cam, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1).astype(np.float32)


def predictions_from_probabilities(probs: np.ndarray) -> list[Prediction]:
    out = []
    for row in np.asarray(probs, dtype=np.float32):
        i = int(np.argmax(row))
        out.append(Prediction(FER_LABELS[i], float(row[i]), row))
    return out
