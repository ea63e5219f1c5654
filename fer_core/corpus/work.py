"""The work on one item, the same in every engine and process: read a photo (a file or a zip
member), find its faces as `predict` does, classify found faces in large batches, run a video
through the video engine. Detectors and open zips are kept per process; no TensorFlow here
(the classifier is passed in).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_core.corpus.inputs import Item, kind_of
from fer_core.corpus.rows import failure_row, photo_rows, video_row
from fer_core.data import DEFAULT_LIMITS
from fer_core.data.safezip import read_member
from fer_core.errors import FerError, ImageError
from fer_core.inference.batch_predict import STILL_IMAGE_DETECT_WIDTH, FoundFaces, ImageResult, classify_found, find_faces
from fer_core.inference.faces import FaceDetector, make_detector
from fer_core.inference.images import load_image_bytes, load_image_file


@functools.lru_cache(maxsize=8)
def _zip(path: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)


def _member_bytes(item: Item) -> bytes:
    try:
        zf = _zip(item.path)
        return read_member(zf, zf.getinfo(item.member or ""), DEFAULT_LIMITS)
    except FerError as exc:
        raise ImageError(f"{item.source}: {exc}") from None
    except (KeyError, zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise ImageError(f"{item.source}: cannot be read from the zip ({exc})") from None


def read_photo(item: Item) -> np.ndarray:
    """A photo item decoded (BGR, upright); ImageError when it cannot be."""
    if item.member:
        return load_image_bytes(_member_bytes(item), name=item.source)
    return load_image_file(item.path)


@functools.lru_cache(maxsize=4)
def photo_detector(name: str) -> FaceDetector:
    """The detector `predict` uses for photos (kept for the process)."""
    return make_detector(name, max_width=STILL_IMAGE_DETECT_WIDTH)


def find_in_item(item: Item, detector_name: str, whole_image: bool) -> FoundFaces:
    """One photo item read and its faces found (the error in the result when it cannot be read)."""
    if item.error:
        return FoundFaces(ImageResult(item.source, error=f"{item.source}: {item.error}"))
    try:
        image = read_photo(item)
        return find_faces(item.source, image, photo_detector(detector_name), whole_image)
    except ImageError as exc:
        return FoundFaces(ImageResult(item.source, error=str(exc)))
    except Exception as exc:  # noqa: BLE001 - a bad file is a row, never the end of the job
        return FoundFaces(ImageResult(item.source, error=f"{item.source}: {type(exc).__name__}: {exc}"))


def find_in_items(items: Sequence[Item], detector_name: str, whole_image: bool) -> list[FoundFaces]:
    """find_in_item for a few items (one task of a worker pool)."""
    return [find_in_item(item, detector_name, whole_image) for item in items]


def init_detect_worker() -> None:
    """In a detection worker process: one OpenMP thread (the pool itself keeps the cores busy); Ctrl-C
    is the job's to handle (the worker finishes its photos and exits with the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def classified_rows(items: Sequence[Item], found: Sequence[FoundFaces], classifier: Any, model: str) -> list[dict[str, Any]]:
    """The rows of photo items once their found faces are classified (one classifier call)."""
    results = classify_found(found, classifier)
    rows: list[dict[str, Any]] = []
    for item, result in zip(items, results):
        mine = photo_rows(item.item, result, model)
        if item.kind == "error":  # a path that could not be used: say what it was meant to be
            for r in mine:
                r["kind"] = kind_of(item.source) or "file"
        rows += mine
    return rows


def video_item_rows(item: Item, classifier: Any, detector_name: str, max_fps: float | None, model: str) -> list[dict[str, Any]]:
    """A video item through the video engine: a row per face per sampled frame, or one failure row."""
    from fer_core.inference.video import VideoOptions, VideoOutputs, analyse_video

    if item.error:
        return [failure_row(item.item, item.source, "video", item.error, model)]
    rows: list[dict[str, Any]] = []
    tmp: Path | None = None
    try:
        path = Path(item.path)
        if item.member:  # a video inside a zip: the video engine reads files
            tmp = Path(tempfile.mkdtemp(prefix="fer-corpus-"))
            path = tmp / Path(item.member).name
            path.write_bytes(_member_bytes(item))
        result = analyse_video(path, classifier, make_detector(detector_name), VideoOutputs(),
                               VideoOptions(max_fps=max_fps),
                               on_face=lambda f, t, face: rows.append(video_row(item.item, item.source, model, f, t, face)))
    except FerError as exc:
        return [failure_row(item.item, item.source, "video", str(exc).removeprefix(f"{item.source}: "), model)]
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a bad file is a row, never the end of the job
        return [failure_row(item.item, item.source, "video", f"{type(exc).__name__}: {exc}", model)]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if result.stopped:
        raise KeyboardInterrupt  # an interrupted video is not done: no rows for it
    return rows or [failure_row(item.item, item.source, "video", None, model)]
