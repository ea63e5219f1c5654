"""Knowledge distillation (`--teacher RUN,...`): an ensemble's probabilities as a run's training targets.

Each training face's target becomes `distill_weight * teachers + (1 - distill_weight) * one-hot`,
where `teachers` is the mean of the teacher runs' probabilities on the face and its mirror image,
through the one engine (ModelRunner: each teacher's own label order and calibration temperature).
Soft targets carry what an ensemble knows beyond the label (a fearful face that looks surprised),
so one network can learn what several learned: the way to ship an ensemble as one model file and
one call per face. The targets are computed once, before the first epoch, on the un-augmented
faces (augmentation, mixup and CutMix then act on face and target together), and kept in the run's
folder so that a resume does not compute them again. The teachers' ensemble accuracy on the run's
validation split is recorded beside them (meta.json `teachers`), so the ensemble can be compared
with the student it taught.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fer_core.errors import FerError
from fer_core.labels import FER_LABELS
from fer_core.store.atomic import atomic_replace

TARGETS_FILE = "teacher_targets.npz"


def resolve_teachers(store: Any, teachers: list[str] | None) -> list[str]:
    """The run ids of `teachers` (ids or names); FerError naming one that is unknown or has no model."""
    from fer_core.store.default_model import resolve_run

    ids: list[str] = []
    for name in teachers or []:
        try:
            run = resolve_run(store, name)
        except FerError as exc:
            raise FerError(f"teacher {name!r}: {exc}") from None
        if not store.model_path(run.run_id).exists():
            raise FerError(f"teacher {name!r} has no saved model yet")
        labels = run.meta.get("labels") or list(FER_LABELS)
        if sorted(labels) != sorted(FER_LABELS):
            raise FerError(f"teacher {name!r} predicts other classes ({', '.join(labels)}) than FER-2013's")
        if run.run_id in ids:
            raise FerError(f"teacher {name!r} is named twice")
        ids.append(run.run_id)
    return ids


def ensemble_probabilities(store: Any, teacher_ids: list[str], *image_sets: np.ndarray) -> list[np.ndarray]:
    """Mean of the teachers' probabilities (FER_LABELS order, flip TTA, calibrated) on each set of uint8
    faces; each teacher is loaded once, for every set, and only one is in memory at a time."""
    import keras

    from fer_core.store.prediction import ModelRunner

    totals = [np.zeros((len(images), len(FER_LABELS)), np.float64) for images in image_sets]
    for run_id in teacher_ids:
        runner = ModelRunner.from_run(store, run_id)
        for total, images in zip(totals, image_sets):
            total += runner.probabilities(images, tta=True)
        del runner
        keras.backend.clear_session()
    return [(total / max(len(teacher_ids), 1)).astype(np.float32) for total in totals]


def blend(teacher_probs: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
    """weight * teacher_probs + (1 - weight) * one-hot(labels), rows renormalised to sum to 1."""
    onehot = np.eye(teacher_probs.shape[1], dtype=np.float64)[np.asarray(labels, np.int64)]
    t = float(weight) * np.asarray(teacher_probs, np.float64) + (1.0 - float(weight)) * onehot
    return (t / t.sum(axis=1, keepdims=True)).astype(np.float32)


def _cached(path: Path, teacher_ids: list[str], labels: np.ndarray) -> np.ndarray | None:
    """The stored teachers' probabilities where they were computed for these teachers and these faces."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if list(f["teachers"]) == teacher_ids and np.array_equal(f["labels"], labels):
                return np.asarray(f["probs"], np.float32)
    except Exception:  # noqa: BLE001 - missing, partial or foreign: compute again
        return None
    return None


def teacher_targets(store: Any, run_id: str, teacher_ids: list[str], data: Any, weight: float
                    ) -> tuple[np.ndarray, dict[str, Any] | None]:
    """(soft targets for data.x_train, what to record in meta.json) for a run distilled from `teacher_ids`;
    the record is None where the targets were already computed (a resumed run keeps its first one)."""
    from sklearn.metrics import accuracy_score

    started = time.perf_counter()
    path = store.run_dir(run_id) / TARGETS_FILE
    labels = np.asarray(data.y_train, np.int64)
    probs = _cached(path, teacher_ids, labels)
    if probs is not None:
        return blend(probs, labels, weight), None
    probs, val = ensemble_probabilities(store, teacher_ids, data.x_train, data.x_val)
    with atomic_replace(path) as tmp, open(tmp, "wb") as fh:  # a file object: savez adds no ".npz"
        np.savez(fh, teachers=np.array(teacher_ids), labels=labels, probs=probs)
    record: dict[str, Any] = {"runs": teacher_ids, "weight": float(weight),
                              "train_accuracy": round(float(accuracy_score(labels, probs.argmax(1))), 4)}
    if len(data.y_val):
        record["val_accuracy"] = round(float(accuracy_score(data.y_val, val.argmax(1))), 4)
    record["seconds"] = round(time.perf_counter() - started, 1)
    return blend(probs, labels, weight), record
