"""Face tracks between detections: `Tracker` keeps each face's id, box and probability history.

On a detection round, detections are associated with the tracks by IoU (greedy, highest first;
a matched box is blended into the track's box to remove jitter, unmatched detections open new
tracks, a track unmatched for more than `max_missed` rounds is dropped). In between, each track
follows its face by template matching on a small grayscale copy of the frame (`TRACK_WIDTH` px
wide). `smooth` averages a track's probabilities over its last frames (mean, or an exponential
average). The real-time pipeline (fer_core.inference.realtime) and the video path use it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_core.inference.boxes import Box

TRACK_WIDTH = 160  # grayscale frame width for template tracking between detections
SMOOTHING_MODES = ("mean", "ema")


@dataclass
class Track:
    track_id: int
    box: Box
    history: deque = field(default_factory=deque)
    ema: np.ndarray | None = None
    template: np.ndarray | None = None  # grayscale patch at TRACK_WIDTH scale
    missed: int = 0  # consecutive detection rounds without a matching detection
    detected: bool = True
    probabilities: np.ndarray | None = None  # the last classification of this face (FER order)
    smoothed: np.ndarray | None = None  # its smoothed probabilities (Tracker.smooth)


class Tracker:
    """The tracks of one stream. Not thread-safe: the pipeline that owns it holds the lock.

    Args:
        min_iou: a detection continues a track when their boxes overlap at least this much.
        max_missed: drop a track after this many detection rounds without a matching detection.
        smoothing_window: average a track's probabilities over its last k frames (1: none).
        smoothing: "mean" (of the window) or "ema" (alpha = 2 / (window + 1)).
    """

    def __init__(self, min_iou: float = 0.3, max_missed: int = 1, smoothing_window: int = 5, smoothing: str = "mean"):
        if smoothing not in SMOOTHING_MODES:
            raise ValueError("smoothing must be 'mean' or 'ema'")
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.smoothing_window = max(1, int(smoothing_window))
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        self.tracks: list[Track] = []
        self._next_id = 1

    def step(self, frame: np.ndarray, detections: Sequence[Box] | None, follow: bool = True) -> list[Track]:
        """Advance one frame: `detections` on a detection round, None in between (the tracks
        follow their faces by template matching when `follow`). Returns the live tracks."""
        h, w = frame.shape[:2]
        scale = min(TRACK_WIDTH, w) / w
        gray = None
        if follow:
            small = cv2.resize(frame, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))),
                               interpolation=cv2.INTER_AREA)
            gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        if detections is not None:
            self._associate(list(detections))
        else:
            self._follow(gray, scale, w, h)
        if gray is not None:
            for tr in self.tracks:
                if tr.detected or tr.template is None:
                    tr.template = template_patch(gray, tr.box.scaled(scale))
        return self.tracks

    def smooth(self, track: Track, probabilities: np.ndarray) -> np.ndarray:
        """Add this frame's probabilities to the track; the smoothed probabilities."""
        if self.smoothing == "ema":
            alpha = 2.0 / (self.smoothing_window + 1.0)
            track.ema = probabilities.copy() if track.ema is None else (1 - alpha) * track.ema + alpha * probabilities
            return track.ema.astype(np.float32)
        if track.history.maxlen != self.smoothing_window:
            track.history = deque(track.history, maxlen=self.smoothing_window)
        track.history.append(probabilities)
        return np.mean(track.history, axis=0).astype(np.float32)

    def _associate(self, boxes: list[Box]) -> None:
        matched, new = associate(self.tracks, boxes, self.min_iou)
        kept = []
        for i, tr in enumerate(self.tracks):
            tr.detected = i in matched
            if tr.detected:
                tr.box = blend_box(tr.box, boxes[matched[i]], 0.7)
                tr.missed = 0
                tr.template = None
                kept.append(tr)
            else:
                tr.missed += 1
                if tr.missed <= self.max_missed:
                    kept.append(tr)
        for j in new:
            kept.append(Track(self._next_id, boxes[j], deque(maxlen=self.smoothing_window)))
            self._next_id += 1
        self.tracks = kept

    def _follow(self, gray: np.ndarray | None, scale: float, w: int, h: int) -> None:
        for tr in self.tracks:
            tr.detected = False
            if gray is None or tr.template is None:
                continue
            shift = match_template(gray, tr.template, tr.box.scaled(scale))
            if shift is not None:
                moved = tr.box.translated(shift[0] / scale, shift[1] / scale)
                tr.box = moved.clipped(w, h) or tr.box


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
