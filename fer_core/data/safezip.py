"""Safe zip handling: refuse archives that escape their folder, are too big, or look like zip bombs.

Members are read in memory (never extracted). `check_zip` applies the limits to every member's
declared sizes before anything is read; `read_member` additionally caps what it actually reads,
so a member whose header lies about its size cannot blow up memory either.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fer_core.errors import DatasetError, UnsafeArchiveError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class ZipLimits:
    """Safety limits for one archive. Lower them in tests to keep bombs tiny."""

    max_members: int = 200_000
    max_total_size: int = 2 * GiB  # sum of uncompressed sizes
    max_member_size: int = 512 * MiB  # one member, uncompressed (a Kaggle CSV is ~300 MB)
    max_ratio: float = 100.0  # uncompressed / compressed ...
    ratio_min_size: int = 1 * MiB  # ... checked on members bigger than this

    def describe(self) -> str:
        return (f"at most {self.max_members:,} members, {_size(self.max_total_size)} in total, "
                f"{_size(self.max_member_size)} per member, compression ratio {self.max_ratio:g}x")


DEFAULT_LIMITS = ZipLimits()

_DRIVE = re.compile(r"^[A-Za-z]:")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def normalize_member_name(name: str) -> str:
    """A member name as a relative POSIX path, or UnsafeArchiveError if it could escape the target."""
    if not name:
        raise UnsafeArchiveError("unsafe zip: a member has an empty name")
    if "\x00" in name:
        raise UnsafeArchiveError(f"unsafe zip: member name {name!r} contains a NUL byte")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise UnsafeArchiveError(f"unsafe zip: member {name!r} has an absolute path; members must be relative paths")
    if any(part == ".." for part in posix.split("/")):
        raise UnsafeArchiveError(f"unsafe zip: member {name!r} points outside the archive folder ('..')")
    return posix


def check_zip(zf: zipfile.ZipFile, limits: ZipLimits | None = None) -> None:
    """Raise UnsafeArchiveError if the archive breaks a path or size rule; return None if it is safe to read."""
    limits = limits or DEFAULT_LIMITS
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeArchiveError(
            f"unsafe zip: {len(infos):,} members, more than the limit of {limits.max_members:,}"
        )
    total = 0
    for info in infos:
        normalize_member_name(info.filename)
        if info.is_dir():
            continue
        if info.file_size > limits.max_member_size:
            raise UnsafeArchiveError(
                f"unsafe zip: member {info.filename!r} would be {_size(info.file_size)} uncompressed, "
                f"more than the per-member limit of {_size(limits.max_member_size)}"
            )
        if info.file_size > limits.ratio_min_size:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise UnsafeArchiveError(
                    f"unsafe zip (zip bomb?): member {info.filename!r} expands {ratio:,.0f}x "
                    f"({_size(info.compress_size)} -> {_size(info.file_size)}), limit {limits.max_ratio:g}x"
                )
        total += info.file_size
        if total > limits.max_total_size:
            raise UnsafeArchiveError(
                f"unsafe zip: more than {_size(limits.max_total_size)} uncompressed in total (limit)"
            )


def open_zip(path: str | Path, limits: ZipLimits | None = None) -> zipfile.ZipFile:
    """Open and check a zip file; DatasetError if it is not a zip, UnsafeArchiveError if it breaks a limit."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise DatasetError(
            f"{path.name} is not a readable zip file ({exc}). Expected the Kaggle FER-2013 zip: "
            "train/ and test/ folders, each with one folder per emotion (angry, disgust, fear, happy, "
            "neutral, sad, surprise) holding 48x48 images."
        ) from None
    try:
        check_zip(zf, limits)
    except BaseException:
        zf.close()
        raise
    return zf


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits | None = None) -> bytes:
    """Read one member in memory, never more than its declared size or the per-member limit.

    Raises UnsafeArchiveError if the member is over the limit, zipfile/zlib errors on corrupt data.
    """
    limits = limits or DEFAULT_LIMITS
    cap = min(info.file_size, limits.max_member_size)
    if info.file_size > limits.max_member_size:
        raise UnsafeArchiveError(
            f"unsafe zip: member {info.filename!r} is over the per-member limit of {_size(limits.max_member_size)}"
        )
    with zf.open(info) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise UnsafeArchiveError(f"unsafe zip: member {info.filename!r} holds more data than its header declares")
    return data
