"""The one engine from faces to class probabilities: a model with its conventions.

Evaluate, Predict, the webcam, the CLI and the export / convention checks all call a model
through `ModelRunner`, so what Evaluate measures is what users get. It decides, in one place:

- preprocessing: faces go through fer_core.preprocess.prepare_faces (size, colour, scaling the
  model expects);
- softmax: applied when the model outputs logits; decided once per runner, on its first batch
  with a non-zero output (outputs >= 0 summing to 1 are probabilities), so every batch of a
  model is treated alike;
- test-time augmentation: the mean of the probabilities of each face and its mirror image;
- calibration: the temperature the run's meta.json records (`calibration.temperature`, fitted
  on its validation split by `python -m fer_core calibrate`) divides the logits, so every page
  shows calibrated probabilities (fer_core.calibration); 1.0 where none is recorded;
- label order: probabilities come out in FER_LABELS order, whatever order the model has.

The model call itself is a `tf.function` with a free batch dimension (no `model.predict`,
~40 ms a call on a small CPU), optionally padded to a few fixed batch sizes (`buckets`) so a
real-time caller sees a handful of compiled shapes. Lives in the store package because the
store's export and convention checks score model files with it; inference builds on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fer_core.calibration import apply_temperature
from fer_core.errors import ModelFileError
from fer_core.labels import FER_LABELS, canonical_label, reorder_probabilities
from fer_core.preprocess import DEFAULT_PREPROCESSING, prepare_faces


def make_predict_fn(model: Any, input_shape: Sequence[int]) -> Any:
    """A tf.function-compiled inference call for float32 batches (N, H, W, C) (traced once); under another
    Keras backend (JAX on a GPU machine: a teacher run's soft labels, fer_core.training.distill), the
    backend's own compiled prediction call."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return model.predict_on_batch
    import tensorflow as tf

    h, w, c = (int(v) for v in input_shape)

    @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.float32)], reduce_retracing=True)
    def predict(x: tf.Tensor) -> tf.Tensor:
        return model(x, training=False)

    return predict


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def are_probabilities(out: np.ndarray) -> bool:
    """Rows of non-negative values summing to 1 (a softmax output), as opposed to logits."""
    return bool(np.all(out >= -1e-6) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3))


def recorded_temperature(meta: dict[str, Any]) -> float:
    """The calibration temperature a run's meta.json records (1.0 when none, or an unusable one)."""
    try:
        t = float((meta.get("calibration") or {}).get("temperature", 1.0))
    except (TypeError, ValueError, AttributeError):
        return 1.0
    return t if np.isfinite(t) and t > 0 else 1.0


class ModelRunner:
    """A model call with its conventions: faces (or prepared batches) -> FER_LABELS-order probabilities.

    Args:
        call: prepared float32 batch (N, H, W, C) -> outputs (N, classes) in the model's label order.
        labels: the model's class names in output order (the 7 FER-2013 classes, any order).
        input_shape: (H, W, C) the model takes.
        preprocessing: {"color": "grayscale"|"rgb", "scale": "0-1"|"-1-1"|"0-255"}.
        buckets: batch sizes calls are padded to (None: batches go in as they are).
        temperature: divides the model's logits (calibration; 1.0: the model's own probabilities).
    """

    def __init__(
        self,
        call: Callable[[np.ndarray], Any],
        labels: Sequence[str] = FER_LABELS,
        input_shape: Sequence[int] = (48, 48, 1),
        preprocessing: dict[str, Any] | None = None,
        *,
        buckets: Sequence[int] | None = None,
        temperature: float = 1.0,
    ) -> None:
        self.call = call
        self.model_labels = tuple(labels)
        if len(self.model_labels) != len(FER_LABELS) or any(canonical_label(n) is None for n in self.model_labels):
            raise ValueError(f"model labels must be the 7 FER-2013 classes in any order; got {list(self.model_labels)}")
        self.input_shape = tuple(int(v) for v in input_shape)
        if len(self.input_shape) != 3 or self.input_shape[2] not in (1, 3):
            raise ValueError(f"input_shape must be (H, W, 1|3); got {self.input_shape}")
        self.preprocessing = {**DEFAULT_PREPROCESSING, **(preprocessing or {})}
        self.buckets = tuple(sorted(buckets)) if buckets else None
        self.temperature = float(temperature)
        if not (self.temperature > 0 and np.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a positive number; got {temperature!r}")
        self._identity_order = tuple(canonical_label(n) for n in self.model_labels) == FER_LABELS
        self._logits: bool | None = None  # decided on the first batch with a non-zero output
        self._lock = threading.Lock()
        self.model: Any = None  # the Keras model behind `call` (for_model / from_run)
        self.name: str | None = None
        self.meta: dict[str, Any] = {}  # the run's meta.json (from_run)

    @classmethod
    def for_model(cls, model: Any, labels: Sequence[str] = FER_LABELS, input_shape: Sequence[int] | None = None,
                  preprocessing: dict[str, Any] | None = None, **kwargs: Any) -> ModelRunner:
        """A runner around a Keras model's compiled call (input_shape: the model's own by default)."""
        shape = tuple(input_shape) if input_shape is not None else tuple(model.input_shape[1:])
        runner = cls(make_predict_fn(model, shape), labels, shape, preprocessing, **kwargs)
        runner.model = model
        return runner

    @classmethod
    def from_run(cls, store: Any, run_id: str, **kwargs: Any) -> ModelRunner:
        """The runner of a stored run: its model with the conventions its meta.json records (labels,
        input shape, preprocessing). Evaluate and every prediction path build their runner here."""
        from fer_core.errors import ModelFileError

        meta = store.read_meta(run_id)
        model = store.load_model(run_id)
        kwargs.setdefault("temperature", recorded_temperature(meta))
        try:
            runner = cls.for_model(model, meta.get("labels") or FER_LABELS, meta.get("input_shape"),
                                   meta.get("preprocessing"), **kwargs)
        except ValueError as exc:
            raise ModelFileError(f"Run {run_id}'s label list or input shape does not fit its model: {exc}.") from None
        runner.name = meta.get("name") or run_id
        runner.meta = meta
        return runner

    # ------------------------------------------------------------------ batches

    def prepare(self, faces: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Face crops (uint8, BGR or grayscale, any size) -> the model's input batch."""
        return prepare_faces(faces, self.input_shape, self.preprocessing)

    def _raw(self, x: np.ndarray) -> np.ndarray:
        sizes = [len(x)] if not self.buckets else [min(self.buckets[-1], len(x) - s)
                                                  for s in range(0, len(x), self.buckets[-1])]
        out, start = [], 0
        for m in sizes:
            chunk = x[start : start + m]
            start += m
            size = next(b for b in self.buckets if b >= m) if self.buckets else m
            if size != m:
                chunk = np.concatenate([chunk, np.zeros((size - m, *chunk.shape[1:]), np.float32)])
            y = self.call(np.ascontiguousarray(chunk, dtype=np.float32))
            if isinstance(y, (list, tuple)):
                y = y[0]
            out.append(np.asarray(y, dtype=np.float32)[:m])
        return np.concatenate(out)

    def run(self, x: np.ndarray) -> np.ndarray:
        """A prepared batch (N, H, W, C) -> probabilities (N, 7) float32 in FER_LABELS order."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, len(FER_LABELS)), np.float32)
        y = self._raw(x)
        if y.ndim != 2 or y.shape[1] != len(self.model_labels):
            raise ModelFileError(f"The model outputs shape {y.shape[1:]} but its label list has "
                                 f"{len(self.model_labels)} classes: {list(self.model_labels)}.")
        if self._logits is None and np.any(y != 0):
            with self._lock:
                if self._logits is None:
                    self._logits = not are_probabilities(y)
        if self._logits:
            y = softmax(y)
        if self.temperature != 1.0:
            y = apply_temperature(y, self.temperature)
        return y if self._identity_order else reorder_probabilities(y, self.model_labels, FER_LABELS)

    def probabilities(self, faces: Sequence[np.ndarray] | np.ndarray, tta: bool = False,
                      batch_size: int = 256) -> np.ndarray:
        """Face crops -> (N, 7) float32 probabilities, FER_LABELS order; with `tta` the mean over each
        face and its mirror image. Prepared `batch_size` faces at a time."""
        chunks = []
        for start in range(0, len(faces), max(1, int(batch_size))):
            x = self.prepare(faces[start : start + int(batch_size)])
            p = self.run(x)
            if tta:
                p = (p + self.run(np.ascontiguousarray(x[:, :, ::-1, :]))) / 2.0
            chunks.append(p)
        return np.concatenate(chunks) if chunks else np.zeros((0, len(FER_LABELS)), np.float32)
