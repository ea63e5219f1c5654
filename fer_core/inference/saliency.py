"""Grad-CAM saliency maps: which parts of a face drove a prediction.

`grad_cam(model, x, class_index)` returns an (H, W) map in [0, 1] at the model's input size;
`overlay(face, cam)` blends it on the face crop for display. Imports TensorFlow lazily.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from fer_core.errors import FerError

MIN_CAM_SIZE = 6  # a 3x3 map (mini-Xception's last conv) says little; prefer a finer layer


def _spatial_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1:
            out.append(layer)
    return out


def last_conv_layer(model: Any) -> Any:
    """The last layer with a 4-D (N, H, W, C) output of at least MIN_CAM_SIZE pixels a side
    (else the last 4-D one): where Grad-CAM looks."""
    layers = _spatial_layers(model)
    if not layers:
        raise FerError("Grad-CAM needs a convolutional layer with a spatial output; this model has none.")
    fine = [lyr for lyr in layers if min(lyr.output.shape[1], lyr.output.shape[2]) >= MIN_CAM_SIZE]
    return (fine or layers)[-1]


class GradCam:
    """Grad-CAM for one model: build once (a sub-model and a compiled gradient call), call per face.

    Gradients run inside a tf.function: in eager mode TF 2.21's oneDNN Conv2D filter
    gradient crashes the process (segfault) on this CPU.
    """

    def __init__(self, model: Any, layer_name: str | None = None) -> None:
        import keras
        import tensorflow as tf

        layer = model.get_layer(layer_name) if layer_name else last_conv_layer(model)
        self.layer_name = layer.name
        try:
            self._sub = keras.Model(model.inputs, [layer.output, model.outputs[0]])
        except Exception as exc:  # noqa: BLE001 - nested / subclassed models
            raise FerError(f"Grad-CAM is not available for this model's structure ({type(exc).__name__}).") from exc
        shape = [None, *[int(v) for v in model.inputs[0].shape[1:]]]
        sub = self._sub

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32), tf.TensorSpec([], tf.int32)])
        def _cam(x, idx):
            with tf.GradientTape() as tape:
                conv, preds = sub(x, training=False)
                idx2 = tf.where(idx < 0, tf.cast(tf.argmax(preds[0]), tf.int32), idx)
                score = preds[:, idx2]
            grads = tape.gradient(score, conv)
            weights = tf.reduce_mean(grads, axis=(1, 2))
            return tf.nn.relu(tf.reduce_sum(conv * weights[:, None, None, :], axis=-1))[0]

        self._fn = _cam

    def __call__(self, x: np.ndarray, class_index: int | None = None) -> np.ndarray:
        """Map for one preprocessed input (1,H,W,C) or (H,W,C); class in the model's output order
        (default: its top class). float32 (H, W) in [0, 1]."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        cam = self._fn(x[:1], np.int32(-1 if class_index is None else class_index)).numpy()
        if cam.max() > 0:
            cam = cam / cam.max()
        h, w = x.shape[1:3]
        return cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def grad_cam(model: Any, x: np.ndarray, class_index: int | None = None, layer_name: str | None = None) -> np.ndarray:
    """One-off Grad-CAM (builds a GradCam each call; keep a GradCam for repeated use)."""
    return GradCam(model, layer_name)(x, class_index)


def overlay(face: np.ndarray, cam: np.ndarray, alpha: float = 0.45, size: int | None = 144) -> np.ndarray:
    """Blend a Grad-CAM map (JET colours) onto a face crop; returns RGB uint8 for display."""
    face = np.asarray(face)
    if face.ndim == 2:
        face_rgb = cv2.cvtColor(face, cv2.COLOR_GRAY2RGB)
    else:
        face_rgb = cv2.cvtColor(face, cv2.COLOR_BGR2RGB)
    if size:
        face_rgb = cv2.resize(face_rgb, (size, size), interpolation=cv2.INTER_LINEAR)
    heat = cv2.resize(np.asarray(cam, dtype=np.float32), face_rgb.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    heat_rgb = cv2.cvtColor(cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(face_rgb, 1 - alpha, heat_rgb, alpha, 0)
