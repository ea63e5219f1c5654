"""Emotion classification of face crops with one compiled call per batch (no `model.predict`).

`EmotionClassifier` wraps a Keras model and the facts its meta.json records (labels,
input_shape, preprocessing) in the one engine, fer_core.store.prediction.ModelRunner (the same
calls Evaluate makes). All faces of a frame (or of many images) go through one `tf.function`
call with a fixed input signature (batch dimension free, so nothing retraces); batches are
padded to a few fixed sizes (1, 2, 4, 8, 16, 32, 64) so the CPU kernels see a handful of
shapes, all warmed up on construction up to `warm_up_to`. `model.predict()` costs
~40 ms per call on this CPU; the compiled call ~2 ms for one 48x48 face (NOTES.md).

Probabilities always come out in FER_LABELS order, whatever order the model was trained in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_core.inference.results import FacePrediction, face_predictions
from fer_core.labels import FER_LABELS, canonical_label
from fer_core.store.prediction import ModelRunner

BUCKETS = (1, 2, 4, 8, 16, 32, 64)


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
        runner: ModelRunner | None = None,
    ):
        self.model = model
        # The one engine (store.prediction): preprocessing, softmax, label order. Evaluate uses it too.
        self.runner = runner or ModelRunner.for_model(model, labels, input_shape, preprocessing, buckets=BUCKETS)
        self.model_labels = self.runner.model_labels
        self.input_shape = self.runner.input_shape
        self.preprocessing = self.runner.preprocessing
        self.name = name or getattr(model, "name", "model")
        self._gradcam = None
        for b in BUCKETS:
            if b > warm_up_to:
                break
            self.runner.run(np.zeros((b, *self.input_shape), np.float32))

    @classmethod
    def from_store(cls, store: Any, run_id: str, **kwargs: Any) -> EmotionClassifier:
        """A stored run's classifier: its runner from `ModelRunner.from_run`, as Evaluate builds it."""
        runner = ModelRunner.from_run(store, run_id, buckets=BUCKETS)
        return cls(runner.model, runner=runner, name=runner.name, **kwargs)

    # -- core ---------------------------------------------------------------------------------

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """Already-preprocessed batch (N, H, W, C) float32 -> probabilities (N, 7) in FER_LABELS order."""
        return self.runner.run(x)

    def prepare(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Face crops (BGR, grayscale, any size) -> the model's input batch."""
        return self.runner.prepare(faces)

    def predict_proba(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """BGR or grayscale uint8 face crops (any size) -> (N, 7) probabilities, FER_LABELS order."""
        if len(faces) == 0:
            return np.zeros((0, len(FER_LABELS)), np.float32)
        return self.runner.run(self.prepare(faces))

    def predict(self, faces: Sequence[np.ndarray] | np.ndarray) -> list[FacePrediction]:
        """Face crops -> one FacePrediction per face (label, confidence, probabilities; no box)."""
        return face_predictions(self.predict_proba(faces))

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
