"""The drawn overlay: a box and 'label 87%' per face in the emotion's colour, and corner text."""

from __future__ import annotations

import cv2
import numpy as np

from fer_core.colors import emotion_bgr
from fer_core.inference.boxes import Box


UNCERTAIN_BGR = (150, 150, 150)


def draw_face(frame: np.ndarray, box: Box, label: str, confidence: float, track_id: int | None = None,
              uncertain: bool = False) -> None:
    """Draw a box and 'label 87%' (with `track_id`: '#2 label 87%') in the emotion's colour on a BGR frame
    (in place); `uncertain`: in grey, 'uncertain: label? 38%' (a confidence under the user's threshold)."""
    colour = UNCERTAIN_BGR if uncertain else emotion_bgr(label)
    h, w = frame.shape[:2]
    thick = max(1, int(round(min(w, h) / 240)))
    x0, y0 = int(box.x), int(box.y)
    x1, y1 = int(box.x + box.w), int(box.y + box.h)
    cv2.rectangle(frame, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
    shown = f"uncertain: {label}?" if uncertain else label
    text = (f"#{track_id} " if track_id is not None else "") + f"{shown} {confidence * 100:.0f}%"
    scale = max(0.4, min(1.2, box.w / 160.0)) * max(0.6, min(w, h) / 480.0)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    ty = y0 - 4 if y0 - th - base - 4 >= 0 else min(h - 1, y1 + th + base + 4)
    cv2.rectangle(frame, (x0, ty - th - base), (min(w - 1, x0 + tw + 4), ty + base // 2), colour, -1)
    luma = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luma > 140 else (255, 255, 255)
    cv2.putText(frame, text, (x0 + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thick, cv2.LINE_AA)


def draw_text(frame: np.ndarray, text: str, org: tuple[int, int] = (8, 22)) -> None:
    cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
