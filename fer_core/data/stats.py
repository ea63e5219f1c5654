"""Numbers and pictures for the dataset explorer, computed from a Dataset (NumPy only, no TF).

Everything here takes plain arrays / dicts so the UI and the CLI can share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fer_core.labels import FER_LABELS


def class_counts(labels: np.ndarray, class_names: Sequence[str] = FER_LABELS) -> dict[str, int]:
    """Count of each class (all classes present as keys, zero when absent)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=len(class_names)) if labels.size else np.zeros(len(class_names), int)
    return {name: int(counts[i]) for i, name in enumerate(class_names)}


def imbalance_ratio(counts: Mapping[str, int]) -> float | None:
    """Largest class count / smallest non-zero class count; None when there is no data.

    Classes with zero images are not part of the ratio (that would be infinite); the UI
    lists them separately as missing.
    """
    values = [int(v) for v in counts.values() if int(v) > 0]
    if not values:
        return None
    return max(values) / min(values)


def missing_classes(counts: Mapping[str, int]) -> list[str]:
    return [k for k, v in counts.items() if int(v) == 0]


def sample_indices(
    labels: np.ndarray,
    per_class: int,
    seed: int | None = 0,
    num_classes: int = len(FER_LABELS),
    exclude: Sequence[int] | None = None,
) -> dict[int, np.ndarray]:
    """Up to `per_class` random indices of each class (reproducible for a given seed)."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    excluded = np.zeros(labels.shape[0], dtype=bool)
    if exclude is not None and len(exclude):
        excluded[np.asarray(exclude, dtype=np.int64)] = True
    out: dict[int, np.ndarray] = {}
    for c in range(num_classes):
        idx = np.flatnonzero((labels == c) & ~excluded)
        if idx.size > per_class:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        out[c] = idx
    return out


def mean_faces(images: np.ndarray, labels: np.ndarray, num_classes: int = len(FER_LABELS)) -> dict[int, np.ndarray | None]:
    """Per-class mean image (uint8, same HxW), or None for a class with no image."""
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    out: dict[int, np.ndarray | None] = {}
    for c in range(num_classes):
        sel = labels == c
        if not sel.any():
            out[c] = None
            continue
        # Accumulate in chunks: FER-2013 train is 28k images, float64 of all of them is 500 MB.
        total = np.zeros(images.shape[1:], dtype=np.float64)
        idx = np.flatnonzero(sel)
        for start in range(0, idx.size, 4096):
            total += images[idx[start:start + 4096]].astype(np.float64).sum(axis=0)
        out[c] = np.clip(np.rint(total / idx.size), 0, 255).astype(np.uint8)
    return out


def pixel_histogram(images: np.ndarray, bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(bin_left_edges, fraction of pixels per bin) of uint8 images; fractions sum to 1."""
    images = np.asarray(images)
    if images.size == 0:
        return np.arange(0, 256, 256 // bins), np.zeros(bins)
    counts = np.bincount(images.reshape(-1).astype(np.uint8), minlength=256).astype(np.float64)
    width = 256 // bins
    binned = counts.reshape(bins, width).sum(axis=1)
    return np.arange(0, 256, width), binned / binned.sum()


def image_brightness_stats(images: np.ndarray) -> dict[str, float]:
    images = np.asarray(images, dtype=np.float32)
    if images.size == 0:
        return {"mean": 0.0, "std": 0.0}
    return {"mean": float(images.mean()), "std": float(images.std())}


def montage(images: Sequence[np.ndarray], cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile equal-sized grayscale images into one uint8 image (rows filled left to right)."""
    if len(images) == 0:
        return np.full((1, 1), fill, dtype=np.uint8)
    h, w = np.asarray(images[0]).shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = np.asarray(img)[:h, :w]
    return out


def report_rows(report: Any) -> dict[str, Any]:
    """Flatten a LoadReport into plain tables for display.

    Returns {"skipped_by_reason": [(reason, count)], "skipped_examples": [(item, reason)],
    "blank": [(split, count)], "duplicates_within": [(split, groups, images)],
    "duplicates_across": [(split_a, split_b, pairs)], "totals": {split: n}}.
    Works on a LoadReport or on its to_dict().
    """
    get = (lambda k, d=None: report.get(k, d)) if isinstance(report, Mapping) else (lambda k, d=None: getattr(report, k, d))
    counts = get("counts", {}) or {}
    totals = {split: int(sum(c.values())) for split, c in counts.items()}
    skipped_by_reason = sorted(((str(r), int(n)) for r, n in (get("skipped_by_reason", {}) or {}).items()), key=lambda t: -t[1])
    skipped_examples = [(str(s.get("item", "")), str(s.get("reason", ""))) for s in (get("skipped", []) or [])]
    blank = [(split, len(idx)) for split, idx in (get("blank", {}) or {}).items()]
    dup_within = []
    for split, groups in (get("duplicates_within", {}) or {}).items():
        groups = list(groups)
        dup_within.append((split, len(groups), int(sum(len(g) for g in groups))))
    across: dict[tuple[str, str], int] = {}
    for pair in get("duplicates_across", []) or []:
        key = (str(pair.get("split_a")), str(pair.get("split_b")))
        across[key] = across.get(key, 0) + 1
    dup_across = [(a, b, n) for (a, b), n in sorted(across.items())]
    return {
        "totals": totals,
        "skipped_by_reason": skipped_by_reason,
        "skipped_examples": skipped_examples,
        "blank": blank,
        "duplicates_within": dup_within,
        "duplicates_across": dup_across,
    }
