"""Test images for face detectors: real faces (scikit-image, LFW) placed on backgrounds at several scales,
rotations and occlusions, plus face-free negatives (benchmarks/realtime.py, docs/REALTIME.md)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from fer_core.inference.boxes import Box

FRAME_W, FRAME_H = 640, 480


@dataclass
class FaceSource:
    """A photo with one known face: its box and 5 landmarks (image-left eye, image-right eye, nose, mouth L, mouth R)."""

    name: str
    image: np.ndarray  # BGR uint8
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]


@dataclass
class Case:
    """One test frame: BGR 640x480 and its known face boxes (empty for negatives)."""

    name: str
    group: str
    frame: np.ndarray
    boxes: list[Box] = field(default_factory=list)


# Consensus boxes on the original photos (x, y, w, h), measured once:
#   astronaut: YuNet (178, 63, 89, 112) score .93, MTCNN (182, 64, 83, 107) .999, Haar alt2 (178, 69, 92, 92)
#   camera:    YuNet (195, 113, 60, 80) score .89, MTCNN (197, 116, 58, 81) .998, Haar profile (185, 111, 82, 82)
_ASTRONAUT_BOX = (180.0, 63.5, 86.0, 109.5)
_ASTRONAUT_LM = ((202.0, 100.5), (246.0, 102.0), (222.0, 125.0), (200.0, 140.5), (241.5, 141.5))
_CAMERA_BOX = (196.0, 114.5, 59.0, 80.5)
_CAMERA_LM = ((234.0, 147.0), (249.5, 147.5), (250.5, 165.0), (230.0, 178.0), (242.5, 178.5))
# Mean YuNet landmarks on the LFW crops, as fractions of the crop side.
_LFW_LM = ((0.25, 0.34), (0.60, 0.34), (0.41, 0.53), (0.28, 0.71), (0.58, 0.70))

NEGATIVE_NAMES = (
    "chelsea", "coffee", "rocket", "brick", "grass", "gravel", "coins", "horse", "hubble_deep_field",
    "motorcycle_left", "page", "text", "moon", "retina", "ihc", "cell", "clock", "logo", "colorwheel",
)


def _skimage_data():
    try:
        import skimage.data as data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("detector measurement needs scikit-image (a test dependency): pip install scikit-image") from exc
    return data


def _bgr(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2BGR)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def face_sources(n_lfw: int = 100) -> list[FaceSource]:
    """astronaut, camera, then up to `n_lfw` LFW face crops (upscaled 4x, on a mid-gray surround)."""
    data = _skimage_data()
    out = [
        FaceSource("astronaut", _bgr(data.astronaut()), _ASTRONAUT_BOX, _ASTRONAUT_LM),
        FaceSource("camera", _bgr(data.camera()), _CAMERA_BOX, _CAMERA_LM),
    ]
    lfw = data.lfw_subset()[:100]
    for i in range(min(n_lfw, 100)):
        crop = cv2.resize((lfw[i] * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        lm = tuple((fx * 100.0, fy * 100.0) for fx, fy in _LFW_LM)
        out.append(FaceSource(f"lfw{i:02d}", _bgr(crop), (0.0, 0.0, 100.0, 100.0), lm))
    return out


def negative_images() -> list[tuple[str, np.ndarray]]:
    """Face-free photos (resized to 640x480) and synthetic blank frames (read-only arrays, cached)."""
    return list(_negative_images())


@functools.lru_cache(maxsize=1)
def _negative_images() -> tuple[tuple[str, np.ndarray], ...]:
    data = _skimage_data()
    out: list[tuple[str, np.ndarray]] = []
    for name in NEGATIVE_NAMES:
        fn = getattr(data, name, None)
        if fn is None:
            continue
        try:
            img = fn()
        except Exception:  # noqa: BLE001 - a sample that needs a download is simply left out
            continue
        out.append((name, cv2.resize(_bgr(img), (FRAME_W, FRAME_H), interpolation=cv2.INTER_AREA)))
    try:
        from sklearn.datasets import load_sample_images

        for fname, img in zip(load_sample_images().filenames, load_sample_images().images):
            out.append((fname.split("/")[-1].split(".")[0], cv2.resize(_bgr(img), (FRAME_W, FRAME_H))))
    except Exception:  # noqa: BLE001
        pass
    lfw = data.lfw_subset()[100:]
    grid = np.vstack([np.hstack([cv2.resize((lfw[r * 8 + c] * 255).astype(np.uint8), (80, 80)) for c in range(8)]) for r in range(6)])
    out.append(("lfw_nonfaces", _bgr(cv2.resize(grid, (FRAME_W, FRAME_H)))))
    rng = np.random.default_rng(0)
    out.append(("black", np.zeros((FRAME_H, FRAME_W, 3), np.uint8)))
    out.append(("white", np.full((FRAME_H, FRAME_W, 3), 255, np.uint8)))
    out.append(("gray", np.full((FRAME_H, FRAME_W, 3), 128, np.uint8)))
    out.append(("noise", rng.integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)))
    ramp = np.tile(np.linspace(0, 255, FRAME_W, dtype=np.float32), (FRAME_H, 1)).astype(np.uint8)
    out.append(("gradient", cv2.cvtColor(ramp, cv2.COLOR_GRAY2BGR)))
    for _, img in out:
        img.setflags(write=False)
    return tuple(out)


def place_face(
    src: FaceSource,
    background: np.ndarray,
    face_width: float,
    angle: float = 0.0,
    center: tuple[float, float] | None = None,
    occlusion: str | None = None,
) -> tuple[np.ndarray, Box]:
    """Warp `src` so its face is `face_width` px wide, rotated by `angle` degrees (counter-clockwise)
    about the face centre, centred at `center` in `background` (a copy is returned with the box)."""
    img = src.image.copy()
    bx, by, bw, bh = src.box
    if occlusion:
        _occlude(img, src, occlusion)
    s = face_width / bw
    fcx, fcy = bx + bw / 2.0, by + bh / 2.0
    H, W = background.shape[:2]
    cx, cy = center if center is not None else (W / 2.0, H / 2.0)
    m = cv2.getRotationMatrix2D((fcx, fcy), angle, s)
    m[0, 2] += cx - fcx
    m[1, 2] += cy - fcy
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    warped = cv2.warpAffine(img, m, (W, H), flags=interp, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpAffine(np.full(img.shape[:2], 255, np.uint8), m, (W, H), flags=cv2.INTER_NEAREST)
    out = background.copy()
    out[mask > 0] = warped[mask > 0]
    gw, gh = bw * s, bh * s
    return out, Box(int(round(cx - gw / 2)), int(round(cy - gh / 2)), int(round(gw)), int(round(gh)), 1.0)


def _occlude(img: np.ndarray, src: FaceSource, kind: str) -> None:
    bx, by, bw, bh = src.box
    lm = np.asarray(src.landmarks, dtype=np.float64)
    x0, x1 = int(bx - 0.05 * bw), int(bx + 1.05 * bw)
    if kind == "eyes":
        ey = lm[:2, 1].mean()
        y0, y1 = int(ey - 0.13 * bh), int(ey + 0.11 * bh)
    elif kind == "mouth":
        my = lm[3:, 1].mean()
        y0, y1 = int(my - 0.11 * bh), int(my + 0.12 * bh)
    elif kind == "lower_half":  # like a face mask: from just under the eyes... to the chin
        ny = lm[2, 1]
        y0, y1 = int(ny - 0.02 * bh), int(by + 1.05 * bh)
    else:
        raise ValueError(f"unknown occlusion {kind!r}")
    cv2.rectangle(img, (max(x0, 0), max(y0, 0)), (x1, y1), (0, 0, 0), thickness=-1)


def _backgrounds() -> list[np.ndarray]:
    negs = dict(negative_images())
    keys = [k for k in ("china", "coffee", "brick", "gray", "motorcycle_left", "grass") if k in negs]
    return [negs[k] for k in keys]


def build_cases(quick: bool = False, seed: int = 0) -> list[Case]:
    """All detection test frames. `quick=True` gives a small subset for unit tests."""
    rng = np.random.default_rng(seed)
    sources = face_sources(n_lfw=8 if quick else 100)
    photos, lfw = sources[:2], sources[2:]
    bgs = _backgrounds()
    cases: list[Case] = []

    def pick_lfw(k: int) -> list[FaceSource]:
        idx = rng.choice(len(lfw), size=min(k, len(lfw)), replace=False)
        return [lfw[i] for i in idx]

    def bg() -> np.ndarray:
        return bgs[int(rng.integers(len(bgs)))]

    def jitter() -> tuple[float, float]:
        return (FRAME_W / 2 + rng.uniform(-120, 120), FRAME_H / 2 + rng.uniform(-80, 80))

    def add(group: str, name: str, src: FaceSource, **kw) -> None:
        frame, box = place_face(src, bg(), center=jitter(), **kw)
        cases.append(Case(f"{group}/{name}/{src.name}", group, frame, [box]))

    widths = (24, 32, 48, 64, 96, 128, 200) if not quick else (32, 96)
    per = 2 if quick else 8
    for wdt in widths:
        for src in photos + (pick_lfw(per) if wdt <= 128 else []):
            add("scale", f"w{wdt}", src, face_width=wdt)
    angles = (-45, -30, -15, 15, 30, 45) if not quick else (-30, 30)
    for ang in angles:
        for src in photos + pick_lfw(per):
            add("rotation", f"r{ang:+d}", src, face_width=100, angle=ang)
    for occ in ("eyes", "mouth", "lower_half"):
        for src in photos + pick_lfw(per + (0 if quick else 4)):
            add("occlusion", occ, src, face_width=100, occlusion=occ)
    # low light: darker, lower contrast, sensor noise
    for src in photos + pick_lfw(per):
        frame, box = place_face(src, bg(), face_width=90, center=jitter())
        dim = (frame.astype(np.float32) * 0.25 + rng.normal(0, 4, frame.shape)).clip(0, 255).astype(np.uint8)
        cases.append(Case(f"dim/{src.name}", "dim", dim, [box]))
    # four faces in one frame
    for k in range(2 if quick else 6):
        srcs = [photos[k % 2]] + pick_lfw(3)
        frame = bg()
        boxes = []
        for j, src in enumerate(srcs):
            c = (FRAME_W * (0.27 + 0.46 * (j % 2)), FRAME_H * (0.28 + 0.46 * (j // 2)))
            frame, b = place_face(src, frame, face_width=float(rng.uniform(60, 110)), angle=float(rng.uniform(-10, 10)), center=c)
            boxes.append(b)
        cases.append(Case(f"multi/{k}", "multi", frame, boxes))
    negs = negative_images()
    if quick:
        negs = [n for n in negs if n[0] in ("chelsea", "coffee", "rocket", "black", "noise", "china")]
    for name, img in negs:
        cases.append(Case(f"negative/{name}", "negative", img, []))
    return cases
