"""The arrays a run trains on: a stratified cap on train images, the validation split (a
stratified fraction of train or a named split), class weights. No TensorFlow here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_core.training.config import TrainConfig


@dataclass
class TrainingData:
    """The arrays a run trains and validates on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    validation_source: str  # "train fraction 0.2" or a split name
    sample_weights: np.ndarray | None = None
    class_weight: dict[int, float] | None = None


def _stratified_take(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a stratified random subset of size n (plain random when strata are too small)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if n >= len(y):
        return idx
    try:
        keep, _ = train_test_split(idx, train_size=n, stratify=y, random_state=seed)
    except ValueError:
        keep, _ = train_test_split(idx, train_size=n, random_state=seed)
    return np.sort(keep)


def prepare_training_data(dataset: Any, config: TrainConfig) -> TrainingData:
    """Train/validation arrays per config (cap, stratified split, class weights)."""
    from sklearn.model_selection import train_test_split
    from sklearn.utils.class_weight import compute_class_weight

    splits = dataset.splits
    if "train" not in splits:
        raise ValueError(f"the dataset has no 'train' split (splits: {', '.join(splits) or 'none'})")
    x = np.asarray(splits["train"].images)
    y = np.asarray(splits["train"].labels, dtype=np.int64)
    if len(y) < 14:
        raise ValueError(f"the train split has only {len(y)} images; at least 14 are needed")
    if config.max_train_images is not None and config.max_train_images < len(y):
        keep = _stratified_take(y, config.max_train_images, config.seed)
        x, y = x[keep], y[keep]

    frac = config.validation_fraction
    if frac is not None:
        idx = np.arange(len(y))
        try:
            tr, va = train_test_split(idx, test_size=frac, stratify=y, random_state=config.seed)
        except ValueError:  # a class with a single image cannot be stratified
            tr, va = train_test_split(idx, test_size=frac, random_state=config.seed)
        x_tr, y_tr, x_va, y_va = x[np.sort(tr)], y[np.sort(tr)], x[np.sort(va)], y[np.sort(va)]
        source = f"train fraction {config.validation}"
    else:
        if config.validation not in splits:
            raise ValueError(
                f"validation split {config.validation!r} is not in the dataset (splits: {', '.join(splits)})"
            )
        x_tr, y_tr = x, y
        x_va = np.asarray(splits[config.validation].images)
        y_va = np.asarray(splits[config.validation].labels, dtype=np.int64)
        source = config.validation
    if len(y_va) == 0:
        raise ValueError("the validation set is empty")

    weights = class_weight = None
    if config.class_weights:
        present = np.unique(y_tr)
        w = compute_class_weight("balanced", classes=present, y=y_tr)
        class_weight = {int(c): float(v) for c, v in zip(present, w)}
        weights = np.array([class_weight[int(c)] for c in y_tr], dtype=np.float32)
    return TrainingData(x_tr, y_tr, x_va, y_va, source, weights, class_weight)


# --------------------------------------------------------------------------- callbacks


def check_batch_arrays(
    images_uint8: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    sample_weights: np.ndarray | None = None,
    num_classes: int = 7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Images as uint8 (N, H, W, C), labels as int64 (N,), weights as float32 (N,) or None, for either
    training feed (pipeline.make_dataset, feeding.array_batches); ValueError on anything inconsistent."""
    x = np.asarray(images_uint8)
    if x.dtype != np.uint8:
        raise ValueError(f"images must be uint8; got {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C); got {x.shape}")
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}); got range [{y.min()}, {y.max()}]")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    w = None
    if sample_weights is not None:
        w = np.asarray(sample_weights, dtype=np.float32).reshape(-1)
        if len(w) != len(y):
            raise ValueError(f"{len(w)} sample weights but {len(y)} labels")
    return x, y, w
