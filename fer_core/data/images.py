"""Decode one encoded image (bytes) into a 48x48 uint8 grayscale face, or say why not.

OpenCV does the decoding. Before decoding, the image's dimensions are read from its header and
images over MAX_IMAGE_PIXELS are refused (a small file can declare a huge canvas). Truncated
JPEG/PNG files are refused too: libjpeg would otherwise fill the missing part with gray.
"""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np

from fer_core.data.types import IMAGE_SIZE
from fer_core.errors import ImageError

MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE

# Short reasons, used as LoadReport.skipped_by_reason keys.
NOT_AN_IMAGE = "not an image"
CORRUPT = "corrupt image"
TRUNCATED = "truncated image"
TOO_LARGE = "image too large"
EMPTY = "empty file"

_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8})


class BadImage(ImageError):
    """An image that cannot be used; `reason` is one of the short reasons above."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def sniff_format(data: bytes) -> str | None:
    """'jpeg' | 'png' | 'gif' | 'bmp' | 'webp' | 'tiff' from the magic bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SOF marker, or None if the marker structure is broken."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if length < 2:
            return None
        i += 2 + length
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _pil_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image  # lazy: only for formats whose header we do not parse ourselves

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError:
        return (MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE + 1)
    except Exception:  # noqa: BLE001 - any parse failure means the file is unusable
        return None


def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header, without decoding pixels; BadImage if unusable."""
    if not data:
        raise BadImage(EMPTY)
    fmt = sniff_format(data)
    if fmt is None:
        raise BadImage(NOT_AN_IMAGE)
    if fmt == "jpeg":
        size = _jpeg_size(data)
    elif fmt == "png":
        size = _png_size(data)
    else:
        size = _pil_size(data)
    if size is None:
        raise BadImage(CORRUPT, f"unreadable {fmt} header")
    w, h = size
    if w <= 0 or h <= 0:
        raise BadImage(CORRUPT, f"{fmt} header declares {w}x{h} pixels")
    if w * h > MAX_IMAGE_PIXELS:
        raise BadImage(TOO_LARGE, f"{w}x{h} pixels, the limit is {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}")
    return fmt, w, h


def _check_complete(fmt: str, data: bytes) -> None:
    if fmt == "jpeg":
        sos = data.rfind(b"\xff\xda")
        if sos < 0:
            raise BadImage(CORRUPT, "JPEG without image data")
        if data.rfind(b"\xff\xd9") < sos:  # no end-of-image marker after the last scan
            raise BadImage(TRUNCATED, "JPEG ends before its end-of-image marker")
    elif fmt == "png" and data.rfind(b"IEND") < 0:
        raise BadImage(TRUNCATED, "PNG ends before its IEND chunk")


def _decode_gray(fmt: str, data: bytes) -> np.ndarray:
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    except cv2.error:  # OpenCV's own checks (e.g. a side over CV_IO_MAX_IMAGE_HEIGHT) raise instead of returning None
        img = None
    if img is None and fmt in ("gif", "webp", "tiff", "bmp"):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                img = np.asarray(im.convert("L"))
        except Exception:  # noqa: BLE001
            img = None
    if img is None or img.ndim != 2 or img.size == 0:
        raise BadImage(CORRUPT, f"{fmt} data could not be decoded")
    if img.dtype != np.uint8:  # pragma: no cover - IMREAD_GRAYSCALE yields 8 bits
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return img


def decode_image(data: bytes, size: int = IMAGE_SIZE) -> tuple[np.ndarray, bool]:
    """Encoded image bytes -> (uint8 (size, size) grayscale, resized?). Raises BadImage (an ImageError).

    Colour images are converted to gray; other sizes are resized (INTER_AREA when shrinking).
    """
    fmt, _, _ = image_size(data)
    _check_complete(fmt, data)
    img = _decode_gray(fmt, data)
    if img.shape == (size, size):
        return img, False
    interp = cv2.INTER_AREA if img.shape[0] > size or img.shape[1] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp), True
