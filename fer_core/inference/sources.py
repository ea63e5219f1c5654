"""Many photos in, one result per photo out, in bounded memory: files, folders and zips of photos.

- `path_sources(paths)`: command-line paths as sources; a folder stands for every image file
  under it (recursively, hidden files and folders left out, in sorted order).
- `zip_sources(data, name)`: the photos of an uploaded zip, read in memory under the data
  module's safe-zip limits (never extracted); `upload_sources` for a page's uploads (photos
  and zips of photos).
- `predict_sources(sources, detector, classifier)`: decodes and classifies `chunk_size` photos
  at a time (faces of a chunk in one classifier call) and yields `(ImageResult, image or None)`
  in input order. A source that cannot be read becomes a result with `error` set; the others go on.

The one place where "decode, predict, put errors back in order" is written: the CLI's
`predict` and the Predict page both go through `predict_sources`.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from fer_core.data.safezip import normalize_member_name, read_member
from fer_core.data import DEFAULT_LIMITS, ZipLimits, check_zip
from fer_core.errors import FerError, ImageError
from fer_core.inference.batch_predict import ImageResult, predict_images
from fer_core.inference.faces import FaceDetector
from fer_core.inference.frames import ProbabilityClassifier
from fer_core.inference.images import load_image_bytes, load_image_file

#: File name endings taken as photos when a folder or a zip is given.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
#: Photos decoded and classified together: memory stays bounded whatever the number of photos.
DEFAULT_CHUNK = 32


@dataclass(frozen=True)
class ImageSource:
    """One photo to classify: its name in the results and how to decode it (BGR; ImageError if it cannot)."""

    name: str
    read: Callable[[], np.ndarray] | None
    error: str | None = None  # known to be unusable before reading (an empty folder)


def _is_photo(rel: Path) -> bool:
    return rel.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in rel.parts)


def path_sources(paths: Iterable[str | Path]) -> list[ImageSource]:
    """Sources for files and folders given on a command line (a missing path is an error source)."""
    sources: list[ImageSource] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            sources.append(ImageSource(path.name or str(path), partial(load_image_file, path)))
            continue
        files = sorted(f for f in path.rglob("*") if f.is_file() and _is_photo(f.relative_to(path)))
        if not files:
            sources.append(ImageSource(str(path), None, f"{path}: no image files in this folder "
                                                        f"({', '.join(sorted(IMAGE_SUFFIXES))})"))
        for f in files:
            sources.append(ImageSource((Path(path.name) / f.relative_to(path)).as_posix(), partial(load_image_file, f)))
    return sources


def _read_zip_photo(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, name: str) -> np.ndarray:
    try:
        data = read_member(zf, info, limits)
    except FerError as exc:
        raise ImageError(f"{name}: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise ImageError(f"{name}: cannot be read from the zip ({exc})") from None
    return load_image_bytes(data, name=name)


def zip_sources(data: bytes, name: str = "photos.zip", limits: ZipLimits | None = None) -> list[ImageSource]:
    """The photos inside a zip (ImageError if it is not a zip, UnsafeArchiveError if it breaks a limit)."""
    limits = limits or DEFAULT_LIMITS
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ImageError(f"{name} is not a readable zip file ({exc}).") from None
    check_zip(zf, limits)
    members = []
    for info in zf.infolist():
        if info.is_dir() or info.filename.startswith("__MACOSX/"):
            continue
        member = normalize_member_name(info.filename)
        if _is_photo(Path(member)):
            members.append((member, info))
    if not members:
        raise ImageError(f"{name} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return [ImageSource(member, partial(_read_zip_photo, zf, info, limits, member))
            for member, info in sorted(members, key=lambda m: m[0])]


def upload_sources(files: Iterable[tuple[str, bytes]], limits: ZipLimits | None = None) -> list[ImageSource]:
    """Uploaded files as sources: a photo is one, a zip stands for the photos inside it.

    A zip that cannot be used (not a zip, unsafe, no photos in it) becomes one error source.
    """
    sources: list[ImageSource] = []
    for name, data in files:
        if name.lower().endswith(".zip"):
            try:
                sources += zip_sources(data, name, limits)
            except FerError as exc:
                sources.append(ImageSource(name, None, str(exc)))
        else:
            sources.append(ImageSource(name, partial(load_image_bytes, data, name=name)))
    return sources


def _predict_chunk(
    chunk: Sequence[ImageSource], detector: FaceDetector, classifier: ProbabilityClassifier, whole_image: bool
) -> list[tuple[ImageResult, np.ndarray | None]]:
    images: list[np.ndarray | None] = []
    results: list[ImageResult] = []
    for src in chunk:
        image, error = None, src.error
        if error is None and src.read is not None:
            try:
                image = src.read()
            except ImageError as exc:
                error = str(exc)
        images.append(image)
        results.append(ImageResult(src.name, error=error or (None if image is not None else "nothing to read")))
    ok = [i for i, img in enumerate(images) if img is not None]
    predicted = predict_images([(chunk[i].name, images[i]) for i in ok], detector, classifier, whole_image)
    for i, res in zip(ok, predicted):
        results[i] = res
    return list(zip(results, images))


def predict_sources(
    sources: Iterable[ImageSource],
    detector: FaceDetector,
    classifier: ProbabilityClassifier,
    whole_image_if_no_face: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
) -> Iterator[tuple[ImageResult, np.ndarray | None]]:
    """(result, decoded BGR image or None) per source, in order, `chunk_size` photos in memory at a time."""
    chunk: list[ImageSource] = []
    for src in sources:
        chunk.append(src)
        if len(chunk) >= max(1, int(chunk_size)):
            yield from _predict_chunk(chunk, detector, classifier, whole_image_if_no_face)
            chunk = []
    if chunk:
        yield from _predict_chunk(chunk, detector, classifier, whole_image_if_no_face)
