"""What the real-time pipeline works with: the classifier it needs, and why a frame is skipped.

The result per face is fer_core.inference.results.FacePrediction, as on every other path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class ProbabilityClassifier(Protocol):
    """What the pipeline needs from fer_core.inference.classifier.EmotionClassifier."""

    def predict_proba(self, faces: Sequence[np.ndarray]) -> np.ndarray: ...


def frame_problem(frame: Any) -> str:
    """Short key for why a frame was skipped (for stats()["skip_reasons"])."""
    if frame is None:
        return "none"
    if not isinstance(frame, np.ndarray):
        return "not an array"
    if frame.dtype != np.uint8:
        return f"dtype {frame.dtype}"
    if frame.size == 0:
        return "empty"
    return f"shape {frame.shape}"
