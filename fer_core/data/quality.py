"""Data-quality checks: blank (near-constant) images and exact pixel duplicates within and across splits.

Nothing is removed: the findings go into the LoadReport for the user to see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from fer_core.data.types import SPLIT_ORDER, LoadReport, Split

BLANK_STD = 2.0  # an image whose pixel standard deviation is below this shows nothing
_CHUNK = 2048


def blank_indices(images: np.ndarray, threshold: float = BLANK_STD) -> list[int]:
    """Indices of near-constant images (all pixels equal, or pixel std < threshold)."""
    n = len(images)
    if n == 0:
        return []
    flat = images.reshape(n, -1)
    out: list[np.ndarray] = []
    for start in range(0, n, _CHUNK):
        chunk = flat[start:start + _CHUNK].astype(np.float32)
        std = chunk.std(axis=1)
        out.append(np.flatnonzero(std < threshold) + start)
    return [int(i) for i in np.concatenate(out)]


def image_hashes(images: np.ndarray) -> list[bytes]:
    """A 128-bit BLAKE2b digest of each image's pixel bytes."""
    return [hashlib.blake2b(img.tobytes(), digest_size=16).digest() for img in np.ascontiguousarray(images)]


def find_duplicates(
    splits: Mapping[str, Split],
) -> tuple[dict[str, list[list[int]]], list[dict]]:
    """(within, across): groups of pixel-identical indices per split, and cross-split pairs.

    Across: for every image of a later split (SPLIT_ORDER) that also occurs in an earlier split, one
    pair {"split_a", "index_a", "split_b", "index_b"} with the image's first occurrence in split_a.
    So the number of pairs for (train, test) is the number of test images that also occur in train.
    """
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    names = sorted(splits, key=lambda s: (order.get(s, len(order)), s))
    first_seen: dict[str, dict[bytes, int]] = {}
    within: dict[str, list[list[int]]] = {}
    across: list[dict] = []
    for name in names:
        groups: dict[bytes, list[int]] = {}
        for i, h in enumerate(image_hashes(splits[name].images)):
            groups.setdefault(h, []).append(i)
        within[name] = [g for g in groups.values() if len(g) > 1]
        for prev in names[: names.index(name)]:
            seen = first_seen[prev]
            for h, idx in groups.items():
                j = seen.get(h)
                if j is not None:
                    across.extend({"split_a": prev, "index_a": j, "split_b": name, "index_b": i} for i in idx)
        first_seen[name] = {h: g[0] for h, g in groups.items()}
    across.sort(key=lambda p: (order.get(p["split_a"], 99), order.get(p["split_b"], 99), p["index_b"]))
    return within, across


def analyse(splits: Mapping[str, Split], report: LoadReport) -> None:
    """Fill report.counts, report.blank, report.duplicates_within and report.duplicates_across."""
    report.counts = {name: s.class_counts() for name, s in splits.items()}
    report.blank = {name: blank_indices(s.images) for name, s in splits.items()}
    report.duplicates_within, report.duplicates_across = find_duplicates(splits)
