"""Decoded-dataset cache: one uncompressed .npz of uint8 arrays + the report JSON per source fingerprint.

Files live under `fer_core.paths.cache_dir()/datasets/`, are written atomically (tmp file in the same
folder + os.replace) and read with allow_pickle=False. A cache file that cannot be read or does not
match is ignored (and removed), never fatal; a cache that cannot be written only logs a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fer_core.data.types import IMAGE_SIZE, Dataset, LoadReport, Split
from fer_core.paths import cache_dir

log = logging.getLogger(__name__)

# Bump when decoding or the report changes, so old cache files are not reused.
CACHE_VERSION = 1

# Disk the cache may use (a public app decodes whatever strangers upload). Beyond either limit the
# least recently used files go first; the one just written or read is always kept.
MAX_CACHED_DATASETS = 8
MAX_CACHE_BYTES = 4 << 30
# Uploaded dataset files (the Dataset explorer saves them under cache_dir()/uploads/).
MAX_KEPT_UPLOADS = 5
MAX_UPLOADS_BYTES = 2 << 30
PARTIAL_GRACE_S = 3600  # a *.part / *.tmp file younger than this may still be being written


def prune(folder: Path, max_files: int, max_bytes: int, keep: Iterable[Path] = ()) -> list[Path]:
    """Delete the least recently used files of `folder` (by modification time) so that at most
    `max_files` files and `max_bytes` bytes remain; files in `keep` stay (and count). Files still
    being written (*.part, *.tmp younger than PARTIAL_GRACE_S) are left alone. Returns what was removed."""
    keep_set = {Path(k).resolve() for k in keep}
    entries = []
    now = time.time()
    with contextlib.suppress(OSError):
        for p in Path(folder).iterdir():
            with contextlib.suppress(OSError):
                st = p.stat()
                if not p.is_file():
                    continue
                partial = p.suffix in (".part", ".tmp")
                if partial and now - st.st_mtime < PARTIAL_GRACE_S:
                    continue
                entries.append((p.resolve() in keep_set and not partial, st.st_mtime, st.st_size, p, partial))
    entries.sort(key=lambda e: (e[0], e[1]), reverse=True)  # kept first, then newest first
    removed, files, total = [], 0, 0
    for kept, _, size, p, partial in entries:
        if kept or (not partial and files < max_files and total + size <= max_bytes):
            files, total = files + 1, total + size
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    if removed:
        log.info("pruned %d file(s) from %s", len(removed), folder)
    return removed


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
        prune(path.parent, MAX_CACHED_DATASETS, MAX_CACHE_BYTES, keep=[path])
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
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used: pruned last
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
