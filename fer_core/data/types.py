"""The dataset dataclasses every fer_core module codes against (see docs/DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_core.errors import DatasetError
from fer_core.labels import FER_LABELS

IMAGE_SIZE = 48
# Canonical split names, in the order they are shown and compared for duplicates.
SPLIT_ORDER: tuple[str, ...] = ("train", "test", "private_test")
SKIPPED_LIST_CAP = 500


@dataclass
class Split:
    """One split: uint8 (N, 48, 48) images, int64 (N,) FER_LABELS indices, str (N,) sources."""

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.uint8)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.sources = np.asarray(self.sources, dtype=str)
        n = len(self.images)
        if self.images.ndim != 3 or len(self.labels) != n or len(self.sources) != n:
            raise ValueError(
                f"inconsistent split: images {self.images.shape}, labels {self.labels.shape}, sources {self.sources.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self, labels: tuple[str, ...] = FER_LABELS) -> dict[str, int]:
        """Images per class name (every class present, zeros included)."""
        counts = np.bincount(self.labels, minlength=len(labels)) if len(self.labels) else np.zeros(len(labels), int)
        return {name: int(counts[i]) for i, name in enumerate(labels)}


@dataclass
class LoadReport:
    """What happened while reading a dataset source: counts, skipped items, blanks, duplicates."""

    source: str
    format: str  # "zip" | "folder" | "csv" | "demo"
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class name -> count
    skipped: list[dict] = field(default_factory=list)  # {"item", "reason"}; capped at SKIPPED_LIST_CAP
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    blank: dict[str, list[int]] = field(default_factory=dict)  # split -> indices of near-constant images
    duplicates_within: dict[str, list[list[int]]] = field(default_factory=dict)  # split -> groups of indices
    # Pixel-identical images across splits: one entry per image of the later split (split_b) that also
    # occurs in an earlier split (split_a, in SPLIT_ORDER), paired with its first occurrence there.
    duplicates_across: list[dict] = field(default_factory=list)
    resized: int = 0  # images decoded at another size than 48x48 and resized (kept, not skipped)
    from_cache: bool = False  # this load came from the decoded-array cache
    seconds: float = 0.0  # time spent decoding (on the load that built the cache)

    def add_skipped(self, item: str, reason: str) -> None:
        """Count one unusable file/row; keep the first SKIPPED_LIST_CAP as examples."""
        self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1
        if len(self.skipped) < SKIPPED_LIST_CAP:
            self.skipped.append({"item": item, "reason": reason})

    @property
    def total_skipped(self) -> int:
        return int(sum(self.skipped_by_reason.values()))

    def summary(self) -> dict[str, Any]:
        """Plain numbers for the UI and the CLI (no index lists)."""
        across: dict[str, int] = {}
        for pair in self.duplicates_across:
            key = f"{pair['split_b']} in {pair['split_a']}"
            across[key] = across.get(key, 0) + 1
        return {
            "images": {split: int(sum(c.values())) for split, c in self.counts.items()},
            "skipped": self.total_skipped,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "resized": int(self.resized),
            "blank": {split: len(idx) for split, idx in self.blank.items() if idx},
            "duplicate_groups_within": {split: len(g) for split, g in self.duplicates_within.items() if g},
            "duplicate_images_within": {
                split: int(sum(len(x) for x in g)) for split, g in self.duplicates_within.items() if g
            },
            "duplicates_across": across,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (plain Python types only)."""
        return {
            "source": str(self.source),
            "format": str(self.format),
            "counts": {s: {k: int(v) for k, v in c.items()} for s, c in self.counts.items()},
            "skipped": [{k: str(v) for k, v in d.items()} for d in self.skipped],
            "skipped_by_reason": {str(k): int(v) for k, v in self.skipped_by_reason.items()},
            "blank": {s: [int(i) for i in idx] for s, idx in self.blank.items()},
            "duplicates_within": {s: [[int(i) for i in g] for g in groups] for s, groups in self.duplicates_within.items()},
            "duplicates_across": [
                {"split_a": str(p["split_a"]), "index_a": int(p["index_a"]),
                 "split_b": str(p["split_b"]), "index_b": int(p["index_b"])}
                for p in self.duplicates_across
            ],
            "resized": int(self.resized),
            "from_cache": bool(self.from_cache),
            "seconds": float(self.seconds),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoadReport:
        """Inverse of to_dict (unknown keys ignored, missing optional keys defaulted)."""
        return cls(
            source=str(d["source"]),
            format=str(d["format"]),
            counts={str(s): {str(k): int(v) for k, v in c.items()} for s, c in d.get("counts", {}).items()},
            skipped=[{str(k): str(v) for k, v in x.items()} for x in d.get("skipped", [])],
            skipped_by_reason={str(k): int(v) for k, v in d.get("skipped_by_reason", {}).items()},
            blank={str(s): [int(i) for i in idx] for s, idx in d.get("blank", {}).items()},
            duplicates_within={
                str(s): [[int(i) for i in g] for g in groups] for s, groups in d.get("duplicates_within", {}).items()
            },
            duplicates_across=[
                {"split_a": str(p["split_a"]), "index_a": int(p["index_a"]),
                 "split_b": str(p["split_b"]), "index_b": int(p["index_b"])}
                for p in d.get("duplicates_across", [])
            ],
            resized=int(d.get("resized", 0)),
            from_cache=bool(d.get("from_cache", False)),
            seconds=float(d.get("seconds", 0.0)),
        )


@dataclass
class Dataset:
    """A loaded dataset: named splits of 48x48 uint8 faces labelled with FER_LABELS indices."""

    name: str
    splits: dict[str, Split]  # "train", "test" (Kaggle test folder = CSV PublicTest), "private_test" (CSV only)
    fingerprint: str
    synthetic: bool  # True for the built-in demo set
    report: LoadReport
    labels: tuple[str, ...] = FER_LABELS

    def split(self, name: str) -> Split:
        """The split called `name`, or DatasetError naming the available ones."""
        try:
            return self.splits[name]
        except KeyError:
            available = ", ".join(self.splits) or "none"
            raise DatasetError(f"dataset {self.name!r} has no split {name!r}; available splits: {available}") from None

    def class_counts(self) -> dict[str, dict[str, int]]:
        """split -> class name -> count (every class, zeros included); DataFrame-ready (`pd.DataFrame(d)`)."""
        return {name: s.class_counts(self.labels) for name, s in self.splits.items()}

    @property
    def num_images(self) -> int:
        return int(sum(len(s) for s in self.splits.values()))
