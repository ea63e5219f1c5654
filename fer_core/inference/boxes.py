"""Face boxes (with optional eye/nose/mouth landmarks) and non-maximum suppression."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates of the frame it was found in.

    `landmarks`, when the detector gives them, are 5 (x, y) points in the same coordinates:
    the eye on the image's left, the eye on the image's right, nose tip, mouth corner on the
    image's left, mouth corner on the image's right.
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)

    @property
    def area(self) -> int:
        return max(self.w, 0) * max(self.h, 0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def scaled(self, factor: float) -> Box:
        """The same box in a frame resized by `factor` (coordinates multiplied)."""
        lm = None
        if self.landmarks is not None:
            lm = tuple((px * factor, py * factor) for px, py in self.landmarks)
        return Box(
            int(round(self.x * factor)),
            int(round(self.y * factor)),
            int(round(self.w * factor)),
            int(round(self.h * factor)),
            self.score,
            lm,
        )

    def translated(self, dx: float, dy: float) -> Box:
        lm = None
        if self.landmarks is not None:
            lm = tuple((px + dx, py + dy) for px, py in self.landmarks)
        return replace(self, x=int(round(self.x + dx)), y=int(round(self.y + dy)), landmarks=lm)

    def clipped(self, width: int, height: int) -> Box | None:
        """The part of the box inside a width x height frame, or None if nothing is left."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        return replace(self, x=x0, y=y0, w=x1 - x0, h=y1 - y0)

    def eye_angle(self) -> float | None:
        """Roll angle in degrees (positive: the image-right eye is lower), from the landmarks."""
        if self.landmarks is None or len(self.landmarks) < 2:
            return None
        (lx, ly), (rx, ry) = self.landmarks[0], self.landmarks[1]
        if rx - lx <= 1:
            return None
        return math.degrees(math.atan2(ry - ly, rx - lx))

    def to_dict(self) -> dict:
        d = {"x": int(self.x), "y": int(self.y), "w": int(self.w), "h": int(self.h), "score": round(float(self.score), 4)}
        if self.landmarks is not None:
            d["landmarks"] = [[round(float(px), 1), round(float(py), 1)] for px, py in self.landmarks]
        return d


def _overlap_of_smaller(a: Box, b: Box) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    small = min(a.area, b.area)
    return ix * iy / small if small > 0 else 0.0


def nms(boxes: Sequence[Box], iou_threshold: float = 0.4, containment: float = 0.8) -> list[Box]:
    """Greedy non-maximum suppression, highest score first. A box is also dropped when it and a
    kept box lie mostly inside one another (`containment` of the smaller one's area): one face,
    two box sizes."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(b.iou(k) < iou_threshold and _overlap_of_smaller(b, k) < containment for k in kept):
            kept.append(b)
    return kept
