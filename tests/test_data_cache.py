"""The decoded-array cache: reused without decoding, keyed by fingerprint, corrupt files rebuilt."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fer_core.data import cache, csv_source, demo, images, load_dataset, load_demo
from tests import samples as S


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder for this test alone (the session one is shared)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("FER_CACHE_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return S.layout_files(S.sample_images(per_class=2, seed=11), top="fer2013")


def _forbid(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError(f"{name} called: the cache was not used")

    monkeypatch.setattr(module, name, boom)


def _assert_same(a, b) -> None:
    assert list(a.splits) == list(b.splits)
    for name in a.splits:
        np.testing.assert_array_equal(a.splits[name].images, b.splits[name].images)
        np.testing.assert_array_equal(a.splits[name].labels, b.splits[name].labels)
        np.testing.assert_array_equal(a.splits[name].sources, b.splits[name].sources)
    assert a.fingerprint == b.fingerprint
    assert a.report.counts == b.report.counts


def test_second_zip_load_comes_from_cache(own_cache: Path, tmp_path: Path, files, monkeypatch) -> None:
    path = S.write_zip(tmp_path / "fer2013.zip", files)
    first = load_dataset(path)
    assert not first.report.from_cache
    assert len(list((own_cache / "datasets").glob("*.npz"))) == 1
    _forbid(monkeypatch, images, "decode_image")
    calls: list[tuple[int, int]] = []
    second = load_dataset(path, progress=lambda d, t: calls.append((d, t)))
    assert second.report.from_cache
    _assert_same(first, second)
    assert second.report.to_dict() | {"from_cache": False} == first.report.to_dict()
    assert calls == [(28, 28)]
    assert second.split("train").images.dtype == np.uint8 and second.split("train").labels.dtype == np.int64
    # a copy of the same zip under another name hits the same cache entry, with its own name/source
    copy = tmp_path / "renamed.zip"
    copy.write_bytes(path.read_bytes())
    third = load_dataset(copy)
    assert third.report.from_cache and third.name == "renamed.zip" and third.report.source == str(copy)


def test_folder_cache_and_fingerprint_change(own_cache: Path, tmp_path: Path, files, monkeypatch) -> None:
    root = S.write_tree(tmp_path / "tree", files)
    first = load_dataset(root)
    counted: list[int] = []
    real = images.decode_image
    monkeypatch.setattr(images, "decode_image", lambda data, *a: (counted.append(1), real(data, *a))[1])
    assert load_dataset(root).report.from_cache and counted == []
    extra = root / "fer2013" / "test" / "happy" / "new.png"
    extra.write_bytes(S.encode(np.full((48, 48), 9, np.uint8)))
    changed = load_dataset(root)
    assert not changed.report.from_cache and changed.fingerprint != first.fingerprint
    assert len(counted) == first.num_images + 1
    # touching a file (new mtime) also changes the fingerprint
    os.utime(extra, ns=(extra.stat().st_atime_ns, extra.stat().st_mtime_ns + 10**9))
    assert load_dataset(root).fingerprint != changed.fingerprint


def test_csv_and_demo_are_cached(own_cache: Path, tmp_path: Path, monkeypatch) -> None:
    path = S.write_csv(tmp_path / "fer2013.csv", S.sample_images(per_class=1, seed=2))
    a = load_dataset(path)
    small = load_demo(train_per_class=3, test_per_class=2)
    _forbid(monkeypatch, csv_source, "parse_pixels")
    _forbid(monkeypatch, demo, "render_face")
    _assert_same(a, load_dataset(path))
    again = load_demo(train_per_class=3, test_per_class=2)
    assert again.report.from_cache and again.synthetic
    _assert_same(small, again)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty", "other_fingerprint"])
def test_corrupt_cache_is_ignored_and_rebuilt(own_cache: Path, tmp_path: Path, files, damage: str) -> None:
    path = S.write_zip(tmp_path / "fer2013.zip", files)
    first = load_dataset(path)
    (cached,) = (own_cache / "datasets").glob("*.npz")
    data = cached.read_bytes()
    if damage == "garbage":
        cached.write_bytes(b"not an npz at all" * 100)
    elif damage == "truncate":
        cached.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        cached.write_bytes(b"")
    else:  # a valid cache file of another dataset put under this name
        other = load_demo(train_per_class=1, test_per_class=1, use_cache=False)
        cache.save(other, cached)
    rebuilt = load_dataset(path)
    assert not rebuilt.report.from_cache
    _assert_same(first, rebuilt)
    assert load_dataset(path).report.from_cache  # the rebuilt file is good again
    assert [p.name for p in (own_cache / "datasets").iterdir()] == [cached.name]  # no tmp files left


def test_use_cache_false_neither_reads_nor_writes(own_cache: Path, tmp_path: Path, files) -> None:
    path = S.write_zip(tmp_path / "fer2013.zip", files)
    ds = load_dataset(path, use_cache=False)
    assert not ds.report.from_cache
    assert not (own_cache / "datasets").exists()
    load_dataset(path)
    assert not load_dataset(path, use_cache=False).report.from_cache


def test_unwritable_cache_is_not_fatal(tmp_path: Path, files, monkeypatch, caplog) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("FER_CACHE_DIR", str(blocker / "cache"))  # cannot mkdir under a file
    path = S.write_zip(tmp_path / "fer2013.zip", files)
    ds = load_dataset(path)
    assert ds.num_images == 28 and not ds.report.from_cache
    assert "could not write dataset cache" in caplog.text


def test_cache_files_hold_no_pickles(own_cache: Path, tmp_path: Path, files) -> None:
    load_dataset(S.write_zip(tmp_path / "fer2013.zip", files))
    (cached,) = (own_cache / "datasets").glob("*.npz")
    with np.load(cached, allow_pickle=False) as z:  # would raise on object arrays
        assert all(z[k].dtype != object for k in z.files)
