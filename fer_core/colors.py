"""One colour per emotion, shared by charts, annotated images and the webcam overlay.

Hex strings for plotly/CSS, RGB and BGR tuples for drawing on images (PIL / OpenCV).
"""

from __future__ import annotations

from fer_core.labels import FER_LABELS, canonical_label

EMOTION_HEX: dict[str, str] = {
    "angry": "#E4572E",
    "disgust": "#4CAF50",
    "fear": "#8E44AD",
    "happy": "#F4B400",
    "sad": "#2E86DE",
    "surprise": "#FF6F91",
    "neutral": "#7F8C8D",
}
FALLBACK_HEX = "#17BECF"

assert set(EMOTION_HEX) == set(FER_LABELS)


def emotion_hex(label: str) -> str:
    """Hex colour of an emotion (any alias/case); a neutral cyan for unknown labels."""
    canon = canonical_label(label)
    return EMOTION_HEX.get(canon or "", FALLBACK_HEX)


def emotion_rgb(label: str) -> tuple[int, int, int]:
    h = emotion_hex(label).lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def emotion_bgr(label: str) -> tuple[int, int, int]:
    r, g, b = emotion_rgb(label)
    return b, g, r
