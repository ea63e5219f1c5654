"""Which label order and pixel scaling fit a model: score each on a labelled split, and store the best."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_core.errors import ModelFileError
from fer_core.labels import FER_LABELS
from fer_core.preprocess import SCALES
from fer_core.store.importing import LABEL_ORDERS, resolve_labels, stored_scale
from fer_core.store.runs import ModelStore


@dataclass
class ConventionScore:
    order: str  # "csv" | "alphabetical" | "custom"
    labels: tuple[str, ...]
    scale: str
    accuracy: float
    macro_f1: float


def check_conventions(
    model: Any,
    input_shape: Sequence[int],
    color: str,
    images: np.ndarray,
    y_true: np.ndarray,
    *,
    scales: Sequence[str] = SCALES,
    extra_orders: dict[str, Sequence[str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ConventionScore]:
    """Score every label order x pixel scaling on labelled faces (y_true in FER_LABELS indices).

    One forward pass per scaling; label orders are column permutations of the same outputs.
    Best first. The right conventions stand out by tens of points on real faces.
    """
    from sklearn.metrics import f1_score

    from fer_core.labels import reorder_probabilities
    from fer_core.store.prediction import ModelRunner, make_predict_fn

    orders = dict(LABEL_ORDERS)
    for k, v in (extra_orders or {}).items():
        orders[k] = resolve_labels(v)[0]
    fn = make_predict_fn(model, input_shape)
    y = np.asarray(y_true, dtype=np.int64)
    scores = []
    for i, scale in enumerate(scales):
        # Outputs in the model's own order (read as FER order), then each candidate order permutes them.
        runner = ModelRunner(fn, FER_LABELS, input_shape, {"color": color, "scale": scale})
        probs = runner.probabilities(images)
        for key, labels in orders.items():
            pred = reorder_probabilities(probs, labels).argmax(axis=1)
            scores.append(ConventionScore(
                order=key,
                labels=tuple(labels),
                scale=scale,
                accuracy=float((pred == y).mean()) if len(y) else 0.0,
                macro_f1=float(f1_score(y, pred, labels=list(range(len(FER_LABELS))), average="macro",
                                        zero_division=0)) if len(y) else 0.0,
            ))
        if progress:
            progress(i + 1, len(scales))
    return sorted(scores, key=lambda s: (-s.accuracy, -s.macro_f1))


def check_run_conventions(
    store: ModelStore,
    run_id: str,
    dataset: Any,
    split: str | None = None,
    *,
    max_images: int = 2000,
    scales: Sequence[str] = SCALES,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """check_conventions for a stored run on a dataset split (test by default, else train).

    Returns {"split", "n", "current": {order, scale, accuracy}, "best": {...}, "scores": [...],
    "matches": bool} where "matches" says the stored conventions are the best-scoring ones
    (or within one point of them).
    """
    meta = store.read_meta(run_id)
    model = store.load_model(run_id)
    splits = getattr(dataset, "splits", {})
    split = split or ("test" if "test" in splits else next(iter(splits), None))
    if split is None or split not in splits:
        raise ModelFileError(f"The dataset has no split {split!r} to check the model on.")
    data = splits[split]
    n = len(data.labels)
    if n == 0:
        raise ModelFileError(f"The {split} split is empty: nothing to check the model on.")
    idx = np.arange(n)
    if n > max_images:  # an evenly spread subset keeps the check quick on big splits
        idx = np.linspace(0, n - 1, max_images).round().astype(int)
    input_shape = meta.get("input_shape") or list(model.inputs[0].shape[1:])
    prep = meta.get("preprocessing") or {}
    current_labels, current_order = resolve_labels(meta.get("labels") or FER_LABELS)
    extra = {"custom": current_labels} if current_order == "custom" else None
    scores = check_conventions(
        model, input_shape, prep.get("color", "grayscale"), data.images[idx], data.labels[idx],
        scales=scales, extra_orders=extra, progress=progress,
    )
    current_scale = prep.get("scale", "0-1")
    current = next((s for s in scores if s.labels == current_labels and s.scale == current_scale), None)
    best = scores[0]
    matches = current is not None and current.accuracy >= best.accuracy - 0.01
    return {
        "split": split,
        "n": int(len(idx)),
        "synthetic": bool(getattr(dataset, "synthetic", False)),
        "current": _score_dict(current) if current else None,
        "best": _score_dict(best),
        "matches": bool(matches),
        "scores": [_score_dict(s) for s in scores],
    }


def _score_dict(s: ConventionScore) -> dict[str, Any]:
    return {"order": s.order, "labels": list(s.labels), "scale": s.scale,
            "accuracy": s.accuracy, "macro_f1": s.macro_f1}


def apply_conventions(store: ModelStore, run_id: str, labels: str | Sequence[str], scale: str) -> dict[str, Any]:
    """Set a run's label order and pixel scaling; its saved evaluations (now stale) are removed."""
    model_labels, order_kind = resolve_labels(labels)
    scale = stored_scale(scale)
    meta = store.read_meta(run_id)
    if meta.get("shipped"):
        raise ModelFileError(
            f"{meta.get('name') or run_id} ships with fer-studio and its conventions were checked on FER-2013; "
            "they are not changed. Import a copy of the model to experiment with other conventions."
        )
    prep = {**(meta.get("preprocessing") or {}), "scale": scale}
    changed = list(meta.get("labels") or []) != list(model_labels) or (meta.get("preprocessing") or {}) != prep
    new = store.update_meta(run_id, labels=list(model_labels), label_order=order_kind, preprocessing=prep)
    if changed:
        store.remove_evaluations(run_id, bundled=True)
    return new
