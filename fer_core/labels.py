"""The one canonical label order (FER-2013 CSV order) and conversions from others.

The Kaggle image folders sort alphabetically (angry, disgust, fear, happy, neutral,
sad, surprise): indices 4-6 differ from the CSV order. Every dataset in fer_core uses
FER_LABELS indices; every model carries its own label list in its meta.json.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
ALPHABETICAL_LABELS: tuple[str, ...] = tuple(sorted(FER_LABELS))
NUM_CLASSES = len(FER_LABELS)

# Folder names seen in the wild for the same classes.
_ALIASES = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
}


def canonical_label(name: str) -> str | None:
    """Map a class name (any case, common aliases) to its canonical name, or None."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in FER_LABELS else None


def label_index(name: str) -> int | None:
    """Index of a class name in FER_LABELS (canonical order), or None if unknown."""
    canon = canonical_label(name)
    return None if canon is None else FER_LABELS.index(canon)


def remap_indices(y: np.ndarray, from_labels: Sequence[str], to_labels: Sequence[str]) -> np.ndarray:
    """Convert class indices expressed in `from_labels` order into `to_labels` order."""
    from_c = [canonical_label(n) or n for n in from_labels]
    to_c = [canonical_label(n) or n for n in to_labels]
    missing = [n for n in from_c if n not in to_c]
    if missing:
        raise ValueError(f"labels {missing} have no place in {list(to_labels)}")
    table = np.array([to_c.index(n) for n in from_c], dtype=np.int64)
    return table[np.asarray(y, dtype=np.int64)]


def reorder_probabilities(probs: np.ndarray, model_labels: Sequence[str], to_labels: Sequence[str] = FER_LABELS) -> np.ndarray:
    """Reorder the columns of a model's probabilities (model_labels order) into `to_labels` order."""
    model_c = [canonical_label(n) or n for n in model_labels]
    cols = []
    for name in to_labels:
        canon = canonical_label(name) or name
        if canon not in model_c:
            raise ValueError(f"model has no class {name!r}; its labels are {list(model_labels)}")
        cols.append(model_c.index(canon))
    return np.asarray(probs)[..., cols]
