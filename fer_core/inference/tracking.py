"""Face tracks between detections: IoU association, box smoothing, template matching on a small gray frame."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_core.inference.boxes import Box

# Chosen from benchmarks/realtime.py measurements: see docs/REALTIME.md.


TRACK_WIDTH = 160  # grayscale frame width for template tracking between detections


@dataclass
class Track:
    track_id: int
    box: Box
    history: deque = field(default_factory=deque)
    ema: np.ndarray | None = None
    template: np.ndarray | None = None  # grayscale patch at TRACK_WIDTH scale
    missed: int = 0  # consecutive detection rounds without a matching detection
    detected: bool = True


# ----------------------------------------------------------------------------- helpers


def associate(tracks: Sequence[Track], boxes: Sequence[Box], min_iou: float) -> tuple[dict[int, int], list[int]]:
    """Greedy IoU matching: {track index: box index}, unmatched box indices."""
    pairs = sorted(((t.box.iou(b), i, j) for i, t in enumerate(tracks) for j, b in enumerate(boxes)), reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for v, i, j in pairs:
        if v < min_iou:
            break
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched, [j for j in range(len(boxes)) if j not in used]


# ----------------------------------------------------------------------------- pipeline


def blend_box(old: Box, new: Box, alpha: float) -> Box:
    """Move a track's box toward the new detection (alpha = weight of the new box): less jitter."""
    if old.iou(new) < 0.5:
        return new
    x = alpha * new.x + (1 - alpha) * old.x
    y = alpha * new.y + (1 - alpha) * old.y
    bw = alpha * new.w + (1 - alpha) * old.w
    bh = alpha * new.h + (1 - alpha) * old.h
    return Box(int(round(x)), int(round(y)), int(round(bw)), int(round(bh)), new.score, new.landmarks)


def template_patch(gray: np.ndarray, box: Box) -> np.ndarray | None:
    c = box.clipped(gray.shape[1], gray.shape[0])
    if c is None or c.w < 6 or c.h < 6:
        return None
    return gray[c.y : c.y + c.h, c.x : c.x + c.w].copy()


def match_template(gray: np.ndarray, template: np.ndarray, box: Box, min_score: float = 0.5) -> tuple[float, float] | None:
    """Where did the template (taken at `box`'s last position) go? (dx, dy) in `gray` pixels, or None."""
    th, tw = template.shape
    H, W = gray.shape
    bx, by = max(0, min(box.x, W - tw)), max(0, min(box.y, H - th))
    rx, ry = max(tw // 2, 4), max(th // 2, 4)
    x0, y0 = max(0, bx - rx), max(0, by - ry)
    x1, y1 = min(W, bx + tw + rx), min(H, by + th + ry)
    region = gray[y0:y1, x0:x1]
    if region.shape[0] < th or region.shape[1] < tw:
        return None
    res = cv2.matchTemplate(region, template, cv2.TM_CCOEFF_NORMED)
    _, score, _, loc = cv2.minMaxLoc(res)
    if not np.isfinite(score) or score < min_score:
        return None
    return (x0 + loc[0] - bx, y0 + loc[1] - by)
