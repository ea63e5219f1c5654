"""Evaluate a model on a labelled split: metrics, confusion matrix, ROC, per-image predictions.

Everything is expressed in FER_LABELS order: a model's outputs are reordered from its own
label order (meta.json "labels"; an imported model may be alphabetical) before scoring.

Result dict (JSON-ready; evaluate_run saves it in the store, one per (dataset, split, TTA)):
    split, n, labels, dataset {name, fingerprint, synthetic}, timestamp, tta, seconds,
    images_per_second, accuracy, top2_accuracy, log_loss, macro_f1, weighted_f1,
    per_class {label: {precision, recall, f1, support, roc_auc}}, report (sklearn
    classification_report dict), confusion_matrix (rows true, cols predicted),
    roc {label: {fpr: [...], tpr: [...], auc}} (<= 100 points per class), macro_roc_auc,
    ece (expected calibration error), reliability [{lo, hi, count, confidence, accuracy}],
    temperature (the run's calibration the probabilities went through, 1.0: none),
    predictions [{index, source, true, pred, correct, confidence, probs}], run_id (evaluate_run).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_core.calibration import expected_calibration_error, reliability_bins
from fer_core.errors import ModelFileError, StoreError
from fer_core.labels import FER_LABELS
from fer_core.store.atomic import now_iso
from fer_core.store.prediction import ModelRunner
from fer_core.store.runs import ModelStore

MAX_ROC_POINTS = 100


def _downsample_curve(fpr: np.ndarray, tpr: np.ndarray, max_points: int = MAX_ROC_POINTS) -> tuple[list, list]:
    if len(fpr) > max_points:
        idx = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return [round(float(v), 4) for v in fpr], [round(float(v), 4) for v in tpr]


def compute_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str] = FER_LABELS,
) -> dict[str, Any]:
    """Scores of probabilities `probs` (N, K in `labels` order) against indices `y_true`."""
    from sklearn.metrics import classification_report, confusion_matrix, log_loss, roc_auc_score, roc_curve

    y = np.asarray(y_true, dtype=np.int64)
    k = len(labels)
    pred = probs.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    class_ids = list(range(k))
    report = classification_report(
        y, pred, labels=class_ids, target_names=list(labels), output_dict=True, zero_division=0
    )
    top2 = np.argsort(-probs, axis=1)[:, :2] if len(y) else np.zeros((0, 2), dtype=np.int64)
    clipped = np.clip(probs, 1e-7, 1.0)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    roc: dict[str, Any] = {}
    per_class: dict[str, Any] = {}
    aucs = []
    for i, name in enumerate(labels):
        positives = y == i
        entry = report.get(name, {})
        auc = None
        if 0 < positives.sum() < len(y):
            auc = float(roc_auc_score(positives, probs[:, i]))
            fpr, tpr, _ = roc_curve(positives, probs[:, i])
            fx, ty = _downsample_curve(fpr, tpr)
            roc[name] = {"fpr": fx, "tpr": ty, "auc": round(auc, 4)}
            aucs.append(auc)
        else:
            roc[name] = {"fpr": [], "tpr": [], "auc": None}
        per_class[name] = {
            "precision": float(entry.get("precision", 0.0)),
            "recall": float(entry.get("recall", 0.0)),
            "f1": float(entry.get("f1-score", 0.0)),
            "support": int(entry.get("support", 0)),
            "roc_auc": auc,
        }
    return {
        "accuracy": float((pred == y).mean()) if len(y) else None,
        "top2_accuracy": float((top2 == y[:, None]).any(axis=1).mean()) if len(y) else None,
        "log_loss": float(log_loss(y, clipped, labels=class_ids)) if len(y) else None,
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "weighted_f1": float(report["weighted avg"]["f1-score"]),
        "per_class": per_class,
        "report": report,
        "confusion_matrix": confusion_matrix(y, pred, labels=class_ids).tolist(),
        "roc": roc,
        "macro_roc_auc": float(np.mean(aucs)) if aucs else None,
        "ece": expected_calibration_error(probs, y) if len(y) else None,
        "reliability": reliability_bins(probs, y) if len(y) else [],
    }


def evaluate_model(
    model: Any,
    images_uint8: np.ndarray,
    labels: np.ndarray,
    model_labels: Sequence[str],
    input_shape: Sequence[int],
    preprocessing: dict[str, Any] | None,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate a Keras `model` (not stored) with the given conventions; `options` are
    evaluate_runner's (tta, batch_size, sources, split, dataset_info)."""
    try:
        runner = ModelRunner.for_model(model, model_labels, input_shape, preprocessing)
    except ValueError as exc:
        raise ModelFileError(f"The model's label list does not fit: {exc}.") from None
    return evaluate_runner(runner, images_uint8, labels, **options)


def evaluate_runner(
    runner: ModelRunner,
    images_uint8: np.ndarray,
    labels: np.ndarray,
    tta: bool = False,
    batch_size: int = 256,
    sources: Sequence[str] | np.ndarray | None = None,
    split: str | None = None,
    dataset_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate through `runner` (the engine Predict and the webcam use: same preprocessing, softmax,
    TTA and label order) on uint8 images with FER_LABELS-index `labels`; see the module doc."""
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    images = np.asarray(images_uint8)
    if len(images) != len(y):
        raise ValueError(f"{len(images)} images but {len(y)} labels")
    model_labels = runner.model_labels
    started = time.perf_counter()
    probs = runner.probabilities(images, tta=tta, batch_size=batch_size).astype(np.float64)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "split": split,
        "n": int(len(y)),
        "labels": list(FER_LABELS),
        "model_labels": list(model_labels),
        "dataset": dict(dataset_info or {}),
        "timestamp": now_iso(),
        "tta": bool(tta),
        "temperature": runner.temperature,  # the calibration the probabilities went through (1.0: none)
        "seconds": round(seconds, 3),
        "images_per_second": round(len(y) / seconds, 1) if seconds > 0 and len(y) else None,
    }
    result.update(compute_metrics(y, probs, FER_LABELS))
    src = np.asarray(sources) if sources is not None else None
    pred = probs.argmax(axis=1) if len(y) else np.zeros(0, dtype=np.int64)
    predictions = []
    for i in range(len(y)):
        predictions.append({
            "index": i,
            "source": str(src[i]) if src is not None and i < len(src) else None,
            "true": FER_LABELS[int(y[i])],
            "pred": FER_LABELS[int(pred[i])],
            "correct": bool(pred[i] == y[i]),
            "confidence": round(float(probs[i, pred[i]]), 4),
            "probs": [round(float(v), 4) for v in probs[i]],
        })
    result["predictions"] = predictions
    return result


def evaluate_run(
    store: ModelStore,
    run_id: str,
    dataset: Any,
    split: str = "test",
    tta: bool = False,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Evaluate a stored run on `dataset.splits[split]` and save it beside its other evaluations.

    The store keeps one evaluation per (dataset fingerprint, split, TTA) and never writes into a
    shipped model's folder, so an evaluation on the demo set leaves the FER-2013 one intact.
    """
    if split not in dataset.splits:
        raise ValueError(f"the dataset has no {split!r} split (splits: {', '.join(dataset.splits)})")
    runner = ModelRunner.from_run(store, run_id)
    meta = runner.meta
    data = dataset.splits[split]
    info = {
        "name": getattr(dataset, "name", None),
        "fingerprint": getattr(dataset, "fingerprint", None),
        "synthetic": bool(getattr(dataset, "synthetic", False)),
    }
    result = evaluate_runner(runner, data.images, data.labels, tta=tta, batch_size=batch_size,
                             sources=getattr(data, "sources", None), split=split, dataset_info=info)
    result["run_id"] = run_id
    trained_on = (meta.get("dataset") or {}).get("fingerprint")
    result["same_dataset_as_training"] = bool(trained_on and trained_on == info["fingerprint"])
    params = meta.get("params") or {}
    if params.get("validation") == split and result["same_dataset_as_training"]:
        result["warning"] = (
            f"The {split!r} split was used for validation (model selection) during training: "
            "this score is optimistic."
        )
    store.save_evaluation(run_id, result)
    _record_in_meta(store, run_id, split, result)
    return result


def _record_in_meta(store: ModelStore, run_id: str, split: str, result: dict[str, Any]) -> None:
    """The run's own test figures in meta.json metrics: `<split>_accuracy` / `<split>_macro_f1`.

    Only from a plain (no TTA) evaluation on the dataset the model was trained on, never while
    the run is still training, and never for a shipped model (its meta.json stays as shipped).
    """
    if result.get("tta") or not result.get("same_dataset_as_training"):
        return
    try:
        info = store.get(run_id)
        if info.status in ("starting", "running", "corrupt") or info.meta.get("shipped"):
            return
        metrics = dict(info.meta.get("metrics") or {})
        metrics[f"{split}_accuracy"] = result["accuracy"]
        metrics[f"{split}_macro_f1"] = result["macro_f1"]
        store.update_meta(run_id, metrics=metrics)
    except StoreError:
        pass
