"""Unsafe archives: paths escaping the folder, too many members, too big, high-ratio (bomb) members."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from fer_core.data import ZipLimits, check_zip, load_dataset
from tests import samples as S
from fer_core.data.safezip import normalize_member_name, read_member
from fer_core.errors import DatasetError, UnsafeArchiveError


@pytest.fixture(scope="module")
def good_files() -> dict[str, bytes]:
    return S.layout_files(S.sample_images(per_class=1, seed=3))


def _zip_with(path: Path, good: dict[str, bytes], extra: dict[str, bytes]) -> Path:
    return S.write_zip(path, {**good, **extra})


@pytest.mark.parametrize(
    "member",
    ["../evil.jpg", "train/happy/../../../evil.jpg", "/etc/evil.jpg", "C:/evil.jpg", "c:evil.jpg",
     "train\\..\\..\\evil.jpg", "\\\\server\\share\\evil.jpg"],
)
def test_zip_slip_members_are_refused(tmp_path: Path, good_files, member: str) -> None:
    path = _zip_with(tmp_path / "slip.zip", good_files, {member: b"\xff\xd8\xff"})
    with pytest.raises(UnsafeArchiveError, match="unsafe zip"):
        load_dataset(path)
    with zipfile.ZipFile(path) as zf, pytest.raises(UnsafeArchiveError):
        check_zip(zf)
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_unsafe_archive_error_is_a_dataset_error() -> None:
    assert issubclass(UnsafeArchiveError, DatasetError)


def test_normalize_member_name_accepts_normal_paths() -> None:
    assert normalize_member_name("fer2013/train/happy/a.jpg") == "fer2013/train/happy/a.jpg"
    assert normalize_member_name("fer2013\\train\\happy\\a.jpg") == "fer2013/train/happy/a.jpg"
    assert normalize_member_name("train/happy/a..b.jpg") == "train/happy/a..b.jpg"


def test_high_ratio_member_is_a_bomb(tmp_path: Path, good_files) -> None:
    path = _zip_with(tmp_path / "bomb.zip", good_files, {"train/happy/bomb.png": bytes(200_000)})
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("train/happy/bomb.png")
        assert info.file_size / info.compress_size > 100
        check_zip(zf)  # 200 kB is under the default 1 MB threshold: fine
    limits = ZipLimits(max_ratio=50, ratio_min_size=100_000)
    with pytest.raises(UnsafeArchiveError, match="zip bomb") as err:
        load_dataset(path, limits=limits)
    assert "train/happy/bomb.png" in str(err.value)


def test_too_many_members(tmp_path: Path, good_files) -> None:
    path = S.write_zip(tmp_path / "many.zip", good_files)
    with pytest.raises(UnsafeArchiveError, match="more than the limit of 10"):
        load_dataset(path, limits=ZipLimits(max_members=10))
    assert len(load_dataset(path, limits=ZipLimits(max_members=1000)).split("train")) == 7


def test_total_size_limit(tmp_path: Path, good_files) -> None:
    path = S.write_zip(tmp_path / "big.zip", good_files)
    total = sum(len(b) for b in good_files.values())
    with pytest.raises(UnsafeArchiveError, match="in total"):
        load_dataset(path, limits=ZipLimits(max_total_size=total // 2))


def test_member_size_limit(tmp_path: Path, good_files) -> None:
    path = _zip_with(tmp_path / "member.zip", good_files, {"train/happy/huge.png": bytes(5000)})
    with pytest.raises(UnsafeArchiveError, match="per-member limit"):
        load_dataset(path, limits=ZipLimits(max_member_size=4000))
    with zipfile.ZipFile(path) as zf, pytest.raises(UnsafeArchiveError):
        read_member(zf, zf.getinfo("train/happy/huge.png"), ZipLimits(max_member_size=4000))


def test_cached_zip_is_still_checked_with_lower_limits(tmp_path: Path, good_files) -> None:
    path = S.write_zip(tmp_path / "cached.zip", good_files)
    assert load_dataset(path).num_images == 14  # decoded and cached under the default limits
    with pytest.raises(UnsafeArchiveError):
        load_dataset(path, limits=ZipLimits(max_members=5))


def test_header_lying_about_its_size_is_not_read_past(tmp_path: Path) -> None:
    # A stored member whose header claims 10 bytes while 1000 follow: we never return more than declared.
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("train/happy/a.png", bytes(1000))
    raw = bytearray(path.read_bytes())
    # patch the uncompressed size in the central directory entry
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24: cd + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("train/happy/a.png")
        assert info.file_size == 10
        try:
            data = read_member(zf, info)
        except (zipfile.BadZipFile, UnsafeArchiveError):
            return  # refusing it is fine too
        assert len(data) <= 10


def test_encrypted_or_damaged_member_is_skipped(tmp_path: Path, good_files) -> None:
    path = _zip_with(tmp_path / "crc.zip", good_files, {"train/happy/zz.png": S.encode(np.zeros((48, 48), np.uint8))})
    raw = bytearray(path.read_bytes())
    # flip bytes inside the last member's compressed data so its CRC check fails
    local = raw.rfind(b"PK\x03\x04", 0, raw.rfind(b"PK\x01\x02"))
    name_len = int.from_bytes(raw[local + 26: local + 28], "little")
    extra_len = int.from_bytes(raw[local + 28: local + 30], "little")
    start = local + 30 + name_len + extra_len
    for k in range(start + 2, start + 12):
        raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))
    ds = load_dataset(path)
    assert ds.report.skipped_by_reason == {"corrupt zip member": 1}
    assert ds.num_images == 14
