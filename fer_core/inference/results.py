"""One face's result, the same type on every path: photos, the webcam, the CLI (and video)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_core.inference.boxes import Box
from fer_core.labels import FER_LABELS


@dataclass
class FacePrediction:
    """Where a face is, what it shows and how sure the model is (probabilities in FER_LABELS order).

    Photos fill `index` (reading order in the photo) and `whole_image`; a stream fills `track_id`
    (the same face across frames), `raw_probabilities` (this frame's own prediction; `probabilities`
    are smoothed over frames) and `detected` (False: the tracker followed the box this frame).
    The label and confidence are always those of `probabilities`.
    """

    probabilities: np.ndarray  # (7,) FER_LABELS order
    box: Box | None = None
    index: int = 0
    track_id: int | None = None
    raw_probabilities: np.ndarray | None = None
    detected: bool = True
    whole_image: bool = False  # no face was found in the photo; the whole image was classified

    @property
    def label(self) -> str:
        return FER_LABELS[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: box, label, confidence, probabilities by class name, and the fields that are set."""
        out: dict[str, Any] = {
            "index": self.index,
            "box": self.box.to_dict() if self.box is not None else None,
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": {n: round(float(p), 4) for n, p in zip(FER_LABELS, self.probabilities)},
            "whole_image": self.whole_image,
        }
        if self.track_id is not None:
            out.update(track_id=self.track_id, detected=self.detected)
        return out


def face_predictions(probabilities: np.ndarray) -> list[FacePrediction]:
    """One FacePrediction (no box) per row of probabilities, in order."""
    return [FacePrediction(np.asarray(row, dtype=np.float32), index=i) for i, row in enumerate(probabilities)]
