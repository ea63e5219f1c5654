"""The Kaggle image-folder layout, from a zip and from an extracted folder, with its bad members."""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.data import load_dataset
from tests import samples as S
from fer_core.errors import DatasetError
from fer_core.labels import FER_LABELS

# Folder names in assorted letter case (and two common aliases), under an extra top folder.
MIXED = {"angry": "Angry", "disgust": "DISGUST", "fear": "scared", "happy": "Happy", "sad": "SAD",
         "surprise": "Surprise", "neutral": "NeUtRaL"}
SPLITS = {"train": "Train", "test": "test"}


@pytest.fixture(scope="module")
def tiny() -> list[S.SampleImage]:
    return S.sample_images(per_class=2, seed=1)


@pytest.fixture
def tiny_files(tiny: list[S.SampleImage]) -> dict[str, bytes]:
    return S.layout_files(tiny, top="fer2013", split_dirs=SPLITS, class_dirs=MIXED)


def _expected(tiny: list[S.SampleImage], split: str) -> dict[bytes, int]:
    return {s.image.tobytes(): s.label for s in tiny if s.split == split}


def _got(ds, split: str) -> dict[bytes, int]:
    sp = ds.split(split)
    return {img.tobytes(): int(lab) for img, lab in zip(sp.images, sp.labels)}


def test_zip_mixed_case_top_folder_labels(tmp_path: Path, tiny, tiny_files) -> None:
    ds = load_dataset(S.write_zip(tmp_path / "fer_data_set.zip", tiny_files))
    assert ds.report.format == "zip" and ds.name == "fer_data_set.zip" and not ds.synthetic
    assert set(ds.splits) == {"train", "test"}
    assert len(ds.split("train")) == 14 and len(ds.split("test")) == 14
    assert ds.report.skipped_by_reason == {} and ds.report.resized == 0
    # every image comes back with the label of the folder it was written to (FER_LABELS indices)
    assert _got(ds, "train") == _expected(tiny, "train")
    assert _got(ds, "test") == _expected(tiny, "test")
    train = ds.split("train")
    for folder, index in (("NeUtRaL", 6), ("SAD", 4), ("Surprise", 5), ("Angry", 0), ("scared", 2)):
        picked = [lab for src, lab in zip(train.sources, train.labels) if f"/{folder}/" in src]
        assert picked and set(picked) == {index}, folder
    assert all(src.startswith("fer2013/Train/") for src in train.sources)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert ds.report.counts["train"] == {name: 2 for name in FER_LABELS}


def test_extracted_folder_equals_zip(tmp_path: Path, tiny_files) -> None:
    from_zip = load_dataset(S.write_zip(tmp_path / "fer2013.zip", tiny_files))
    root = S.write_tree(tmp_path / "extracted", tiny_files)
    for source in (root, root / "fer2013"):  # the folder holding the top folder, or the top folder itself
        ds = load_dataset(source)
        assert ds.report.format == "folder"
        for split in ("train", "test"):
            np.testing.assert_array_equal(ds.split(split).images, from_zip.split(split).images)
            np.testing.assert_array_equal(ds.split(split).labels, from_zip.split(split).labels)
    assert load_dataset(str(root)).split("test").sources[0].startswith("fer2013/test/")


def test_top_level_layout_without_extra_folder(tmp_path: Path, tiny) -> None:
    files = S.layout_files(tiny)  # train/angry/..., test/angry/...
    ds = load_dataset(S.write_zip(tmp_path / "plain.zip", files))
    assert _got(ds, "train") == _expected(tiny, "train")


def test_macosx_and_dotfiles_are_ignored_silently(tmp_path: Path, tiny_files) -> None:
    files = dict(tiny_files)
    files["__MACOSX/fer2013/Train/Happy/._img00001.png"] = b"\x00\x05\x16\x07 apple double"
    files["fer2013/Train/Happy/.DS_Store"] = b"\x00\x00\x00\x01Bud1"
    files["fer2013/.hidden/train/happy/x.png"] = b"junk"
    files["fer2013/test/sad/Thumbs.db"] = b"junk"
    ds = load_dataset(S.write_zip(tmp_path / "mac.zip", files))
    assert ds.report.skipped_by_reason == {}
    assert ds.report.skipped == []
    assert len(ds.split("train")) == 14


def test_bad_members_are_skipped_and_counted(tmp_path: Path, tiny_files) -> None:
    files = dict(tiny_files)
    noise = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    good_jpg = S.encode(noise, ".jpg")  # textured: cutting it in half cuts into the pixel data
    good_png = S.encode(noise, ".png")
    files["fer2013/Train/Happy/corrupt.jpg"] = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3
    files["fer2013/Train/Happy/truncated.jpg"] = good_jpg[: len(good_jpg) // 2]
    files["fer2013/Train/Happy/truncated.png"] = good_png[: len(good_png) // 2]
    files["fer2013/Train/Sad/notes.jpg"] = b"this is a text file renamed .jpg\n"
    files["fer2013/Train/Sad/empty.png"] = b""
    files["fer2013/Train/contempt/a.png"] = good_png
    files["fer2013/Train/contempt/b.png"] = good_png
    files["fer2013/README.txt"] = b"FER-2013"
    files["fer2013/validation/happy/c.png"] = good_png
    ds = load_dataset(S.write_zip(tmp_path / "broken.zip", files))
    by_reason = dict(ds.report.skipped_by_reason)
    assert by_reason.pop("corrupt image") == 1
    assert by_reason.pop("truncated image") == 2
    assert by_reason.pop("not an image") == 1
    assert by_reason.pop("empty file") == 1
    assert by_reason.pop("unknown class folder 'contempt'") == 2
    assert by_reason.pop("not in a train/test class folder") == 1
    assert by_reason.pop("unknown split folder 'validation'") == 1
    assert by_reason == {}
    assert ds.report.total_skipped == 9 and len(ds.report.skipped) == 9
    items = {d["item"]: d["reason"] for d in ds.report.skipped}
    assert items["fer2013/Train/Sad/notes.jpg"] == "not an image"
    # the good images are all there, untouched
    assert len(ds.split("train")) == 14 and len(ds.split("test")) == 14


def test_same_bad_members_in_a_folder(tmp_path: Path, tiny_files) -> None:
    files = dict(tiny_files)
    files["fer2013/Train/Sad/notes.jpg"] = b"text"
    files["fer2013/Train/Foo/x.png"] = S.encode(np.zeros((48, 48), np.uint8))
    ds = load_dataset(S.write_tree(tmp_path / "tree", files))
    assert ds.report.skipped_by_reason == {"not an image": 1, "unknown class folder 'Foo'": 1}


def test_other_sizes_resized_and_colour_converted(tmp_path: Path, tiny_files) -> None:
    files = dict(tiny_files)
    colour = np.zeros((96, 96, 3), np.uint8)
    colour[..., 1] = 200
    files["fer2013/test/happy/colour_big.png"] = S.encode(colour)
    files["fer2013/test/happy/small.jpg"] = S.encode(np.full((30, 40), 50, np.uint8), ".jpg")
    ds = load_dataset(S.write_zip(tmp_path / "sizes.zip", files))
    assert ds.report.resized == 2 and ds.report.skipped_by_reason == {}
    test = ds.split("test")
    assert len(test) == 16
    idx = list(test.sources).index("fer2013/test/happy/colour_big.png")
    expected = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)[0, 0]
    assert abs(int(test.images[idx].mean()) - int(expected)) <= 1
    assert test.labels[idx] == FER_LABELS.index("happy")


def test_progress_reports_every_step_to_the_end(tmp_path: Path, tiny_files) -> None:
    calls: list[tuple[int, int]] = []
    load_dataset(S.write_zip(tmp_path / "p.zip", tiny_files), use_cache=False, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 28) and calls[-1] == (28, 28)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_zip_without_layout_says_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    S.write_zip(path, {"holiday/beach.jpg": S.encode(np.zeros((48, 48), np.uint8), ".jpg")})
    with pytest.raises(DatasetError, match="train/ and test/") as info:
        load_dataset(path)
    assert "holiday/" in str(info.value)


def test_folder_without_layout(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(S.encode(np.zeros((48, 48), np.uint8)))
    with pytest.raises(DatasetError, match="no train/test class folders"):
        load_dataset(tmp_path / "pics")


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.zip"
    path.write_text("this is not a zip")
    with pytest.raises(DatasetError, match="not a readable zip file") as info:
        load_dataset(path)
    assert "train/ and test/" in str(info.value)


def test_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.zip")
    with pytest.raises(DatasetError, match="no dataset source"):
        load_dataset("")
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    with pytest.raises(DatasetError, match="neither a zip nor a FER-2013 CSV"):
        load_dataset(odd)


def test_all_members_bad_is_an_error(tmp_path: Path) -> None:
    path = S.write_zip(tmp_path / "bad.zip", {"train/happy/a.jpg": b"text", "test/sad/b.jpg": b"more text"})
    with pytest.raises(DatasetError, match="no usable images") as info:
        load_dataset(path)
    assert "not an image: 2" in str(info.value)


def test_stored_zip_and_zip_holding_the_csv(tmp_path: Path, tiny) -> None:
    stored = S.write_zip(tmp_path / "stored.zip", S.layout_files(tiny), compression=zipfile.ZIP_STORED)
    assert _got(load_dataset(stored), "test") == _expected(tiny, "test")
    csv_zip = tmp_path / "kaggle_csv.zip"
    with zipfile.ZipFile(csv_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fer2013/fer2013.csv", S.csv_text(tiny))
        zf.writestr("fer2013/README", "x")
    ds = load_dataset(csv_zip)
    assert _got(ds, "train") == _expected(tiny, "train")
    assert ds.split("train").sources[0] == "csv row 1"


def test_folder_with_too_many_files_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_core.data import folder

    monkeypatch.setattr(folder, "MAX_FOLDER_FILES", 5)
    for i in range(8):
        (tmp_path / f"f{i}.txt").write_text("x")
    with pytest.raises(DatasetError, match="more than 5 files"):
        load_dataset(tmp_path)
