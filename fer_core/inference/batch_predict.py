"""Emotion prediction on many still images (uploads, CLI) with the real-time engine's parts.

`predict_images(images_bgr, detector, classifier)` finds the faces of every image, crops them
the same way as the webcam pipeline (fer_core.inference.crops.crop_face) and classifies the faces of
ALL images in one batched call. Results stay grouped per image, faces in reading order.
`annotate(image, result)` draws them; `results_table(results)` gives CSV rows and
`write_results_csv` writes them. Files, folders and zips of photos: inference.sources.

Images are BGR (use fer_core.inference.images.load_image_bytes for uploads).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from fer_core.errors import FerError, ImageError
from fer_core.inference.boxes import Box
from fer_core.inference.faces import FaceDetector
from fer_core.inference.frames import ProbabilityClassifier
from fer_core.inference.images import ensure_bgr
from fer_core.inference.crops import DEFAULT_MARGIN, crop_face
from fer_core.inference.overlay import draw_face, draw_text
from fer_core.inference.results import FacePrediction
from fer_core.labels import FER_LABELS

#: Detection width for still images: more pixels than the webcam path, to find small faces.
STILL_IMAGE_DETECT_WIDTH = 960


@dataclass
class ImageResult:
    name: str
    width: int = 0
    height: int = 0
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if not self.faces:
            return "no face"
        return "whole image" if self.faces[0].whole_image else "faces"

    @property
    def reason(self) -> str | None:
        """Why the photo could not be read, without its name (the readers' messages start with it)."""
        if not self.error:
            return None
        return self.error.removeprefix(f"{self.name}: ")

    def summary(self) -> str:
        if self.error:
            return f"{self.name}: {self.reason}"
        if not self.faces:
            return f"{self.name}: no face found"
        parts = [f"{f.label} {f.confidence * 100:.0f}%" for f in self.faces]
        what = "whole image" if self.faces[0].whole_image else f"{len(self.faces)} face{'s' if len(self.faces) != 1 else ''}"
        return f"{self.name}: {what}: " + ", ".join(parts)


def _reading_order(boxes: list[Box]) -> list[Box]:
    """Sort boxes into rows (by centre y, rows as tall as the median face) then left to right."""
    if len(boxes) < 2:
        return boxes
    row_h = float(np.median([b.h for b in boxes])) or 1.0
    return sorted(boxes, key=lambda b: (int(b.center[1] // row_h), b.center[0]))


def predict_images(
    images_bgr: Sequence[np.ndarray] | Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]],
    detector: FaceDetector,
    classifier: ProbabilityClassifier,
    whole_image_if_no_face: bool = False,
    *,
    names: Sequence[str] | None = None,
    margin: float = DEFAULT_MARGIN,
    align: bool = True,
    max_faces_per_image: int = 64,
) -> list[ImageResult]:
    """Detect and classify the faces of many images; one classifier call for all faces.

    `images_bgr`: a list of BGR arrays (names "image 1", ... or `names`), a {name: array} mapping,
    or (name, array) pairs. An unusable image (None, wrong dtype / shape) gets a result with
    `error` set instead of stopping the batch. With `whole_image_if_no_face`, an image where no
    face is found is classified as a whole (centre square crop), marked `whole_image=True`.
    """
    if isinstance(images_bgr, Mapping):
        items = list(images_bgr.items())
    else:
        seq = list(images_bgr)
        if seq and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in seq):
            items = seq
        else:
            labels = list(names) if names is not None else [f"image {i + 1}" for i in range(len(seq))]
            if len(labels) != len(seq):
                raise ValueError(f"{len(labels)} names for {len(seq)} images")
            items = list(zip(labels, seq))

    found = [find_faces(str(name), image, detector, whole_image_if_no_face, margin=margin, align=align,
                        max_faces_per_image=max_faces_per_image) for name, image in items]
    return classify_found(found, classifier)


@dataclass
class FoundFaces:
    """One image's faces before classification: its result (no faces yet), and per face the box,
    whether it stands for the whole image, and the crop the classifier gets. What the corpus
    engine's detection workers send to the process that classifies."""

    result: ImageResult
    boxes: list[Box] = field(default_factory=list)
    whole: list[bool] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)


def find_faces(
    name: str,
    image: Any,
    detector: FaceDetector,
    whole_image_if_no_face: bool = False,
    *,
    margin: float = DEFAULT_MARGIN,
    align: bool = True,
    max_faces_per_image: int = 64,
) -> FoundFaces:
    """Detect one image's faces (reading order) and crop them as the webcam does; an unusable
    image or a detector error is the result's `error`."""
    found = FoundFaces(ImageResult(str(name)))
    res = found.result
    try:
        img = ensure_bgr(image)
    except ImageError as exc:
        res.error = str(exc)
        return found
    res.height, res.width = img.shape[:2]
    try:
        boxes = list(detector.detect(img))
    except FerError as exc:
        res.error = str(exc)
        return found
    for b in _reading_order(boxes[:max_faces_per_image]):
        found.boxes.append(b)
        found.whole.append(False)
        found.crops.append(crop_face(img, b, margin, align))
    if not boxes and whole_image_if_no_face:
        side = min(res.width, res.height)
        b = Box((res.width - side) // 2, (res.height - side) // 2, side, side, 0.0)
        found.boxes.append(b)
        found.whole.append(True)
        found.crops.append(crop_face(img, b, 0.0, False))
    return found


def classify_found(found: Sequence[FoundFaces], classifier: ProbabilityClassifier) -> list[ImageResult]:
    """Classify the faces of many images in one classifier call; their results, faces filled in."""
    crops = [c for f in found for c in f.crops]
    if crops:
        probs = np.asarray(classifier.predict_proba(crops), dtype=np.float32)
        k = 0
        for f in found:
            for box, whole in zip(f.boxes, f.whole):
                f.result.faces.append(FacePrediction(probs[k], box, index=len(f.result.faces), whole_image=whole))
                k += 1
    return [f.result for f in found]


def annotate(image_bgr: np.ndarray, result: ImageResult, uncertain_below: float = 0.0) -> np.ndarray:
    """A copy of the image with the result's boxes and labels drawn (BGR); faces under
    `uncertain_below` confidence are drawn as uncertain."""
    out = ensure_bgr(image_bgr).copy()
    for f in result.faces:
        if f.whole_image:
            draw_text(out, f"whole image: {f.label} {f.confidence * 100:.0f}%")
        else:
            draw_face(out, f.box, f.label, f.confidence, uncertain=f.confidence < uncertain_below)
    return out


#: The CSV's columns, one row per face (or per photo without a face / with an error).
RESULT_COLUMNS = ["file", "status", "face", "x", "y", "w", "h", "score", "label", "confidence",
                  *(f"p_{n}" for n in FER_LABELS), "error"]


def results_table(results: Sequence[ImageResult]) -> list[dict[str, Any]]:
    """CSV rows: one per face (or one per image with no face / an error), probabilities per class."""
    rows = []
    for r in results:
        base = {"file": r.name, "status": r.status}
        if not r.faces:
            rows.append({**base, "face": None, "x": None, "y": None, "w": None, "h": None, "score": None,
                         "label": None, "confidence": None, **{f"p_{n}": None for n in FER_LABELS},
                         "error": r.reason})
            continue
        for f in r.faces:
            rows.append({
                **base,
                "face": f.index + 1,
                "x": f.box.x, "y": f.box.y, "w": f.box.w, "h": f.box.h,
                "score": round(float(f.box.score), 4),
                "label": f.label,
                "confidence": round(float(f.confidence), 4),
                **{f"p_{n}": round(float(p), 4) for n, p in zip(FER_LABELS, f.probabilities)},
                "error": None,
            })
    return rows


def results_csv(rows: Sequence[dict[str, Any]]) -> str:
    """results_table rows as CSV text (see write_results_csv)."""
    out = io.StringIO()
    write_results_csv(rows, out)
    return out.getvalue()


def write_results_csv(rows: Sequence[dict[str, Any]], fh: TextIO, header: bool = True) -> None:
    """Append results_table rows to an open text file as CSV (empty cells for missing values).

    Called chunk after chunk (header only on the first), a CSV of any number of photos is
    written without holding its rows in memory.
    """
    writer = csv.DictWriter(fh, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
