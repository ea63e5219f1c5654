"""Video clips with real faces, made with PyAV, for the video tests, benchmarks/video.py and the
sample clip the app ships (docs/make_sample_clip.py).

The face is the astronaut photo of scikit-image (NASA, public domain); a "second person" is its
mirror image. `make_clip` moves and scales the faces over a plain background and can add a
second face part-way, a stretch with no face, a sound track, and phone-style rotation metadata
(frames stored turned, the display matrix turning them back).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

FACE_BOX = (150, 30, 150, 190)  # x, y, w, h of the face with hair and chin in skimage's 512x512 astronaut


def astronaut_face() -> np.ndarray:
    from skimage import data

    x, y, w, h = FACE_BOX
    return cv2.cvtColor(data.astronaut()[y:y + h, x:x + w], cv2.COLOR_RGB2BGR)


@dataclass(frozen=True)
class ClipPlan:
    seconds: float = 6.0
    fps: int = 30
    size: tuple[int, int] = (640, 480)
    faces: int = 1  # 1-4 faces from the start
    second_face_from: float | None = None  # a second face enters at this time (s)
    no_face_from: float | None = None  # no face at all from this time (s) to the end
    audio: bool = False
    rotate: int = 0  # 90: frames stored turned 90 degrees counter-clockwise, display matrix turns them back


def _frame(plan: ClipPlan, face: np.ndarray, t: float) -> np.ndarray:
    w, h = plan.size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.linspace(70, 130, w, dtype=np.uint8)[None, :, None]
    if plan.no_face_from is not None and t >= plan.no_face_from:
        return img
    u = t / max(plan.seconds, 1e-6)
    scale = (0.55 + 0.25 * u) * h / 480.0
    side_h = int(face.shape[0] * scale)
    side_w = int(face.shape[1] * scale)
    people = [(face, 0.08 + 0.25 * u, 0.12)]
    if plan.faces >= 2 or (plan.second_face_from is not None and t >= plan.second_face_from):
        people.append((face[:, ::-1], 0.62, 0.18))
    for k in range(2, plan.faces):
        people.append((face if k % 2 else face[:, ::-1], 0.08 + 0.5 * (k % 2) + 0.25 * u, 0.55))
    for img_face, fx, fy in people:
        f = cv2.resize(img_face, (side_w, side_h), interpolation=cv2.INTER_AREA)
        x0, y0 = int(fx * w), int(fy * h)
        x1, y1 = min(w, x0 + side_w), min(h, y0 + side_h)
        img[y0:y1, x0:x1] = f[: y1 - y0, : x1 - x0]
    return img


def make_clip(path: str | Path, plan: ClipPlan | None = None) -> Path:
    """Write an H.264 MP4 following `plan`; returns its path."""
    import av

    plan = plan or ClipPlan()
    face = astronaut_face()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = plan.size
    stored = (h, w) if plan.rotate in (90, 270) else (w, h)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=plan.fps)
        video.width, video.height = stored
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "veryfast", "crf": "20"}
        if plan.rotate:
            video.set_display_rotation(-plan.rotate)  # FFmpeg's angle is counter-clockwise
        audio = out.add_stream("aac", rate=48000) if plan.audio else None
        n = int(round(plan.seconds * plan.fps))
        for i in range(n):
            img = _frame(plan, face, i / plan.fps)
            if plan.rotate == 90:
                img = cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
            elif plan.rotate == 270:
                img = cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, plan.fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            rate, chunk = 48000, 1024
            total = int(plan.seconds * rate)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(total) / rate)).astype(np.float32)
            for start in range(0, total - chunk + 1, chunk):
                frame = av.AudioFrame.from_ndarray(tone[None, start:start + chunk], format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    return path
