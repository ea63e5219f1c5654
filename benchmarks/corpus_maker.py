"""A corpus of photos and clips with real faces, for benchmarks/corpus.py and the corpus tests.

Photos are 640x480 JPEGs in nested folders (100 a folder) with 1-4 faces each: the astronaut
photo of scikit-image (NASA, public domain) and, when the team's FER-2013 zip is given, real
FER-2013 faces scaled up, at random sizes, places, mirror images and brightness; about 4% have no
face, and a few are broken (a truncated JPEG, a text file named .jpg). Optional short clips
(benchmarks/clips.py). Deterministic for a seed.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.clips import ClipPlan, astronaut_face, make_clip


@dataclass
class CorpusFacts:
    root: Path
    photos: int = 0
    faces_placed: int = 0
    no_face: int = 0
    broken: list[str] = field(default_factory=list)
    clips: list[str] = field(default_factory=list)


def _fer_faces(zip_path: Path | None, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    if zip_path is None or not Path(zip_path).is_file():
        return []
    with zipfile.ZipFile(zip_path) as zf:
        names = [m for m in zf.namelist() if m.startswith("train/") and m.endswith((".jpg", ".png"))]
        picks = rng.choice(len(names), size=min(n, len(names)), replace=False)
        faces = []
        for i in picks:
            img = cv2.imdecode(np.frombuffer(zf.read(names[i]), np.uint8), cv2.IMREAD_COLOR)
            if img is not None:
                faces.append(img)
    return faces


def _background(rng: np.random.Generator, w: int = 640, h: int = 480) -> np.ndarray:
    base = rng.integers(40, 200, size=3)
    grad = np.linspace(-30, 30, w)[None, :, None]
    img = np.clip(base[None, None, :] + grad + rng.normal(0, 6, (h, w, 3)), 0, 255)
    return img.astype(np.uint8)


def _photo(rng: np.random.Generator, pool: list[np.ndarray], n_faces: int) -> np.ndarray:
    img = _background(rng)
    h, w = img.shape[:2]
    slots = [(x, y) for y in (0, 240) for x in (0, 320)]
    rng.shuffle(slots)
    for k in range(n_faces):
        face = pool[int(rng.integers(len(pool)))]
        side = int(rng.integers(110, 200))
        fh, fw = face.shape[:2]
        f = cv2.resize(face, (max(1, int(side * fw / fh)), side), interpolation=cv2.INTER_CUBIC)
        if rng.random() < 0.5:
            f = f[:, ::-1]
        f = np.clip(f.astype(np.float32) * rng.uniform(0.75, 1.2), 0, 255).astype(np.uint8)
        sx, sy = slots[k]
        x = sx + int(rng.integers(0, max(1, 320 - f.shape[1])))
        y = sy + int(rng.integers(0, max(1, 240 - f.shape[0])))
        fh2, fw2 = min(f.shape[0], h - y), min(f.shape[1], w - x)
        img[y:y + fh2, x:x + fw2] = f[:fh2, :fw2]
    return img


def make_corpus(root: str | Path, photos: int, *, seed: int = 0, fer_zip: Path | None = None, broken: int = 2,
                clips: int = 0, clip_seconds: float = 4.0, per_folder: int = 100) -> CorpusFacts:
    """Write the corpus under `root`; what was put in it."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    facts = CorpusFacts(root)
    pool = [astronaut_face()] + _fer_faces(fer_zip, 400, rng)
    broken_at = {int((k + 0.5) * photos / broken) for k in range(broken)} if broken and photos else set()
    for i in range(photos):
        folder = root / f"set{i // (per_folder * 10):02d}" / f"batch{(i // per_folder) % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"photo{i:06d}.jpg"
        if i in broken_at:
            if len(facts.broken) % 2 == 0:
                ok, buf = cv2.imencode(".jpg", _photo(rng, pool, 1))
                path.write_bytes(buf.tobytes()[: len(buf) // 3])  # cut short
            else:
                path.write_text("not a photo\n", encoding="utf-8")
            facts.broken.append(str(path))
            continue
        n_faces = 0 if rng.random() < 0.04 else int(rng.integers(1, 5))
        cv2.imwrite(str(path), _photo(rng, pool, n_faces), [cv2.IMWRITE_JPEG_QUALITY, 90])
        facts.photos += 1
        facts.faces_placed += n_faces
        facts.no_face += n_faces == 0
    for k in range(clips):
        path = root / "clips" / f"clip{k}.mp4"
        make_clip(path, ClipPlan(seconds=clip_seconds, faces=1 + k % 2))
        facts.clips.append(str(path))
    return facts
