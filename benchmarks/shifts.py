"""The shifts a real camera brings, applied to FER-2013's 48x48 grayscale faces (benchmarks/robustness.py).

Each shift is a function of a uint8 batch (N, 48, 48) and a seeded generator, at 1-2 severities:
the detector's box (shifted, tighter, looser: FER-2013 crops have no context beyond the face,
so a looser box repeats the edge pixels), blur (Gaussian, motion), JPEG, brightness and
contrast, sensor noise, low resolution, rotation, a band over the eyes or the mouth.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

SIZE = 48
Shift = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _each(images: np.ndarray, fn: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    return np.stack([fn(img, i) for i, img in enumerate(images)]).astype(np.uint8)


def box(shift: float = 0.0, scale: float = 1.0) -> Shift:
    """A detector box moved by `shift` of the side (random direction per face) and scaled by `scale`."""

    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pad = SIZE // 2
        signs = rng.choice([-1.0, 1.0], size=(len(images), 2))
        side = SIZE * scale

        def one(img: np.ndarray, i: int) -> np.ndarray:
            big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            cx, cy = pad + SIZE / 2 + signs[i, 0] * shift * SIZE, pad + SIZE / 2 + signs[i, 1] * shift * SIZE
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            s = int(round(side))
            return cv2.resize(big[y0:y0 + s, x0:x0 + s], (SIZE, SIZE), interpolation=cv2.INTER_AREA)

        return _each(images, one)

    return apply


def gaussian_blur(sigma: float) -> Shift:
    return lambda images, rng: _each(images, lambda img, i: cv2.GaussianBlur(img, (0, 0), sigma))


def motion_blur(length: int) -> Shift:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return lambda images, rng: _each(images, lambda img, i: cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE))


def jpeg(quality: int) -> Shift:
    def one(img: np.ndarray, i: int) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)

    return lambda images, rng: _each(images, one)


def brightness(factor: float) -> Shift:
    return lambda images, rng: np.clip(images.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def contrast(factor: float) -> Shift:
    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = images.astype(np.float32)
        mean = x.mean(axis=(1, 2), keepdims=True)
        return np.clip((x - mean) * factor + mean, 0, 255).astype(np.uint8)

    return apply


def noise(sigma: float) -> Shift:
    return lambda images, rng: np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)


def low_resolution(pixels: int) -> Shift:
    def one(img: np.ndarray, i: int) -> np.ndarray:
        small = cv2.resize(img, (pixels, pixels), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)

    return lambda images, rng: _each(images, one)


def rotation(degrees: float) -> Shift:
    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        signs = rng.choice([-1.0, 1.0], size=len(images))

        def one(img: np.ndarray, i: int) -> np.ndarray:
            m = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), signs[i] * degrees, 1.0)
            return cv2.warpAffine(img, m, (SIZE, SIZE), borderMode=cv2.BORDER_REPLICATE)

        return _each(images, one)

    return apply


def band(rows: tuple[int, int]) -> Shift:
    """A black band across rows [a, b) of the 48 px face (FER-2013 crops: eyes ~15-25, mouth ~32-42)."""

    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = images.copy()
        out[:, rows[0]:rows[1], :] = 0
        return out

    return apply


#: name -> shift, in the order the table prints them.
SHIFTS: dict[str, Shift] = {
    "box shift 5%": box(shift=0.05),
    "box shift 10%": box(shift=0.10),
    "box tighter 0.8": box(scale=0.8),
    "box looser 1.25": box(scale=1.25),
    "gaussian blur s1": gaussian_blur(1.0),
    "gaussian blur s2": gaussian_blur(2.0),
    "motion blur 5px": motion_blur(5),
    "motion blur 9px": motion_blur(9),
    "jpeg q30": jpeg(30),
    "jpeg q15": jpeg(15),
    "dark x0.5": brightness(0.5),
    "bright x1.5": brightness(1.5),
    "low contrast x0.5": contrast(0.5),
    "noise s10": noise(10.0),
    "noise s20": noise(20.0),
    "low-res 24px": low_resolution(24),
    "low-res 16px": low_resolution(16),
    "rotation 10deg": rotation(10.0),
    "rotation 15deg": rotation(15.0),
    "band over eyes": band((15, 25)),
    "band over mouth": band((32, 42)),
}
