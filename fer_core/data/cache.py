"""Decoded-dataset cache: one uncompressed .npz of uint8 arrays + the report JSON per source fingerprint.

Files live under `fer_core.paths.cache_dir()/datasets/`, are written atomically (tmp file in the same
folder + os.replace) and read with allow_pickle=False. A cache file that cannot be read or does not
match is ignored (and removed), never fatal; a cache that cannot be written only logs a warning.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from fer_core.data.types import IMAGE_SIZE, Dataset, LoadReport, Split
from fer_core.paths import cache_dir

log = logging.getLogger(__name__)

# Bump when decoding or the report changes, so old cache files are not reused.
CACHE_VERSION = 1


def cache_path(fmt: str, fingerprint: str) -> Path:
    safe = "".join(c for c in f"{fmt}-{fingerprint}" if c.isalnum() or c in "-_")
    return cache_dir() / "datasets" / f"{safe}-v{CACHE_VERSION}.npz"


def save(dataset: Dataset, path: Path) -> bool:
    """Write the dataset atomically; True on success, False (logged) if the cache cannot be written."""
    meta = {
        "version": CACHE_VERSION,
        "name": dataset.name,
        "fingerprint": dataset.fingerprint,
        "synthetic": bool(dataset.synthetic),
        "labels": list(dataset.labels),
        "splits": list(dataset.splits),
        "report": dataset.report.to_dict(),
    }
    arrays: dict[str, np.ndarray] = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    for i, s in enumerate(dataset.splits.values()):
        arrays[f"images_{i}"] = s.images
        arrays[f"labels_{i}"] = s.labels
        arrays[f"sources_{i}"] = s.sources
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("could not write dataset cache %s: %s", path, exc)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def load(path: Path, fingerprint: str) -> Dataset | None:
    """The cached dataset, or None if absent, unreadable, corrupt or for another fingerprint."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("version") != CACHE_VERSION or meta.get("fingerprint") != fingerprint:
                raise ValueError("cache file is for another version or source")
            splits: dict[str, Split] = {}
            for i, name in enumerate(meta["splits"]):
                images, labels, sources = z[f"images_{i}"], z[f"labels_{i}"], z[f"sources_{i}"]
                n = len(labels)
                if (images.dtype != np.uint8 or images.shape != (n, IMAGE_SIZE, IMAGE_SIZE)
                        or labels.dtype != np.int64 or sources.shape != (n,)):
                    raise ValueError(f"cached split {name!r} has inconsistent arrays")
                splits[str(name)] = Split(images=images, labels=labels, sources=sources)
            report = LoadReport.from_dict(meta["report"])
            return Dataset(
                name=str(meta["name"]),
                splits=splits,
                fingerprint=str(meta["fingerprint"]),
                synthetic=bool(meta["synthetic"]),
                report=report,
                labels=tuple(meta["labels"]),
            )
    except Exception as exc:  # noqa: BLE001 - any problem with a cache file means: rebuild it
        log.warning("ignoring unreadable dataset cache %s: %s", path, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None
