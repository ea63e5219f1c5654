"""What a corpus job reads: SRC arguments expanded into numbered items, frozen in the job's folder.

A SRC is a folder (read recursively, hidden files and folders left out), a glob (`shots/**/*.jpg`),
a zip (its photos and videos, under the data module's safe-zip limits), a list file (`.txt` or
`.lst`: one path a line; `.csv`: the column `path`, `file` or `source`, else the first; relative
paths are read from the list's folder), or a photo or video file. Photos and videos mix freely.

`freeze_inputs(srcs, path)` writes the items to `inputs.parquet` as they are found (never all in
memory): item number, source name (what the results call it), path, zip member, kind (photo,
video, or error with its reason: a missing path, an unreadable zip, a file that is neither).
The numbering is fixed for the job: `--resume` reads the same list even if the folder changed.
"""

from __future__ import annotations

import csv
import glob
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fer_core.data import DEFAULT_LIMITS, ZipLimits, check_zip
from fer_core.data.safezip import normalize_member_name
from fer_core.errors import FerError
from fer_core.inference.sources import IMAGE_SUFFIXES
from fer_core.inference.video_io import VIDEO_EXTENSIONS

VIDEO_SUFFIXES = frozenset(VIDEO_EXTENSIONS)
LIST_SUFFIXES = frozenset({".txt", ".lst", ".csv"})
INPUT_SCHEMA = pa.schema([("item", pa.int64()), ("source", pa.string()), ("path", pa.string()),
                          ("member", pa.string()), ("kind", pa.string()), ("error", pa.string())])
_BATCH = 10_000


@dataclass(frozen=True)
class Item:
    item: int
    source: str  # the name in the results
    path: str  # the file (or the zip) to read
    member: str | None = None  # inside the zip at `path`
    kind: str = "photo"  # photo | video | error
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"item": self.item, "source": self.source, "path": self.path, "member": self.member,
                "kind": self.kind, "error": self.error}


def kind_of(name: str) -> str | None:
    """"photo", "video" or None (not a file a corpus job reads) from a file name."""
    suffix = Path(name).suffix.lower()
    return "photo" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in Path(rel).parts)


def _walk(folder: Path) -> Iterator[tuple[str, str]]:
    """(name, path) of every photo and video under a folder, sorted, one directory at a time."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith(".") and kind_of(f):
                path = Path(root) / f
                yield (Path(folder.name) / path.relative_to(folder)).as_posix(), str(path)


def _zip_members(path: Path, limits: ZipLimits) -> Iterator[tuple[str, str, str | None, str | None]]:
    """(name, member, kind, error) for the photos and videos of a zip; one error entry if it cannot be used."""
    try:
        with zipfile.ZipFile(path) as zf:
            check_zip(zf, limits)
            members = sorted(normalize_member_name(i.filename) for i in zf.infolist()
                             if not i.is_dir() and not i.filename.startswith("__MACOSX/"))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        yield path.name, "", "error", f"not a readable zip file ({exc})"
        return
    except FerError as exc:
        yield path.name, "", "error", str(exc)
        return
    found = False
    for member in members:
        kind = kind_of(member)
        if kind and not _hidden(member):
            found = True
            yield f"{path.name}/{member}", member, kind, None
    if not found:
        yield path.name, "", "error", "the zip holds no photos or videos"


def _list_entries(path: Path) -> Iterator[str]:
    base = path.parent
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        if path.suffix.lower() == ".csv":
            reader = csv.reader(fh)
            header = next(reader, [])
            names = [h.strip().lower() for h in header]
            col = next((names.index(c) for c in ("path", "file", "source") if c in names), 0)
            if not any(c in names for c in ("path", "file", "source")) and header and kind_of(header[0]):
                yield str(base / header[0].strip())  # no header row: the first row is a path
            rows = (r[col].strip() for r in reader if len(r) > col)
        else:
            rows = (line.strip() for line in fh)
        for entry in rows:
            if entry and not entry.startswith("#"):
                yield entry if os.path.isabs(entry) else str(base / entry)


def _expand(src: str, limits: ZipLimits, depth: int = 0) -> Iterator[tuple[str, str, str | None, str, str | None]]:
    """(source name, path, member, kind, error) for one SRC argument."""
    path = Path(src)
    if any(ch in src for ch in "*?[") and not path.exists():
        matches = sorted(glob.iglob(src, recursive=True))
        files = [m for m in matches if os.path.isfile(m) and kind_of(m)]
        if not files:
            yield src, src, None, "error", "no photo or video matches this pattern"
        for m in files:
            yield m, m, None, kind_of(m) or "photo", None
        return
    if path.is_dir():
        found = False
        for name, p in _walk(path):
            found = True
            yield name, p, None, kind_of(p) or "photo", None
        if not found:
            yield src, src, None, "error", "no photos or videos in this folder"
        return
    if not path.is_file():
        yield src, src, None, "error", "no such file or folder"
        return
    suffix = path.suffix.lower()
    if suffix == ".zip":
        for name, member, kind, error in _zip_members(path, limits):
            yield name, src, member or None, kind or "error", error
    elif suffix in LIST_SUFFIXES and depth == 0:
        found = False
        try:
            for entry in _list_entries(path):
                found = True
                yield from _expand(entry, limits, depth + 1)
        except OSError as exc:
            yield src, src, None, "error", f"cannot read the list ({exc.strerror or exc})"
            return
        if not found:
            yield src, src, None, "error", "the list names no files"
    elif kind_of(src):
        yield src, src, None, kind_of(src) or "photo", None
    else:
        yield src, src, None, "error", "not a photo, video, zip, folder or list file"


def iter_items(srcs: Iterable[str], limits: ZipLimits | None = None) -> Iterator[Item]:
    """The items of SRC arguments, numbered from 0 in the order given."""
    limits = limits or DEFAULT_LIMITS
    n = 0
    for src in srcs:
        for source, path, member, kind, error in _expand(str(src), limits):
            yield Item(n, source, path, member, kind, error)
            n += 1


def freeze_inputs(srcs: Iterable[str], path: Path, limits: ZipLimits | None = None) -> dict[str, int]:
    """Write the items to `path` (Parquet, written batch by batch); counts per kind."""
    counts = {"files": 0, "photo": 0, "video": 0, "error": 0}
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, INPUT_SCHEMA) as writer:
        batch: list[dict[str, object]] = []
        for item in iter_items(srcs, limits):
            batch.append(item.as_dict())
            counts["files"] += 1
            counts[item.kind] += 1
            if len(batch) >= _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, INPUT_SCHEMA))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, INPUT_SCHEMA))
    os.replace(tmp, path)
    return counts


def read_items(path: Path, done: np.ndarray | None = None, batch_size: int = _BATCH) -> Iterator[Item]:
    """The frozen items back, in order, a batch at a time, leaving out those `done` marks."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            i = int(row["item"])
            if done is not None and i < len(done) and done[i]:
                continue
            yield Item(i, row["source"], row["path"], row["member"], row["kind"], row["error"])
