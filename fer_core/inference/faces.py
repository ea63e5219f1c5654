"""Face detectors behind one interface: `detect(frame_bgr) -> list[Box]`.

- `YuNetDetector` (default): YuNet CNN compiled into the `yuface` wheel (libfacedetection,
  offline, no model download). Finds turned, tilted, small and partly covered faces; ~4-5 ms
  on a 320x240 frame on one CPU core. Gives 5 landmarks (eyes, nose, mouth corners).
- `HaarDetector` (fallback): OpenCV frontal cascade (profile cascade optional), always available with
  opencv-python-headless 4.x; misses turned / covered faces.
- `MTCNNDetector` (optional): only when the `mtcnn` package is installed; accurate but
  ~100 ms per frame (TensorFlow), too slow for the webcam.

Frames are BGR uint8 (see fer_core.inference.images). Every detector downscales a large frame to
`max_width` before detecting and returns boxes in the original frame's coordinates.
The numbers that chose the default are in benchmarks/realtime.py (detector table).

No TensorFlow import here (MTCNN imports it only when constructed).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from fer_core.errors import FerError
from fer_core.inference.boxes import Box, nms
from fer_core.inference.images import ensure_bgr

DEFAULT_DETECTOR = "yunet"


@dataclass(frozen=True)
@runtime_checkable
class FaceDetector(Protocol):
    """Anything with `detect(frame_bgr) -> list[Box]` (boxes in the frame's coordinates)."""

    name: str

    def detect(self, frame_bgr: np.ndarray) -> list[Box]: ...


class DetectorUnavailableError(FerError):
    """The requested detector's package is not installed."""


class _ScaledDetector:
    """Shared part: validate the frame, downscale to `max_width`, rescale boxes, filter, sort."""

    name = "base"

    def __init__(self, max_width: int | None = 640, min_face: int = 0, max_faces: int = 32):
        self.max_width = max_width
        self.min_face = min_face
        self.max_faces = max_faces

    def detect(self, frame_bgr: np.ndarray) -> list[Box]:
        frame = ensure_bgr(frame_bgr)
        h, w = frame.shape[:2]
        factor = 1.0
        small = frame
        if self.max_width:
            # width above max_width, or a very tall image (height above 2 x max_width), is shrunk
            factor = min(1.0, self.max_width / w, 2.0 * self.max_width / h)
        if factor < 1.0:
            size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
            small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        boxes = self._detect(small)
        if factor != 1.0:
            boxes = [b.scaled(1.0 / factor) for b in boxes]
        out = []
        for b in boxes:
            c = b.clipped(w, h)
            if c is not None and min(c.w, c.h) >= self.min_face:
                out.append(c)
        out.sort(key=lambda b: -b.score)
        return out[: self.max_faces]

    def _detect(self, frame_bgr: np.ndarray) -> list[Box]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_width={self.max_width})"


# libfacedetection keeps state in the C library; one call at a time is the safe reading.
_YUNET_LOCK = threading.Lock()
_RESULT_BUFFER_BYTES = 0x9000  # libfacedetection's DETECT_BUFFER_SIZE


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_HEAP_BUFFERS = 64 << 20


def _keep_large_buffers_in_the_heap() -> None:
    """libfacedetection allocates and frees megabytes of feature maps on every call. glibc serves
    those with mmap and gives them back with munmap, so each call faults its pages in again:
    measured 31 ms a 640x480 photo on one core, a quarter of it in the kernel. Buffers up to 64 MB
    kept in the heap (trimmed past 128 MB free): 22 ms (two threads: 23 -> 14.5 ms), the same boxes."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_BUFFERS)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 * _HEAP_BUFFERS)
    except (OSError, AttributeError):
        pass


@functools.lru_cache(maxsize=1)
def _facedetect_cnn() -> Callable[[np.ndarray], np.ndarray]:
    """libfacedetection's `facedetect_cnn` from the yuface wheel, called with one reused result buffer.

    yuface's own binding (`yuface.c_detect`) allocates a new 36 KB result buffer on every call and
    never frees it: measured +10.5 MB of resident memory per 300 calls, so a webcam stream or a long
    video grew by ~30 MB a minute. The library itself takes the caller's buffer: the same boxes,
    scores and landmarks, and memory stays flat. Call it under _YUNET_LOCK (the buffer is shared).
    """
    import yuface

    _keep_large_buffers_in_the_heap()
    lib = ctypes.CDLL(str(Path(yuface.__file__).parent / "libfacedetection.so"))
    fn = lib._Z14facedetect_cnnPhS_iii  # int* facedetect_cnn(unsigned char* result, unsigned char* bgr, int w, int h, int step)
    fn.restype = ctypes.POINTER(ctypes.c_int)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    buffer = ctypes.create_string_buffer(_RESULT_BUFFER_BYTES)

    def detect(frame_bgr: np.ndarray) -> np.ndarray:
        """(N, 16) int16 rows: score (0-100), x, y, w, h, 5 landmark (x, y) pairs, one unused."""
        img = np.ascontiguousarray(frame_bgr, dtype=np.uint8)
        result = fn(buffer, img.ctypes.data, img.shape[1], img.shape[0], img.strides[0])
        n = int(result[0]) if result else 0
        offset = ctypes.addressof(result.contents) - ctypes.addressof(buffer) + 4 if n else 0
        return np.frombuffer(buffer, dtype=np.int16, count=16 * n, offset=offset).reshape(n, 16).copy()

    return detect


class YuNetDetector(_ScaledDetector):
    """YuNet (libfacedetection) from the `yuface` wheel. `score_threshold` in [0, 1]."""

    name = "yunet"

    def __init__(self, score_threshold: float = 0.5, max_width: int | None = 640, min_face: int = 0, max_faces: int = 32):
        super().__init__(max_width=max_width, min_face=min_face, max_faces=max_faces)
        if importlib.util.find_spec("yuface") is None:
            raise DetectorUnavailableError("the YuNet detector needs the 'yuface' package (pip install yuface)")
        # yuface bundles its own GNU OpenMP. With the default busy-wait policy, its 2 worker threads
        # spin against TensorFlow / video threads on a 2-core CPU: measured median 14 ms idle but
        # 150-550 ms (p95 up to 2 s) under load. Passive waiting: 17-20 ms idle, 33-37 ms under load.
        # libgomp reads this when it is loaded (first import of yuface); a user's setting wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        self._c_detect = _facedetect_cnn()
        self.score_threshold = score_threshold

    def _detect(self, frame_bgr: np.ndarray) -> list[Box]:
        with _YUNET_LOCK:
            raw = self._c_detect(frame_bgr)
        if raw.size == 0:
            return []
        # columns: score (0-100), x, y, w, h, 5 landmark (x, y) pairs, (one unused column)
        boxes = []
        for row in raw.reshape(-1, raw.shape[-1]).astype(np.float64):
            score = row[0] / 100.0
            if score < self.score_threshold or row[3] <= 0 or row[4] <= 0:
                continue
            lm = tuple((float(row[5 + 2 * i]), float(row[6 + 2 * i])) for i in range(5)) if raw.shape[-1] >= 15 else None
            boxes.append(Box(int(row[1]), int(row[2]), int(row[3]), int(row[4]), float(score), lm))
        return nms(boxes, 0.4)


class HaarDetector(_ScaledDetector):
    """OpenCV Haar cascades: frontal (alt2), and profile in both directions when `profile`."""

    name = "haar"

    def __init__(
        self,
        profile: bool = False,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 20,
        max_width: int | None = 640,
        min_face: int = 0,
        max_faces: int = 32,
    ):
        super().__init__(max_width=max_width, min_face=min_face, max_faces=max_faces)
        if not hasattr(cv2, "CascadeClassifier"):
            raise DetectorUnavailableError(
                "this OpenCV build has no CascadeClassifier (OpenCV 5 removed it); install opencv-python-headless<5"
            )
        self._frontal = _load_cascade("haarcascade_frontalface_alt2.xml")
        self._profile = _load_cascade("haarcascade_profileface.xml") if profile else None
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self._lock = threading.Lock()  # CascadeClassifier objects are not safe to share across threads

    def _detect(self, frame_bgr: np.ndarray) -> list[Box]:
        gray = cv2.equalizeHist(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY))
        w = gray.shape[1]
        found: list[Box] = []
        kw = dict(scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size, self.min_size))
        with self._lock:
            found += _haar_boxes(self._frontal, gray, kw, score=1.0)
            if self._profile is not None:
                found += _haar_boxes(self._profile, gray, kw, score=0.9)
                flipped = _haar_boxes(self._profile, cv2.flip(gray, 1), kw, score=0.9)
                found += [replace(b, x=w - b.x - b.w) for b in flipped]
        return nms(found, 0.3)


def _load_cascade(filename: str):
    path = cv2.data.haarcascades + filename
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DetectorUnavailableError(f"OpenCV cascade {filename} is missing from {cv2.data.haarcascades}")
    return cascade


def _haar_boxes(cascade, gray: np.ndarray, kw: dict, score: float) -> list[Box]:
    try:
        rects, _, weights = cascade.detectMultiScale3(gray, outputRejectLevels=True, **kw)
    except cv2.error:
        rects, weights = cascade.detectMultiScale(gray, **kw), None
    out = []
    for i, (x, y, w, h) in enumerate(np.asarray(rects).reshape(-1, 4)):
        s = score
        if weights is not None and len(weights) > i:
            # level weight is an unbounded margin; squash it into (0, 1) for display and ranking
            s = score * float(1.0 / (1.0 + math.exp(-float(np.ravel(weights)[i]))))
        out.append(Box(int(x), int(y), int(w), int(h), s))
    return out


class MTCNNDetector(_ScaledDetector):
    """MTCNN from the optional `mtcnn` package (TensorFlow; ~100 ms per frame on a CPU)."""

    name = "mtcnn"

    def __init__(self, score_threshold: float = 0.9, min_face_size: int = 20, max_width: int | None = 640, min_face: int = 0, max_faces: int = 32):
        super().__init__(max_width=max_width, min_face=min_face, max_faces=max_faces)
        if importlib.util.find_spec("mtcnn") is None:
            raise DetectorUnavailableError("the MTCNN detector needs the optional 'mtcnn' package (pip install mtcnn)")
        from mtcnn import MTCNN

        self._mtcnn = MTCNN()
        self.score_threshold = score_threshold
        self.min_face_size = min_face_size
        self._lock = threading.Lock()

    def _detect(self, frame_bgr: np.ndarray) -> list[Box]:
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        with self._lock:
            found = self._mtcnn.detect_faces(rgb, min_face_size=self.min_face_size)
        out = []
        for f in found or []:
            score = float(f.get("confidence", 0.0))
            if score < self.score_threshold:
                continue
            x, y, w, h = (int(v) for v in f["box"])
            kp = f.get("keypoints") or {}
            lm = None
            if all(k in kp for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")):
                # mtcnn's "left_eye" is the one on the image's left (smaller x); same for the mouth.
                pts = [kp["left_eye"], kp["right_eye"], kp["nose"], kp["mouth_left"], kp["mouth_right"]]
                lm = tuple((float(p[0]), float(p[1])) for p in pts)
                if lm[0][0] > lm[1][0]:
                    lm = (lm[1], lm[0], lm[2], lm[4], lm[3])
            out.append(Box(x, y, w, h, score, lm))
        return out


_DETECTORS = {"yunet": YuNetDetector, "haar": HaarDetector, "mtcnn": MTCNNDetector}
_DESCRIPTIONS = {
    "yunet": "YuNet CNN (yuface): fast, finds turned / small / partly covered faces (default)",
    "haar": "OpenCV Haar cascades: always available, frontal and profile faces only",
    "mtcnn": "MTCNN (optional mtcnn package): accurate, slow (~100 ms per frame)",
}


def available_detectors() -> list[str]:
    """Names of the detectors usable in this environment, default first. Imports nothing heavy."""
    names = []
    if importlib.util.find_spec("yuface") is not None:
        names.append("yunet")
    if hasattr(cv2, "CascadeClassifier"):
        names.append("haar")
    if importlib.util.find_spec("mtcnn") is not None and importlib.util.find_spec("tensorflow") is not None:
        names.append("mtcnn")
    return names


def describe_detector(name: str) -> str:
    return _DESCRIPTIONS.get(name, name)


def make_detector(name: str = "auto", **kwargs) -> FaceDetector:
    """Build a detector by name: "auto" (YuNet, else Haar), "yunet", "haar" or "mtcnn".

    "auto" falls back to Haar when YuNet cannot be loaded. An explicitly named detector that is
    unavailable raises DetectorUnavailableError (a FerError with a message for the user).
    Extra keyword arguments (e.g. max_width, score_threshold) go to the detector.
    """
    key = (name or "auto").strip().lower()
    if key == "auto":
        try:
            return YuNetDetector(**kwargs)
        except DetectorUnavailableError:
            haar_kwargs = {k: v for k, v in kwargs.items() if k in ("max_width", "min_face", "max_faces")}
            return HaarDetector(**haar_kwargs)
    if key not in _DETECTORS:
        raise FerError(f"unknown face detector {name!r}; choose one of {sorted(_DETECTORS)} or 'auto'")
    return _DETECTORS[key](**kwargs)
