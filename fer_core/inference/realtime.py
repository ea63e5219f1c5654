"""Real-time face emotion pipeline for the webcam: detect, track, classify, smooth, draw.

`FramePipeline.process(frame_bgr) -> (annotated_bgr, [FacePrediction])` per camera frame:

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
`configure(...)`. Frames are BGR throughout (see fer_core.inference.images); `webrtc_callback` asks PyAV
for bgr24 directly, so no RGB conversion happens anywhere on the way.

No TensorFlow import here: the classifier object brings it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import cv2
import numpy as np

from fer_core.errors import ImageError
from fer_core.inference.boxes import Box
from fer_core.inference.faces import FaceDetector
from fer_core.inference.frames import ProbabilityClassifier, frame_problem
from fer_core.inference.results import FacePrediction
from fer_core.inference.images import ensure_bgr
from fer_core.inference.overlay import DEFAULT_MARGIN, crop_face, draw_face, draw_text
from fer_core.inference.tracking import TRACK_WIDTH, Track, associate, blend_box, match_template, template_patch

# Chosen from benchmarks/realtime.py measurements: see docs/REALTIME.md.
DEFAULT_DETECT_EVERY = 2
DEFAULT_DOWNSCALE_WIDTH = 480
DEFAULT_SMOOTHING_WINDOW = 5


class FramePipeline:
    """Per-frame detect / track / classify / smooth / draw. See the module docstring.

    Args:
        detector: any `FaceDetector` (fer_core.inference.faces.make_detector()).
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
            self._tracks: list[Track] = []
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
            self.last_results: list[FacePrediction] = []

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

    def process(self, frame_bgr: Any) -> tuple[Any, list[FacePrediction]]:
        """One camera frame -> (annotated frame, per-face results). Never raises on a bad frame."""
        t0 = time.perf_counter()
        try:
            frame = ensure_bgr(frame_bgr)
        except ImageError:
            with self._lock:
                self.skipped_frames += 1
                reason = frame_problem(frame_bgr)
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

    def _process(self, frame: np.ndarray) -> list[FacePrediction]:
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
                    tr.template = template_patch(track_gray, tr.box.scaled(track_scale))

        tracks = sorted(self._tracks, key=lambda t: -t.box.area)[: self.max_faces]
        if not tracks:
            return []
        crops = [crop_face(frame, t.box, self.margin, self.align) for t in tracks]
        t = time.perf_counter()
        probs = np.asarray(self.classifier.predict_proba(crops), dtype=np.float32)
        self._classify_ms.append(time.perf_counter() - t)
        results = []
        for tr, p in zip(tracks, probs):
            results.append(FacePrediction(self._smooth(tr, p), tr.box, track_id=tr.track_id,
                                          raw_probabilities=p, detected=tr.detected))
        results.sort(key=lambda r: r.box.x)
        for i, r in enumerate(results):
            r.index = i  # left to right
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
        matched, new = associate(self._tracks, boxes, self.min_iou)
        kept = []
        for i, tr in enumerate(self._tracks):
            if i in matched:
                b = boxes[matched[i]]
                tr.box = blend_box(tr.box, b, 0.7)
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
            kept.append(Track(self._next_id, boxes[j], deque(maxlen=self.smoothing_window)))
            self._next_id += 1
        self._tracks = kept

    def _follow_tracks(self, gray: np.ndarray | None, scale: float, w: int, h: int) -> None:
        for tr in self._tracks:
            tr.detected = False
            if gray is None or tr.template is None:
                continue
            shift = match_template(gray, tr.template, tr.box.scaled(scale))
            if shift is not None:
                moved = tr.box.translated(shift[0] / scale, shift[1] / scale)
                tr.box = moved.clipped(w, h) or tr.box

    def _smooth(self, tr: Track, p: np.ndarray) -> np.ndarray:
        if self.smoothing == "ema":
            alpha = 2.0 / (self.smoothing_window + 1.0)
            tr.ema = p.copy() if tr.ema is None else (1 - alpha) * tr.ema + alpha * p
            return tr.ema.astype(np.float32)
        if tr.history.maxlen != self.smoothing_window:
            tr.history = deque(tr.history, maxlen=self.smoothing_window)
        tr.history.append(p)
        return np.mean(tr.history, axis=0).astype(np.float32)
