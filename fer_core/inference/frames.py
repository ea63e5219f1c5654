"""What the real-time pipeline works with: the classifier it needs, the result per face, bad frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fer_core.inference.boxes import Box
from fer_core.labels import FER_LABELS


class ProbabilityClassifier(Protocol):
    """What the pipeline needs from fer_core.inference.classifier.EmotionClassifier."""

    def predict_proba(self, faces: Sequence[np.ndarray]) -> np.ndarray: ...


@dataclass
class FaceResult:
    """One face in one frame."""

    track_id: int
    box: Box
    label: str
    confidence: float
    probabilities: np.ndarray  # (7,) smoothed, FER_LABELS order
    raw_probabilities: np.ndarray  # (7,) this frame's own prediction
    detected: bool  # True: box from the detector this frame; False: followed by the tracker

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "box": self.box.to_dict(),
            "label": self.label,
            "confidence": round(float(self.confidence), 4),
            "probabilities": {n: round(float(p), 4) for n, p in zip(FER_LABELS, self.probabilities)},
            "detected": self.detected,
        }


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
