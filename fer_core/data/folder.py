"""Read the Kaggle image-folder layout (train/<class>/*.jpg, test/<class>/*.jpg) from a zip or a directory.

Split and class folder names may use any letter case, and the tree may sit under one or more extra
top folders (e.g. fer2013/train/Happy/x.jpg). Class names go through `canonical_label`, so labels are
FER_LABELS indices whatever the folder order. `__MACOSX/` and dotfiles are ignored silently.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from fer_core.data import images
from fer_core.data.safezip import DEFAULT_LIMITS, ZipLimits, normalize_member_name, read_member
from fer_core.data.types import IMAGE_SIZE, SPLIT_ORDER, LoadReport, Split
from fer_core.errors import DatasetError, UnsafeArchiveError
from fer_core.labels import label_index

Progress = Callable[[int, int], None]

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "publictest": "test",
    "privatetest": "private_test",
    "private_test": "private_test",
}
IGNORED_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini"})
MAX_FILE_SIZE = 64 * 1024 * 1024  # one image file in a directory tree
MAX_FOLDER_FILES = 200_000  # files walked in a directory tree (FER-2013 has ~36k)

LAYOUT_HELP = (
    "Expected the Kaggle FER-2013 image-folder layout: train/ and test/ folders (optionally inside one "
    "top folder), each holding one folder per emotion (angry, disgust, fear, happy, neutral, sad, "
    "surprise) with the 48x48 images, e.g. train/happy/img001.jpg; or the Kaggle CSV (emotion,pixels,Usage)."
)


def is_ignored(relpath: str) -> bool:
    """True for macOS resource forks, dotfiles/dot-folders and OS litter (ignored, not counted)."""
    return any(p.startswith(".") or p.lower() in IGNORED_NAMES for p in relpath.split("/") if p)


def find_root(paths: Iterable[str]) -> tuple[str, ...] | None:
    """The folder prefix holding the split folders (() for the top level), or None if there is none."""
    prefixes: Counter[tuple[str, ...]] = Counter()
    for path in paths:
        parts = tuple(p for p in path.split("/") if p)
        if len(parts) >= 3 and parts[-3].lower() in SPLIT_ALIASES:
            prefixes[parts[:-3]] += 1
    if not prefixes:
        return None
    # The prefix with most images; on a tie the shallowest one.
    return min(prefixes, key=lambda p: (-prefixes[p], len(p), p))


def plan(paths: Iterable[str], report: LoadReport) -> list[tuple[str, str, int]]:
    """(path, split, label) for every usable-looking file, sorted by split then path.

    Files outside the layout and unknown class folders are counted as skipped in `report`.
    Raises DatasetError if no train/test class folders exist at all.
    """
    paths = [p for p in paths if not is_ignored(p)]
    root = find_root(paths)
    if root is None:
        raise DatasetError(f"no train/test class folders found. {LAYOUT_HELP}")
    depth = len(root)
    out: list[tuple[str, str, int]] = []
    for path in paths:
        parts = tuple(p for p in path.split("/") if p)
        if parts[:depth] != root or len(parts) != depth + 3:
            report.add_skipped(path, "not in a train/test class folder")
            continue
        split_dir, class_dir = parts[depth], parts[depth + 1]
        split = SPLIT_ALIASES.get(split_dir.lower())
        if split is None:
            report.add_skipped(path, f"unknown split folder '{split_dir}'")
            continue
        label = label_index(class_dir)
        if label is None:
            report.add_skipped(path, f"unknown class folder '{class_dir}'")
            continue
        out.append((path, split, label))
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    out.sort(key=lambda t: (order.get(t[1], len(order)), t[0]))
    return out


def decode_entries(
    planned: list[tuple[str, str, int]],
    read: Callable[[str], bytes],
    report: LoadReport,
    progress: Progress | None = None,
) -> dict[str, Split]:
    """Read and decode every planned file; bad ones are skipped and counted. Returns non-empty splits.

    `read(path)` returns the file's bytes, or raises `_Skip(reason)` for a file it cannot read.
    """
    total = len(planned)
    imgs = np.empty((total, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    kept_split: list[str] = []
    kept_label: list[int] = []
    kept_source: list[str] = []
    step = max(1, total // 200)
    if progress:
        progress(0, total)
    for i, (path, split, label) in enumerate(planned):
        try:
            data = read(path)
            img, resized = images.decode_image(data)
        except _Skip as exc:
            report.add_skipped(path, exc.reason)
        except images.BadImage as exc:
            report.add_skipped(path, exc.reason)
        else:
            imgs[len(kept_label)] = img
            kept_split.append(split)
            kept_label.append(label)
            kept_source.append(path)
            report.resized += int(resized)
        if progress and ((i + 1) % step == 0 or i + 1 == total):
            progress(i + 1, total)
    n = len(kept_label)
    split_arr = np.array(kept_split, dtype=object)
    labels = np.array(kept_label, dtype=np.int64)
    sources = np.array(kept_source, dtype=str)
    splits: dict[str, Split] = {}
    for name in dict.fromkeys(kept_split):
        idx = np.flatnonzero(split_arr == name)
        splits[name] = Split(images=imgs[:n][idx], labels=labels[idx], sources=sources[idx])
    return splits


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- zip


def zip_file_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Normalized name -> ZipInfo for every file member that is not ignored (names must be checked first)."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = normalize_member_name(info.filename)
        if not is_ignored(name):
            members[name] = info
    return members


def read_zip_tree(
    zf: zipfile.ZipFile,
    report: LoadReport,
    progress: Progress | None = None,
    limits: ZipLimits | None = None,
    members: dict[str, zipfile.ZipInfo] | None = None,
) -> dict[str, Split]:
    """Decode the image-folder layout straight from a checked zip (nothing is extracted)."""
    limits = limits or DEFAULT_LIMITS
    members = members if members is not None else zip_file_members(zf)
    planned = plan(members, report)

    def read(name: str) -> bytes:
        info = members[name]
        if info.flag_bits & 0x1:
            raise _Skip("encrypted member")
        try:
            return read_member(zf, info, limits)
        except UnsafeArchiveError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise _Skip("corrupt zip member") from exc
        except (NotImplementedError, RuntimeError) as exc:  # unsupported compression / password
            raise _Skip("unsupported zip member") from exc

    return decode_entries(planned, read, report, progress)


# --------------------------------------------------------------------------- directory


def walk_files(root: Path) -> list[tuple[str, os.stat_result]]:
    """(relative POSIX path, stat) of every non-ignored file under root, sorted by path.

    DatasetError if there are more than MAX_FOLDER_FILES (someone pointed at their home folder).
    """
    out: list[tuple[str, os.stat_result]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d.lower() not in IGNORED_NAMES)
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for fname in filenames:
            rel = fname if rel_dir == "." else f"{rel_dir}/{fname}"
            if is_ignored(rel):
                continue
            try:
                st = os.stat(os.path.join(dirpath, fname))
            except OSError:
                continue
            out.append((rel, st))
            if len(out) > MAX_FOLDER_FILES:
                raise DatasetError(
                    f"{root} holds more than {MAX_FOLDER_FILES:,} files: that is not a FER-2013 folder. {LAYOUT_HELP}"
                )
    out.sort(key=lambda t: t[0])
    return out


def directory_fingerprint(files: list[tuple[str, os.stat_result]]) -> str:
    """Hash of sorted relative paths + sizes + modification times (content is not read)."""
    h = hashlib.blake2b(digest_size=16)
    for rel, st in files:
        h.update(f"{rel}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def read_directory_tree(
    root: Path,
    report: LoadReport,
    progress: Progress | None = None,
    files: list[tuple[str, os.stat_result]] | None = None,
) -> dict[str, Split]:
    """Decode the image-folder layout from an extracted directory."""
    files = files if files is not None else walk_files(root)
    sizes = {rel: st.st_size for rel, st in files}
    planned = plan(sizes, report)

    def read(rel: str) -> bytes:
        if sizes[rel] > MAX_FILE_SIZE:
            raise _Skip("file too large")
        try:
            with open(root / rel, "rb") as fh:
                return fh.read(MAX_FILE_SIZE + 1)
        except OSError as exc:
            raise _Skip("unreadable file") from exc

    return decode_entries(planned, read, report, progress)


__all__ = [
    "LAYOUT_HELP",
    "SPLIT_ALIASES",
    "decode_entries",
    "directory_fingerprint",
    "find_root",
    "is_ignored",
    "plan",
    "read_directory_tree",
    "read_zip_tree",
    "walk_files",
    "zip_file_members",
]
