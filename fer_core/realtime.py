"""Real-time face emotion pipeline for the webcam: detect, track, classify, smooth, draw.

`FramePipeline.process(frame_bgr) -> (annotated_bgr, [FaceResult])` per camera frame:

1. the frame is checked (corrupt frames are returned as they came and counted, never raised);
2. every `detect_every`-th frame the detector runs on a copy downscaled to `downscale_width`;
   detections are associated with existing tracks by IoU (track ids are stable); in between,
   each track follows its face by template matching on a small grayscale frame;
3. all faces of the frame are cropped (square, with `margin`, optionally rotated upright from
   the eye landmarks) and classified in ONE compiled batch call;
4. each track's probabilities are smoothed over its last `smoothing_window` frames (mean, or an
   exponential average), which removes label flicker;
5. boxes and labels are drawn on a copy of the frame (a frame with no face is returned
   untouched, the same pixels, unless `show_fps` asks for the FPS text).

Latency and FPS are measured per frame (`stats()`). One lock guards the state: `process` may
run in streamlit-webrtc's callback thread while the page thread reads `stats()` or calls
`configure(...)`. Frames are BGR throughout (see fer_core.images); `webrtc_callback` asks PyAV
for bgr24 directly, so no RGB conversion happens anywhere on the way.

No TensorFlow import here: the classifier object brings it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from fer_core.colors import emotion_bgr
from fer_core.errors import ImageError
from fer_core.faces import Box, FaceDetector
from fer_core.images import ensure_bgr
from fer_core.labels import FER_LABELS

# Chosen from benchmarks/realtime.py measurements: see docs/REALTIME.md.
DEFAULT_DETECT_EVERY = 2
DEFAULT_DOWNSCALE_WIDTH = 480
DEFAULT_SMOOTHING_WINDOW = 5
DEFAULT_MARGIN = 0.1
TRACK_WIDTH = 160  # grayscale frame width for template tracking between detections
MAX_CROP_SIDE = 192  # crops are warped at most this big (the model input is 48-64 px)
_WARP_LIMIT = 32767  # cv2.warpAffine refuses images with a side of SHRT_MAX pixels or more


class ProbabilityClassifier(Protocol):
    """What the pipeline needs from fer_core.classifier.EmotionClassifier."""

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


@dataclass
class _Track:
    track_id: int
    box: Box
    history: deque = field(default_factory=deque)
    ema: np.ndarray | None = None
    template: np.ndarray | None = None  # grayscale patch at TRACK_WIDTH scale
    missed: int = 0  # consecutive detection rounds without a matching detection
    detected: bool = True


# ----------------------------------------------------------------------------- helpers


def crop_face(
    frame: np.ndarray,
    box: Box,
    margin: float = DEFAULT_MARGIN,
    align: bool = False,
    max_side: int = MAX_CROP_SIDE,
) -> np.ndarray:
    """Square crop around `box`, `margin` (fraction of the box side) added on every side.

    With `align` and eye landmarks, the crop is rotated so the eyes are level. Parts outside the
    frame are filled by replicating the border. The crop is at most `max_side` pixels a side.
    """
    cx, cy = box.center
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    side = max(side, 2.0)
    out = int(min(max_side, max(8, round(side))))
    angle = box.eye_angle() if align else None
    if max(frame.shape[:2]) >= _WARP_LIMIT:  # e.g. a 1 x 40,000 px upload: warp only the region around the box
        frame, cx, cy, side = _crop_region(frame, cx, cy, side)
    m = cv2.getRotationMatrix2D((cx, cy), angle or 0.0, out / side)
    m[0, 2] += out / 2.0 - cx
    m[1, 2] += out / 2.0 - cy
    interp = cv2.INTER_AREA if out < side and not angle else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, m, (out, out), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def _crop_region(frame: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, float, float, float]:
    """The part of a very large frame a crop of `side` around (cx, cy) can sample, at any rotation,
    shrunk if still too large for cv2.warpAffine; with the centre and side in its coordinates."""
    h, w = frame.shape[:2]
    reach = int(math.ceil(side * 0.75)) + 2  # > half the diagonal of the rotated square
    x0 = min(max(0, int(cx) - reach), w - 1)
    y0 = min(max(0, int(cy) - reach), h - 1)
    x1 = max(x0 + 1, min(w, int(cx) + reach + 1))
    y1 = max(y0 + 1, min(h, int(cy) + reach + 1))
    region, cx, cy = frame[y0:y1, x0:x1], cx - x0, cy - y0
    big = max(region.shape[:2])
    if big >= _WARP_LIMIT:
        f = (_WARP_LIMIT - 1) / big
        size = (max(1, int(region.shape[1] * f)), max(1, int(region.shape[0] * f)))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        cx, cy, side = cx * f, cy * f, side * f
    return region, cx, cy, side


def draw_face(frame: np.ndarray, box: Box, label: str, confidence: float, track_id: int | None = None) -> None:
    """Draw a box and 'label 87%' in the emotion's colour on a BGR frame (in place)."""
    colour = emotion_bgr(label)
    h, w = frame.shape[:2]
    thick = max(1, int(round(min(w, h) / 240)))
    x0, y0 = int(box.x), int(box.y)
    x1, y1 = int(box.x + box.w), int(box.y + box.h)
    cv2.rectangle(frame, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
    text = f"{label} {confidence * 100:.0f}%"
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


def _associate(tracks: Sequence[_Track], boxes: Sequence[Box], min_iou: float) -> tuple[dict[int, int], list[int]]:
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


class FramePipeline:
    """Per-frame detect / track / classify / smooth / draw. See the module docstring.

    Args:
        detector: any `FaceDetector` (fer_core.faces.make_detector()).
        classifier: an EmotionClassifier (anything with `predict_proba(crops) -> (N, 7)` in FER order).
        detect_every: run the detector on every N-th frame, track in between (1: every frame).
        downscale_width: detect on a copy this wide (None: full size); boxes come back in frame pixels.
        smoothing_window: average a face's probabilities over its last k frames (1: no smoothing).
        smoothing: "mean" (of the window) or "ema" (alpha = 2 / (window + 1)).
        margin: extra crop around the face box, as a fraction of its side.
        align: rotate crops upright from the eye landmarks (detectors that give landmarks).
        max_faces: at most this many faces per frame (largest first).
        max_missed: drop a track after this many detection rounds without a matching detection.
        show_fps: write "FPS / ms" in the corner of every frame.
        draw: draw boxes and labels (False: return the frame untouched, results only).
    """

    def __init__(
        self,
        detector: FaceDetector,
        classifier: ProbabilityClassifier,
        detect_every: int = DEFAULT_DETECT_EVERY,
        downscale_width: int | None = DEFAULT_DOWNSCALE_WIDTH,
        smoothing_window: int = DEFAULT_SMOOTHING_WINDOW,
        margin: float = DEFAULT_MARGIN,
        *,
        smoothing: str = "mean",
        align: bool = True,
        max_faces: int = 8,
        max_missed: int = 1,
        min_iou: float = 0.3,
        show_fps: bool = False,
        draw: bool = True,
        copy: bool = True,
    ):
        self.detector = detector
        self.classifier = classifier
        self._lock = threading.RLock()
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.copy = copy
        self.configure(
            detect_every=detect_every,
            downscale_width=downscale_width,
            smoothing_window=smoothing_window,
            margin=margin,
            smoothing=smoothing,
            align=align,
            max_faces=max_faces,
            show_fps=show_fps,
            draw=draw,
        )
        self.reset()

    # -- settings and state ---------------------------------------------------------------------

    def configure(self, **settings: Any) -> None:
        """Change settings between frames (thread-safe): detect_every, downscale_width,
        smoothing_window, smoothing, margin, align, max_faces, show_fps, draw, detector, classifier."""
        with self._lock:
            for key, value in settings.items():
                if key == "detect_every":
                    value = max(1, int(value))
                elif key == "downscale_width":
                    value = None if not value else max(64, int(value))
                elif key == "smoothing_window":
                    value = max(1, int(value))
                elif key == "smoothing":
                    if value not in ("mean", "ema"):
                        raise ValueError("smoothing must be 'mean' or 'ema'")
                elif key == "margin":
                    value = float(min(max(value, 0.0), 1.0))
                elif key == "max_faces":
                    value = max(1, int(value))
                elif key in ("detector", "classifier"):
                    setattr(self, key, value)
                    self._tracks = []  # old tracks belong to the old detector / model
                    continue
                elif key not in ("align", "show_fps", "draw"):
                    raise TypeError(f"unknown setting {key!r}")
                setattr(self, key, value)
            if "smoothing_window" in settings and hasattr(self, "_tracks"):
                for t in self._tracks:
                    t.history = deque(t.history, maxlen=self.smoothing_window)

    def reset(self) -> None:
        """Forget tracks and statistics (e.g. when the stream restarts)."""
        with self._lock:
            self._tracks: list[_Track] = []
            self._next_id = 1
            self._frame_index = 0
            self.frames = 0
            self.skipped_frames = 0
            self.skip_reasons: dict[str, int] = {}
            self.errors = 0
            self.last_error: str | None = None
            self._latencies: deque[float] = deque(maxlen=300)
            self._detect_ms: deque[float] = deque(maxlen=300)
            self._classify_ms: deque[float] = deque(maxlen=300)
            self._arrivals: deque[float] = deque(maxlen=60)
            self.last_results: list[FaceResult] = []

    def stats(self) -> dict[str, Any]:
        """Rolling numbers: fps (frames arriving per second), latency p50/p95/mean (ms), etc."""
        with self._lock:
            lat = np.asarray(self._latencies, dtype=np.float64) * 1000.0
            arr = list(self._arrivals)
            fps = (len(arr) - 1) / (arr[-1] - arr[0]) if len(arr) >= 2 and arr[-1] > arr[0] else math.nan

            def pct(a: np.ndarray, q: float) -> float:
                return float(np.percentile(a, q)) if a.size else math.nan

            return {
                "frames": self.frames,
                "skipped_frames": self.skipped_frames,
                "skip_reasons": dict(self.skip_reasons),
                "errors": self.errors,
                "last_error": self.last_error,
                "faces": len(self.last_results),
                "fps": fps,
                "processing_fps": 1000.0 / float(lat.mean()) if lat.size and lat.mean() > 0 else math.nan,
                "latency_ms_p50": pct(lat, 50),
                "latency_ms_p95": pct(lat, 95),
                "latency_ms_mean": float(lat.mean()) if lat.size else math.nan,
                "detect_ms_mean": float(np.mean(self._detect_ms)) * 1000.0 if self._detect_ms else math.nan,
                "classify_ms_mean": float(np.mean(self._classify_ms)) * 1000.0 if self._classify_ms else math.nan,
            }

    # -- per frame ---------------------------------------------------------------------------------

    def __call__(self, frame_bgr: Any) -> Any:
        return self.process(frame_bgr)[0]

    def process(self, frame_bgr: Any) -> tuple[Any, list[FaceResult]]:
        """One camera frame -> (annotated frame, per-face results). Never raises on a bad frame."""
        t0 = time.perf_counter()
        try:
            frame = ensure_bgr(frame_bgr)
        except ImageError:
            with self._lock:
                self.skipped_frames += 1
                reason = _frame_problem(frame_bgr)
                self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1
            return frame_bgr, []
        with self._lock:
            self._arrivals.append(t0)
            try:
                results = self._process(frame)
            except Exception as exc:  # noqa: BLE001 - a stream callback must not die on one frame
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._tracks = []
                results = []
            self.frames += 1
            self.last_results = results
            out: Any = frame_bgr if frame is frame_bgr else frame
            if (results and self.draw) or self.show_fps:
                out = frame.copy() if (self.copy and frame is frame_bgr) else frame
                if self.draw:
                    for r in results:
                        draw_face(out, r.box, r.label, r.confidence)
            latency = time.perf_counter() - t0
            self._latencies.append(latency)
            if self.show_fps:
                fps = self.stats()["fps"]
                draw_text(out, f"{fps:4.1f} FPS  {latency * 1000:4.1f} ms" if fps == fps else f"{latency * 1000:4.1f} ms")
            return out, results

    def _process(self, frame: np.ndarray) -> list[FaceResult]:
        h, w = frame.shape[:2]
        index = self._frame_index
        self._frame_index += 1
        run_detector = index % self.detect_every == 0
        track_gray = None
        if self.detect_every > 1:
            tw = min(TRACK_WIDTH, w)
            track_scale = tw / w
            track_gray = cv2.cvtColor(
                cv2.resize(frame, (tw, max(1, int(round(h * track_scale)))), interpolation=cv2.INTER_AREA),
                cv2.COLOR_BGR2GRAY,
            )
        else:
            track_scale = 1.0

        if run_detector:
            t = time.perf_counter()
            boxes = self._detect(frame)
            self._detect_ms.append(time.perf_counter() - t)
            self._update_tracks(boxes)
        else:
            self._follow_tracks(track_gray, track_scale, w, h)
        if track_gray is not None:
            for tr in self._tracks:
                if tr.detected or tr.template is None:
                    tr.template = _patch(track_gray, tr.box.scaled(track_scale))

        tracks = sorted(self._tracks, key=lambda t: -t.box.area)[: self.max_faces]
        if not tracks:
            return []
        crops = [crop_face(frame, t.box, self.margin, self.align) for t in tracks]
        t = time.perf_counter()
        probs = np.asarray(self.classifier.predict_proba(crops), dtype=np.float32)
        self._classify_ms.append(time.perf_counter() - t)
        results = []
        for tr, p in zip(tracks, probs):
            smooth = self._smooth(tr, p)
            k = int(np.argmax(smooth))
            results.append(FaceResult(tr.track_id, tr.box, FER_LABELS[k], float(smooth[k]), smooth, p, tr.detected))
        results.sort(key=lambda r: r.box.x)
        return results

    def _detect(self, frame: np.ndarray) -> list[Box]:
        h, w = frame.shape[:2]
        dw = self.downscale_width
        if dw and w > dw:
            f = dw / w
            small = cv2.resize(frame, (dw, max(1, int(round(h * f)))), interpolation=cv2.INTER_AREA)
            boxes = [b.scaled(1.0 / f) for b in self.detector.detect(small)]
        else:
            boxes = list(self.detector.detect(frame))
        boxes = [c for c in (b.clipped(w, h) for b in boxes) if c is not None]
        return sorted(boxes, key=lambda b: -b.area)[: self.max_faces * 2]

    def _update_tracks(self, boxes: list[Box]) -> None:
        matched, new = _associate(self._tracks, boxes, self.min_iou)
        kept = []
        for i, tr in enumerate(self._tracks):
            if i in matched:
                b = boxes[matched[i]]
                tr.box = _blend_box(tr.box, b, 0.7)
                tr.missed = 0
                tr.detected = True
                tr.template = None
                kept.append(tr)
            else:
                tr.missed += 1
                tr.detected = False
                if tr.missed <= self.max_missed:
                    kept.append(tr)
        for j in new:
            kept.append(_Track(self._next_id, boxes[j], deque(maxlen=self.smoothing_window)))
            self._next_id += 1
        self._tracks = kept

    def _follow_tracks(self, gray: np.ndarray | None, scale: float, w: int, h: int) -> None:
        for tr in self._tracks:
            tr.detected = False
            if gray is None or tr.template is None:
                continue
            shift = _match(gray, tr.template, tr.box.scaled(scale))
            if shift is not None:
                moved = tr.box.translated(shift[0] / scale, shift[1] / scale)
                tr.box = moved.clipped(w, h) or tr.box

    def _smooth(self, tr: _Track, p: np.ndarray) -> np.ndarray:
        if self.smoothing == "ema":
            alpha = 2.0 / (self.smoothing_window + 1.0)
            tr.ema = p.copy() if tr.ema is None else (1 - alpha) * tr.ema + alpha * p
            return tr.ema.astype(np.float32)
        if tr.history.maxlen != self.smoothing_window:
            tr.history = deque(tr.history, maxlen=self.smoothing_window)
        tr.history.append(p)
        return np.mean(tr.history, axis=0).astype(np.float32)


def _frame_problem(frame: Any) -> str:
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


def _blend_box(old: Box, new: Box, alpha: float) -> Box:
    """Move a track's box toward the new detection (alpha = weight of the new box): less jitter."""
    if old.iou(new) < 0.5:
        return new
    x = alpha * new.x + (1 - alpha) * old.x
    y = alpha * new.y + (1 - alpha) * old.y
    bw = alpha * new.w + (1 - alpha) * old.w
    bh = alpha * new.h + (1 - alpha) * old.h
    return Box(int(round(x)), int(round(y)), int(round(bw)), int(round(bh)), new.score, new.landmarks)


def _patch(gray: np.ndarray, box: Box) -> np.ndarray | None:
    c = box.clipped(gray.shape[1], gray.shape[0])
    if c is None or c.w < 6 or c.h < 6:
        return None
    return gray[c.y : c.y + c.h, c.x : c.x + c.w].copy()


def _match(gray: np.ndarray, template: np.ndarray, box: Box, min_score: float = 0.5) -> tuple[float, float] | None:
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


def webrtc_callback(pipeline: FramePipeline):
    """A `video_frame_callback` for streamlit-webrtc: av.VideoFrame -> annotated av.VideoFrame.

    Decodes straight to bgr24 and encodes from bgr24: the only colour conversion is PyAV's own.
    """

    def callback(frame):  # av.VideoFrame
        import av

        img = frame.to_ndarray(format="bgr24")
        out, _ = pipeline.process(img)
        new = av.VideoFrame.from_ndarray(np.ascontiguousarray(out), format="bgr24")
        new.pts = frame.pts
        if frame.time_base is not None:
            new.time_base = frame.time_base
        return new

    return callback
