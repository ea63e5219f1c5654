"""Real-time face emotion pipeline for the webcam: detect, track, classify, smooth, draw.

`FramePipeline.process(frame_bgr) -> (annotated_bgr, [FacePrediction])` per camera frame:

1. the frame is checked (corrupt frames are returned as they came and counted, never raised);
2. every `detect_every`-th frame the detector runs (it downscales the frame to its `max_width`,
   which `downscale_width` sets: the one place a frame is shrunk for detection); a `Tracker`
   (fer_core.inference.tracking) keeps each face's id: detections are associated with its tracks
   by IoU, in between each track follows its face by template matching;
3. the faces due for classification (all of them, or with `classify_every` = k each known face
   on every k-th frame and a new face at once) are cropped (square, with `margin`, optionally
   rotated upright from the eye landmarks) and classified in ONE compiled batch call; a face not
   due keeps its last smoothed probabilities;
4. the tracker smooths each track's probabilities over its last `smoothing_window` frames (mean,
   or an exponential average), which removes label flicker;
5. boxes and labels are drawn on a copy of the frame (a frame with no face is returned
   untouched, the same pixels, unless `show_fps` asks for the FPS text).

Latency and FPS are measured per frame (`stats()`). One lock guards the state: `process` may
run in streamlit-webrtc's callback thread while the page thread reads `stats()` or calls
`configure(...)`. Frames are BGR throughout (see fer_core.inference.images); `webrtc_queued_callback` asks PyAV
for bgr24 directly, so no RGB conversion happens anywhere on the way.

No TensorFlow import here: the classifier object brings it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from fer_core.errors import ImageError
from fer_core.inference.boxes import Box
from fer_core.inference.crops import DEFAULT_MARGIN, crop_face
from fer_core.inference.faces import FaceDetector
from fer_core.inference.frames import ProbabilityClassifier, frame_problem
from fer_core.inference.images import ensure_bgr
from fer_core.inference.overlay import draw_face, draw_text
from fer_core.inference.results import FacePrediction
from fer_core.inference.tracking import SMOOTHING_MODES, Tracker

# Chosen from benchmarks/realtime.py measurements: see docs/REALTIME.md.
DEFAULT_DETECT_EVERY = 2
DEFAULT_DOWNSCALE_WIDTH = 480
DEFAULT_SMOOTHING_WINDOW = 5
# The Webcam page classifies each tracked face on every 2nd frame (new faces at once) and shows its
# smoothed label in between: half the classifier work with 4 faces, labels still update 15 times a
# second. The pipeline's own default stays 1 (the video path records every sampled frame's own
# probabilities).
DEFAULT_CLASSIFY_EVERY = 2


class FramePipeline:
    """Per-frame detect / track / classify / smooth / draw. See the module docstring.

    Args:
        detector: any `FaceDetector` (fer_core.inference.faces.make_detector()).
        classifier: an EmotionClassifier (anything with `predict_proba(crops) -> (N, 7)` in FER order).
        detect_every: run the detector on every N-th frame, track in between (1: every frame).
        classify_every: classify each tracked face on every N-th frame (a new face at once) and
            keep its smoothed probabilities in between (1: every frame).
        downscale_width: the detector's `max_width`: it detects on a copy this wide (None: full
            size) and gives boxes in frame pixels. Detectors without `max_width` detect as they are.
        smoothing_window: average a face's probabilities over its last k frames (1: no smoothing).
        smoothing: "mean" (of the window) or "ema" (alpha = 2 / (window + 1)).
        margin: extra crop around the face box, as a fraction of its side.
        align: rotate crops upright from the eye landmarks (detectors that give landmarks).
        max_faces: at most this many faces per frame (largest first).
        max_missed: drop a track after this many detection rounds without a matching detection.
        show_fps: write "FPS / ms" in the corner of every frame.
        uncertain_below: a face whose (smoothed) confidence is under this is drawn as "uncertain" (0: never).
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
        classify_every: int = 1,
        uncertain_below: float = 0.0,
    ):
        self.detector = detector
        self.classifier = classifier
        self._lock = threading.RLock()
        self.tracker = Tracker(min_iou=min_iou, max_missed=max_missed, smoothing_window=smoothing_window,
                               smoothing=smoothing)
        self.copy = copy
        self.configure(
            detect_every=detect_every,
            classify_every=classify_every,
            uncertain_below=uncertain_below,
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
        """Change settings between frames (thread-safe): detect_every, classify_every, downscale_width,
        smoothing_window, smoothing, margin, align, max_faces, show_fps, draw, uncertain_below, detector, classifier."""
        with self._lock:
            for key, value in settings.items():
                if key in ("detect_every", "classify_every"):
                    value = max(1, int(value))
                elif key == "downscale_width":
                    value = None if not value else max(64, int(value))
                elif key == "smoothing_window":
                    self.tracker.smoothing_window = max(1, int(value))
                    continue
                elif key == "smoothing":
                    if value not in SMOOTHING_MODES:
                        raise ValueError("smoothing must be 'mean' or 'ema'")
                    self.tracker.smoothing = value
                    continue
                elif key == "margin":
                    value = float(min(max(value, 0.0), 1.0))
                elif key == "uncertain_below":
                    value = float(min(max(value, 0.0), 1.0))
                elif key == "max_faces":
                    value = max(1, int(value))
                elif key in ("detector", "classifier"):
                    self.tracker.reset()  # old tracks belong to the old detector / model
                elif key not in ("align", "show_fps", "draw"):
                    raise TypeError(f"unknown setting {key!r}")
                setattr(self, key, value)
            if "detector" in settings or "downscale_width" in settings:
                self._apply_downscale()

    @property
    def smoothing_window(self) -> int:
        return self.tracker.smoothing_window

    @property
    def smoothing(self) -> str:
        return self.tracker.smoothing

    def _apply_downscale(self) -> None:
        if hasattr(self.detector, "max_width"):
            self.detector.max_width = self.downscale_width

    def reset(self) -> None:
        """Forget tracks and statistics (e.g. when the stream restarts)."""
        with self._lock:
            self.tracker.reset()
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
            self._camera: deque[tuple[float, int]] = deque(maxlen=60)  # (time, frames arrived)
            self.stale_frames = 0
            self.last_results: list[FacePrediction] = []

    def frames_arrived(self, count: int) -> None:
        """The stream delivered `count` camera frames since its last call and hands the pipeline only
        the newest (the others went stale while it worked: dropped, not queued). Feeds camera_fps."""
        with self._lock:
            self._camera.append((time.perf_counter(), max(0, int(count))))
            self.stale_frames += max(0, int(count) - 1)

    def stats(self) -> dict[str, Any]:
        """Rolling numbers: fps (frames processed per second), camera_fps (frames the stream
        delivered per second, where it reports them), latency p50/p95/mean (ms), etc."""
        with self._lock:
            lat = np.asarray(self._latencies, dtype=np.float64) * 1000.0
            arr = list(self._arrivals)
            fps = (len(arr) - 1) / (arr[-1] - arr[0]) if len(arr) >= 2 and arr[-1] > arr[0] else math.nan
            cam = list(self._camera)
            camera_fps = (sum(n for _, n in cam[1:]) / (cam[-1][0] - cam[0][0])
                          if len(cam) >= 2 and cam[-1][0] > cam[0][0] else math.nan)

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
                "camera_fps": camera_fps,
                "stale_frames": self.stale_frames,
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
                self.tracker.reset()
                results = []
            self.frames += 1
            self.last_results = results
            out: Any = frame_bgr if frame is frame_bgr else frame
            if (results and self.draw) or self.show_fps:
                out = frame.copy() if (self.copy and frame is frame_bgr) else frame
                if self.draw:
                    for r in results:
                        draw_face(out, r.box, r.label, r.confidence, uncertain=r.confidence < self.uncertain_below)
            latency = time.perf_counter() - t0
            self._latencies.append(latency)
            if self.show_fps:
                fps = self.stats()["fps"]
                draw_text(out, f"{fps:4.1f} FPS  {latency * 1000:4.1f} ms" if fps == fps else f"{latency * 1000:4.1f} ms")
            return out, results

    def _process(self, frame: np.ndarray) -> list[FacePrediction]:
        index = self._frame_index
        self._frame_index += 1
        detections = None
        if index % self.detect_every == 0:
            t = time.perf_counter()
            detections = self._detect(frame)
            self._detect_ms.append(time.perf_counter() - t)
        tracks = self.tracker.step(frame, detections, follow=self.detect_every > 1)
        tracks = sorted(tracks, key=lambda t: -t.box.area)[: self.max_faces]
        if not tracks:
            return []
        # Known faces are classified on the frames *between* detection rounds (offset by one), so
        # with detect_every == classify_every the two costs alternate instead of adding up.
        due = [tr for tr in tracks if tr.probabilities is None or (index + 1) % self.classify_every == 0]
        if due:
            crops = [crop_face(frame, tr.box, self.margin, self.align) for tr in due]
            t = time.perf_counter()
            probs = np.asarray(self.classifier.predict_proba(crops), dtype=np.float32)
            self._classify_ms.append(time.perf_counter() - t)
            for tr, p in zip(due, probs):
                tr.probabilities = p
                tr.smoothed = self.tracker.smooth(tr, p)
        results = [FacePrediction(tr.smoothed, tr.box, track_id=tr.track_id, raw_probabilities=tr.probabilities,
                                  detected=tr.detected) for tr in tracks]
        results.sort(key=lambda r: r.box.x)
        for i, r in enumerate(results):
            r.index = i  # left to right
        return results

    def _detect(self, frame: np.ndarray) -> list[Box]:
        """The detector's boxes (it downscales the frame itself), clipped, largest first."""
        h, w = frame.shape[:2]
        boxes = [c for c in (b.clipped(w, h) for b in self.detector.detect(frame)) if c is not None]
        return sorted(boxes, key=lambda b: -b.area)[: self.max_faces * 2]
