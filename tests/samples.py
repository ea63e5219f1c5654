"""Tiny FER-2013-shaped sources for tests and examples: a Kaggle-layout folder/zip and a Kaggle CSV.

Faces come from the demo renderer, so every image is a distinct, valid 48x48 face. PNG is the
default encoding (lossless: the same pixels come back from the folder, the zip and the CSV).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_core.data import render_face
from fer_core.labels import FER_LABELS

CSV_USAGE = {"train": "Training", "test": "PublicTest", "private_test": "PrivateTest"}


@dataclass(frozen=True)
class SampleImage:
    split: str  # "train" | "test" | "private_test"
    label: int  # FER_LABELS index
    image: np.ndarray  # uint8 (48, 48)


def sample_images(per_class: int = 2, splits: Iterable[str] = ("train", "test"), seed: int = 0) -> list[SampleImage]:
    """`per_class` rendered faces of every class in every split."""
    rng = np.random.default_rng(seed)
    return [SampleImage(split, label, render_face(label, rng))
            for split in splits for label in range(len(FER_LABELS)) for _ in range(per_class)]


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, image)
    if not ok:  # pragma: no cover
        raise ValueError(f"cannot encode as {ext}")
    return buf.tobytes()


def layout_files(
    samples: Iterable[SampleImage],
    *,
    top: str | None = None,
    split_dirs: Mapping[str, str] | None = None,
    class_dirs: Mapping[str, str] | None = None,
    ext: str = ".png",
) -> dict[str, bytes]:
    """relative path -> encoded bytes in the Kaggle layout: [top/]<split>/<class>/<n><ext>.

    `split_dirs` / `class_dirs` rename folders (e.g. {"happy": "Happy"}) to test letter case and aliases.
    """
    files: dict[str, bytes] = {}
    for i, s in enumerate(samples):
        split_dir = (split_dirs or {}).get(s.split, s.split)
        name = FER_LABELS[s.label]
        class_dir = (class_dirs or {}).get(name, name)
        rel = f"{split_dir}/{class_dir}/img{i:05d}{ext}"
        files[f"{top}/{rel}" if top else rel] = encode(s.image, ext)
    return files


def write_tree(root: Path, files: Mapping[str, bytes]) -> Path:
    """Write relative path -> bytes under root (as an extracted zip would be)."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_zip(path: Path, files: Mapping[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip holding relative path -> bytes (with directory entries, like Kaggle's zip)."""
    dirs = sorted({"/".join(rel.split("/")[:k]) + "/" for rel in files for k in range(1, rel.count("/") + 1)})
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for d in dirs:
            zf.writestr(d, b"")
        for rel, data in files.items():
            zf.writestr(rel, data)
    return path


def csv_text(samples: Iterable[SampleImage]) -> str:
    """The Kaggle fer2013.csv form (emotion,pixels,Usage) of the samples, in order."""
    lines = ["emotion,pixels,Usage"]
    for s in samples:
        lines.append(f"{s.label},{' '.join(map(str, s.image.ravel()))},{CSV_USAGE[s.split]}")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, samples: Iterable[SampleImage]) -> Path:
    path.write_text(csv_text(samples), encoding="utf-8")
    return path
