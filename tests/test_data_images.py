"""Decoding one image: formats, colour, resizing, and the refusals (not an image, truncated, too large)."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_core.data import images
from fer_core.data.images import BadImage, decode_image
from fer_core.errors import ImageError


def _face(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(48, 48), dtype=np.uint8)


def _enc(img: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_formats_roundtrip(ext: str) -> None:
    img = _face()
    data = _webp_lossless(img) if ext == ".webp" else _enc(img, ext)
    out, resized = decode_image(data)
    assert out.dtype == np.uint8 and out.shape == (48, 48)
    assert not resized
    np.testing.assert_array_equal(out, img)


def _webp_lossless(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])  # >100 = lossless
    assert ok
    return buf.tobytes()


def test_jpeg_decodes_close_to_original() -> None:
    img = cv2.GaussianBlur(_face(), (5, 5), 2)
    out, resized = decode_image(_enc(img, ".jpg"))
    assert out.shape == (48, 48) and not resized
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 6


def test_colour_is_converted_to_gray() -> None:
    bgr = np.zeros((48, 48, 3), np.uint8)
    bgr[..., 2] = 200  # pure red in BGR
    out, _ = decode_image(_enc(bgr, ".png"))
    expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert out.shape == (48, 48)
    assert abs(int(out[0, 0]) - int(expected[0, 0])) <= 1
    assert 50 < out[0, 0] < 70  # 0.299 * 200, not 200 (a channel) nor 0


def test_other_sizes_are_resized_and_flagged() -> None:
    big = cv2.resize(cv2.GaussianBlur(_face(1), (5, 5), 2), (96, 120))
    out, resized = decode_image(_enc(big, ".png"))
    assert resized and out.shape == (48, 48)
    small = np.full((20, 30), 77, np.uint8)
    out, resized = decode_image(_enc(small, ".png"))
    assert resized and out.shape == (48, 48) and (out == 77).all()


def test_rgba_png_via_pillow_writer() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (48, 48), (10, 200, 10, 128)).save(buf, format="PNG")
    out, _ = decode_image(buf.getvalue())
    assert out.shape == (48, 48) and 100 < out[0, 0] < 140  # green -> ~0.587 * 200


def test_gif_uses_pillow_fallback_if_needed() -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((48, 48), 90, np.uint8)).save(buf, format="GIF")
    out, _ = decode_image(buf.getvalue())
    assert out.shape == (48, 48) and abs(int(out.mean()) - 90) <= 2


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", images.EMPTY),
        (b"hello, this is text renamed to .jpg\n", images.NOT_AN_IMAGE),
        (b"%PDF-1.4 not an image", images.NOT_AN_IMAGE),
        (b"\xff\xd8\xff\xe0" + bytes(200), images.CORRUPT),  # JPEG magic, garbage markers
        (b"\x89PNG\r\n\x1a\n" + bytes(10), images.CORRUPT),  # PNG magic, no IHDR
    ],
)
def test_refusals_have_short_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(BadImage) as info:
        decode_image(data)
    assert info.value.reason == reason
    assert isinstance(info.value, ImageError)


def test_truncated_jpeg_is_refused() -> None:
    data = _enc(_face(), ".jpg")
    whole, _ = decode_image(data)
    assert whole.shape == (48, 48)
    with pytest.raises(BadImage) as info:
        decode_image(data[: len(data) * 2 // 3])
    assert info.value.reason == images.TRUNCATED


def test_truncated_png_is_refused() -> None:
    data = _enc(_face(), ".png")
    with pytest.raises(BadImage) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.reason in (images.TRUNCATED, images.CORRUPT)


def test_corrupt_png_body_is_refused() -> None:
    data = bytearray(_enc(_face(), ".png"))
    idat = data.find(b"IDAT")
    data[idat + 8: idat + 200] = bytes(192)  # destroy the compressed pixels, keep IEND
    with pytest.raises(BadImage) as info:
        decode_image(bytes(data))
    assert info.value.reason == images.CORRUPT


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + b"\0\0\0\0"
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\0\0\0\0IEND\xaeB`\x82"


def test_huge_declared_canvas_is_refused_before_decoding() -> None:
    with pytest.raises(BadImage) as info:
        decode_image(_png_header_only(5000, 5000))
    assert info.value.reason == images.TOO_LARGE
    assert "5000x5000" in str(info.value) and "4096x4096" in str(info.value)


def test_huge_jpeg_header_is_refused() -> None:
    # A real (small-file) JPEG whose SOF declares 8192 x 4100 pixels.
    data = _enc(np.zeros((16, 16), np.uint8), ".jpg")
    sof = data.find(b"\xff\xc0")
    patched = data[: sof + 5] + struct.pack(">HH", 4100, 8192) + data[sof + 9:]
    assert images.image_size(data)[1:] == (16, 16)
    with pytest.raises(BadImage) as info:
        decode_image(patched)
    assert info.value.reason == images.TOO_LARGE


def test_image_at_the_limit_is_accepted() -> None:
    w, h = images.MAX_IMAGE_SIDE, 64  # well under the pixel limit even though one side is at the max
    fmt, rw, rh = images.image_size(_enc(np.zeros((h, w), np.uint8), ".png"))
    assert (fmt, rw, rh) == ("png", w, h)
