"""The built-in demo set: procedurally drawn 48x48 grayscale cartoon faces with 7 expressions.

Synthetic on purpose (no download, no personal data): it lets people try training, evaluation and the
webcam page at once. Expressions differ by brows (height, slant, arch), eye openness and mouth
(width, curvature, openness, asymmetry), drawn at a random strength so weak expressions come close
to neutral; pose, size, skin tone, background, lighting gradient, blur and noise vary. Everything is
deterministic from a seed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from fer_core.data.types import IMAGE_SIZE, Split
from fer_core.labels import FER_LABELS

DEMO_NAME = "Demo (synthetic faces)"
DEMO_VERSION = 1
DEFAULT_SEED = 2013
DEFAULT_TRAIN_PER_CLASS = 300
DEFAULT_TEST_PER_CLASS = 80

_SCALE = 4  # draw at 4x and downsample with INTER_AREA: smooth, anti-aliased strokes
_BIG = IMAGE_SIZE * _SCALE


@dataclass(frozen=True)
class Expression:
    """Face parameters in 48-pixel units (differences from neutral carry the expression)."""

    brow_raise: float = 0.0  # brows up (+) / down (-)
    brow_slant: float = 0.0  # inner ends up (+, sad/fear) / down (-, angry)
    brow_arch: float = 0.4  # middle of the brow above its ends
    eye_open: float = 2.2  # half height of the eye opening
    mouth_width: float = 10.0
    mouth_curve: float = 0.0  # corners above (+, smile) / below (-) the middle
    mouth_open: float = 0.0  # gap between the lips
    mouth_asym: float = 0.0  # one corner up, the other down (sneer)
    wrinkle: float = 0.0  # nose wrinkles (disgust)


# Indexed like FER_LABELS: angry, disgust, fear, happy, sad, surprise, neutral.
EXPRESSIONS: dict[str, Expression] = {
    "angry": Expression(brow_raise=-1.8, brow_slant=-2.6, brow_arch=0.0, eye_open=1.6, mouth_width=8.5, mouth_curve=-0.8),
    "disgust": Expression(brow_raise=-1.0, brow_slant=-0.8, eye_open=1.2, mouth_width=9.0, mouth_curve=-1.8,
                          mouth_open=0.8, mouth_asym=2.6, wrinkle=1.0),
    "fear": Expression(brow_raise=2.4, brow_slant=1.6, eye_open=3.4, mouth_width=9.5, mouth_curve=-0.6, mouth_open=2.6),
    "happy": Expression(brow_raise=0.5, eye_open=1.4, mouth_width=13.0, mouth_curve=4.0, mouth_open=0.6),
    "sad": Expression(brow_raise=0.4, brow_slant=2.8, eye_open=1.7, mouth_width=9.0, mouth_curve=-3.2),
    "surprise": Expression(brow_raise=3.4, brow_arch=1.6, eye_open=3.4, mouth_width=5.5, mouth_open=6.0),
    "neutral": Expression(),
}
_NEUTRAL = EXPRESSIONS["neutral"]
_FIELDS = tuple(Expression.__dataclass_fields__)


def _params(expression: int, rng: np.random.Generator) -> Expression:
    """The class's parameters at a random strength, with per-face jitter."""
    target = EXPRESSIONS[FER_LABELS[expression]]
    strength = 1.0 if expression == FER_LABELS.index("neutral") else rng.uniform(0.45, 1.2)
    jitter = {"brow_raise": 0.6, "brow_slant": 0.5, "brow_arch": 0.3, "eye_open": 0.3, "mouth_width": 1.0,
              "mouth_curve": 0.6, "mouth_open": 0.3, "mouth_asym": 0.4, "wrinkle": 0.0}
    values = {}
    for f in _FIELDS:
        base, goal = getattr(_NEUTRAL, f), getattr(target, f)
        values[f] = base + strength * (goal - base) + rng.normal(0.0, jitter[f])
    values["eye_open"] = max(values["eye_open"], 0.5)
    values["mouth_width"] = max(values["mouth_width"], 4.0)
    values["mouth_open"] = max(values["mouth_open"], 0.0)
    return Expression(**values)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _SCALE)), int(round(y * _SCALE))


def _thick(t: float) -> int:
    return max(1, int(round(t * _SCALE)))


def render_face(expression: int, rng: np.random.Generator) -> np.ndarray:
    """One synthetic face showing `expression` (a FER_LABELS index) -> uint8 (48, 48) grayscale."""
    if not 0 <= int(expression) < len(FER_LABELS):
        raise ValueError(f"expression must be a FER_LABELS index 0-{len(FER_LABELS) - 1}, got {expression}")
    p = _params(int(expression), rng)
    bg = float(rng.uniform(20, 230))
    skin = float(rng.uniform(95, 215))
    if abs(skin - bg) < 35:  # keep the face visible against the background
        bg = skin - 60 if skin > 125 else skin + 60
    dark = skin * rng.uniform(0.15, 0.4)
    canvas = np.full((_BIG, _BIG), bg, dtype=np.uint8)

    cx, cy = 24.0, 25.0
    fw, fh = rng.uniform(14.5, 17.0), rng.uniform(18.0, 21.0)
    if rng.random() < 0.6:  # hair behind the top of the head
        hair = float(rng.uniform(15, 90))
        cv2.ellipse(canvas, _pt(cx, cy - 3), _pt(fw + 1.5, fh + 0.5), 0, 180, 360, hair, -1, cv2.LINE_AA)
    cv2.ellipse(canvas, _pt(cx, cy), _pt(fw, fh), 0, 0, 360, skin, -1, cv2.LINE_AA)

    # Eyes: sclera + pupil; the opening height carries fear/surprise (wide) or happy/disgust (squint).
    eye_y, eye_dx = cy - 4.0 + rng.normal(0, 0.3), rng.uniform(6.0, 7.5)
    sclera = min(255.0, skin + rng.uniform(30, 60))
    for side in (-1, 1):
        ex = cx + side * eye_dx
        cv2.ellipse(canvas, _pt(ex, eye_y), _pt(3.2, p.eye_open), 0, 0, 360, sclera, -1, cv2.LINE_AA)
        r = min(1.6, p.eye_open)
        cv2.circle(canvas, _pt(ex + rng.normal(0, 0.3), eye_y), _thick(r), dark, -1, cv2.LINE_AA)
        cv2.ellipse(canvas, _pt(ex, eye_y), _pt(3.2, p.eye_open), 0, 0, 360, dark, _thick(0.5), cv2.LINE_AA)

    # Brows: outer end, middle (arch) and inner end; inner end height carries the slant.
    brow_y = eye_y - 4.5 - p.brow_raise
    for side in (-1, 1):
        inner_x, outer_x = cx + side * (eye_dx - 3.3), cx + side * (eye_dx + 3.6)
        inner = (inner_x, brow_y - p.brow_slant * 0.5)
        outer = (outer_x, brow_y + p.brow_slant * 0.5)
        mid = ((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2 - p.brow_arch)
        pts = np.array([_pt(*outer), _pt(*mid), _pt(*inner)], dtype=np.int32)
        cv2.polylines(canvas, [pts], False, dark, _thick(rng.uniform(1.0, 1.5)), cv2.LINE_AA)

    # Nose, and wrinkles beside it for disgust.
    nose_y = cy + 3.0
    cv2.line(canvas, _pt(cx - 1.2, nose_y), _pt(cx + 1.2, nose_y), dark, _thick(0.8), cv2.LINE_AA)
    if p.wrinkle > 0.5:
        for side in (-1, 1):
            cv2.line(canvas, _pt(cx + side * 2.5, nose_y - 3.5), _pt(cx + side * 3.5, nose_y - 1.0), dark,
                     _thick(0.6), cv2.LINE_AA)

    # Mouth: a curve whose corners sit mouth_curve above the middle, optionally opened.
    my = cy + 9.5 + rng.normal(0, 0.4)
    u = np.linspace(-1.0, 1.0, 17)
    xs = cx + u * p.mouth_width / 2
    ys = my + p.mouth_curve * (0.5 - u**2) + p.mouth_asym * u * 0.5
    if p.mouth_open > 0.8:
        half = p.mouth_open / 2 * np.sqrt(1 - u**2)
        poly = np.concatenate([np.stack([xs, ys - half], 1), np.stack([xs, ys + half], 1)[::-1]])
        cv2.fillPoly(canvas, [np.round(poly * _SCALE).astype(np.int32)], dark * 0.6, cv2.LINE_AA)
        cv2.polylines(canvas, [np.round(poly * _SCALE).astype(np.int32)], True, dark, _thick(0.7), cv2.LINE_AA)
    else:
        pts = np.round(np.stack([xs, ys], 1) * _SCALE).astype(np.int32)
        cv2.polylines(canvas, [pts], False, dark, _thick(rng.uniform(0.9, 1.4)), cv2.LINE_AA)

    # Pose: small rotation, scale and shift; then shrink to 48x48.
    angle = rng.uniform(-12, 12)
    zoom = rng.uniform(0.85, 1.1)
    m = cv2.getRotationMatrix2D((_BIG / 2, _BIG / 2), angle, zoom)
    m[:, 2] += rng.uniform(-3, 3, size=2) * _SCALE
    canvas = cv2.warpAffine(canvas, m, (_BIG, _BIG), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    img = cv2.resize(canvas, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)

    # Lighting gradient, optional blur, sensor noise.
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) / IMAGE_SIZE - 0.5
    img *= 1.0 + rng.uniform(0.0, 0.5) * (xx * math.cos(theta) + yy * math.sin(theta))
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.4, 0.9))
    img += rng.normal(0.0, rng.uniform(3.0, 10.0), size=img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def make_split(
    per_class: int,
    rng: np.random.Generator,
    start: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Split:
    """`per_class` faces of each expression in a shuffled (but seeded) order."""
    labels = np.repeat(np.arange(len(FER_LABELS), dtype=np.int64), per_class)
    labels = labels[rng.permutation(len(labels))]
    images = np.empty((len(labels), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = render_face(int(label), rng)
        if progress and (i + 1) % 64 == 0:
            progress(i + 1)
    sources = np.array([f"demo {start + i}" for i in range(len(labels))], dtype=str)
    return Split(images=images, labels=labels, sources=sources)


def demo_fingerprint(seed: int, train_per_class: int, test_per_class: int) -> str:
    key = f"demo:v{DEMO_VERSION}:{seed}:{train_per_class}:{test_per_class}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def generate(
    seed: int = DEFAULT_SEED,
    train_per_class: int = DEFAULT_TRAIN_PER_CLASS,
    test_per_class: int = DEFAULT_TEST_PER_CLASS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Split]:
    """The demo splits {"train", "test"}, deterministic from `seed`."""
    seq = np.random.SeedSequence(seed)
    train_seq, test_seq = seq.spawn(2)
    n_train = train_per_class * len(FER_LABELS)
    total = n_train + test_per_class * len(FER_LABELS)
    if progress:
        progress(0, total)
    train = make_split(train_per_class, np.random.default_rng(train_seq), 0,
                       (lambda k: progress(k, total)) if progress else None)
    test = make_split(test_per_class, np.random.default_rng(test_seq), n_train,
                      (lambda k: progress(n_train + k, total)) if progress else None)
    if progress:
        progress(total, total)
    return {"train": train, "test": test}
