"""Image input for the prediction engine: one place where colour order is decided.

Convention: every frame inside the engine (detectors, realtime pipeline, batch prediction,
drawing) is an OpenCV-style **BGR** uint8 array of shape (H, W, 3). Images coming from PIL,
Streamlit uploads or `st.camera_input` are RGB; they are converted here, once:

- `load_image_bytes(data)` / `load_image_file(path)`: encoded file -> BGR (EXIF orientation
  applied, grayscale / palette / RGBA / 16-bit handled, corrupt files and decompression bombs
  refused with `ImageError`).
- `from_rgb(array)`: an RGB(A) / grayscale array -> BGR.
- `to_rgb(frame_bgr)`: BGR -> RGB for display (`st.image`).
- `ensure_bgr(frame)`: validate a frame handed to the engine (gray and BGRA are accepted and
  converted; anything else raises `ImageError`).

No TensorFlow here.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np

from fer_core.errors import ImageError

#: Largest image accepted (pixels). 50 MP covers phone photos (~12-48 MP); beyond that is a bomb.
MAX_IMAGE_PIXELS = 50_000_000
#: Largest encoded file accepted (bytes).
MAX_IMAGE_BYTES = 50 * 1024 * 1024


def from_rgb(image: np.ndarray) -> np.ndarray:
    """RGB (H,W,3), RGBA (H,W,4), or grayscale (H,W) / (H,W,1) uint8 array -> BGR (H,W,3) uint8."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ImageError(f"expected 8-bit pixels, got {img.dtype}")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(np.ascontiguousarray(img.reshape(img.shape[:2])), cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGBA2BGR)
    raise ImageError(f"unsupported image shape {img.shape}")


def to_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """BGR (H,W,3) uint8 -> RGB, for display."""
    return cv2.cvtColor(ensure_bgr(frame_bgr), cv2.COLOR_BGR2RGB)


def ensure_bgr(frame: object) -> np.ndarray:
    """Check a frame handed to the engine and return it as contiguous BGR (H,W,3) uint8.

    Accepted: BGR (H,W,3) uint8 (returned as is when contiguous), grayscale (H,W) or (H,W,1)
    and BGRA (H,W,4) uint8 (converted). Anything else (None, other dtypes, empty, other
    channel counts) raises ImageError.
    """
    if frame is None:
        raise ImageError("no frame (None)")
    if not isinstance(frame, np.ndarray):
        raise ImageError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ImageError(f"a frame must have 8-bit pixels, got {frame.dtype}")
    if frame.size == 0 or frame.ndim not in (2, 3) or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ImageError(f"empty or malformed frame of shape {frame.shape}")
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 3:
        return frame if frame.flags.c_contiguous else np.ascontiguousarray(frame)
    if frame.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    raise ImageError(f"a frame must have 1, 3 or 4 channels, got {frame.shape[2]}")


def load_image_bytes(data: bytes, *, max_pixels: int = MAX_IMAGE_PIXELS, name: str = "image") -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, WebP, BMP, GIF, TIFF, ...) into a BGR uint8 array.

    EXIF orientation is applied (phone photos come out upright). Grayscale, palette, 16-bit and
    CMYK images become 3-channel; transparent pixels are composited on white. Raises ImageError
    for empty, corrupt or truncated data and for images over `max_pixels` (checked from the
    header, before the pixels are decoded).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageError(f"{name}: the file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"{name}: the file is {len(data) / 1e6:.0f} MB; the limit is {MAX_IMAGE_BYTES / 1e6:.0f} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(
                    f"{name}: {w}x{h} pixels ({w * h / 1e6:.0f} MP) is more than the {max_pixels / 1e6:.0f} MP "
                    "allowed; resize the picture first"
                )
            if w < 1 or h < 1:
                raise ImageError(f"{name}: the image has no pixels ({w}x{h})")
            img.load()
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb_pil(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"{name}: refused: far more pixels than the {max_pixels / 1e6:.0f} MP allowed "
            "(a decompression bomb?); resize the picture first"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image file, or a format that cannot be read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise ImageError(f"{name}: the image file is corrupt or truncated ({exc})") from exc
    return from_rgb(np.asarray(rgb))


def load_image_file(path: str | Path, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """`load_image_bytes` on a file on disk."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageError(f"{p.name}: the file is {size / 1e6:.0f} MB; the limit is {MAX_IMAGE_BYTES / 1e6:.0f} MB")
        data = p.read_bytes()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read the file ({exc.strerror or exc})") from exc
    return load_image_bytes(data, max_pixels=max_pixels, name=p.name)


def encode_png(frame_bgr: np.ndarray) -> bytes:
    """BGR frame -> PNG bytes (for downloads)."""
    ok, buf = cv2.imencode(".png", ensure_bgr(frame_bgr))
    if not ok:
        raise ImageError("could not encode the image as PNG")
    return buf.tobytes()


def _to_rgb_pil(img):  # PIL.Image -> PIL.Image in mode RGB
    from PIL import Image

    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0
        if hi > 255:
            arr = arr * (255.0 / (65535.0 if hi <= 65535 else hi))
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
