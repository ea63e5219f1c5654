"""The Kaggle CSV (emotion,pixels,Usage): splits, labels, malformed rows, wrong columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_core.data import load_dataset
from tests import samples as S
from fer_core.errors import DatasetError
from fer_core.labels import FER_LABELS


@pytest.fixture(scope="module")
def tiny() -> list[S.SampleImage]:
    return S.sample_images(per_class=2, splits=("train", "test", "private_test"), seed=7)


def _pixels(img: np.ndarray) -> str:
    return " ".join(map(str, img.ravel()))


def test_csv_splits_labels_and_sources(tmp_path: Path, tiny) -> None:
    ds = load_dataset(S.write_csv(tmp_path / "fer2013.csv", tiny))
    assert ds.report.format == "csv" and ds.name == "fer2013.csv"
    assert list(ds.splits) == ["train", "test", "private_test"]
    for split in ds.splits:
        rows = [s for s in tiny if s.split == split]
        sp = ds.split(split)
        np.testing.assert_array_equal(sp.images, np.stack([s.image for s in rows]))
        np.testing.assert_array_equal(sp.labels, [s.label for s in rows])
    assert ds.split("train").sources[0] == "csv row 1"
    assert ds.split("test").sources[0] == "csv row 15"
    assert ds.report.skipped_by_reason == {}
    assert ds.report.counts["private_test"] == {name: 2 for name in FER_LABELS}


def test_zip_and_csv_of_the_same_images_give_identical_labels(tmp_path: Path, tiny) -> None:
    kept = [s for s in tiny if s.split != "private_test"]
    files = S.layout_files(kept, top="FER2013", class_dirs={"neutral": "Neutral", "sad": "Sad", "surprise": "SURPRISE"})
    from_zip = load_dataset(S.write_zip(tmp_path / "fer2013.zip", files))
    from_csv = load_dataset(S.write_csv(tmp_path / "fer2013.csv", kept))
    for split in ("train", "test"):
        z = {img.tobytes(): int(lab) for img, lab in zip(from_zip.split(split).images, from_zip.split(split).labels)}
        c = {img.tobytes(): int(lab) for img, lab in zip(from_csv.split(split).images, from_csv.split(split).labels)}
        assert z == c and len(z) == 14
        # folder order (alphabetical: ... neutral, sad, surprise) does not leak into the labels
        assert sorted(set(z.values())) == list(range(7))
    for name in ("Neutral", "Sad", "SURPRISE"):
        idx = [i for i, src in enumerate(from_zip.split("train").sources) if f"/{name}/" in src]
        assert set(from_zip.split("train").labels[idx]) == {FER_LABELS.index(name.lower())}


def test_malformed_rows_are_skipped_and_counted(tmp_path: Path, tiny) -> None:
    good = tiny[0].image
    p = _pixels(good)
    head = " ".join(p.split()[:-1])  # all pixels but the last
    rows = [
        f"3,{p},Training",  # row 1: good
        f"3,{head},Training",  # 2: 2303 pixels
        f"3,{p} 17,Training",  # 3: 2305 pixels
        f"3,{p.replace(' 1', ' x', 1)},Training",  # 4: non-numeric
        f"3,{head} 1.5,Training",  # 5: non-numeric (decimal)
        f"3,{head} 256,Training",  # 6: out of 0-255
        f"7,{p},Training",  # 7: label out of range
        f"-1,{p},PublicTest",  # 8: label out of range
        f"happy,{p},PublicTest",  # 9: invalid label
        f"2,{p},Validation",  # 10: unknown usage
        f"2,{p}",  # 11: missing field
        f"2,{' '.join(['1'] * 40000)},Training",  # 12: huge row (> 64 KiB)
        f"5,{p},PrivateTest",  # 13: good
        "",  # blank line: not a row
        f"4,,Training",  # 14: empty pixels
    ]
    path = tmp_path / "broken.csv"
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    ds = load_dataset(path)
    assert ds.report.skipped_by_reason == {
        "wrong pixel count": 3,
        "non-numeric pixels": 2,
        "pixel value out of range": 1,
        "label out of range": 2,
        "invalid label": 1,
        "unknown Usage 'Validation'": 1,
        "wrong number of fields": 1,
        "row too long": 1,
    }
    items = {d["item"]: d["reason"] for d in ds.report.skipped}
    assert items["csv row 12"] == "row too long" and items["csv row 14"] == "wrong pixel count"
    assert list(ds.splits) == ["train", "private_test"]
    np.testing.assert_array_equal(ds.split("train").images[0], good)
    assert ds.split("private_test").labels.tolist() == [5]
    assert ds.split("private_test").sources.tolist() == ["csv row 13"]


@pytest.mark.parametrize("header", ["label,pixels,Usage", "emotion,image,Usage", "pixels", "a;b;c", "\x00\x01"])
def test_wrong_columns_is_a_dataset_error(tmp_path: Path, header: str) -> None:
    path = tmp_path / "other.csv"
    path.write_text(header + "\n1,2,3\n")
    with pytest.raises(DatasetError, match="emotion.*pixels|pixels.*emotion|header"):
        load_dataset(path)


def test_header_only_csv(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("emotion,pixels,Usage\n")
    with pytest.raises(DatasetError, match="no usable images"):
        load_dataset(path)
    (tmp_path / "nothing.csv").write_bytes(b"")
    with pytest.raises(DatasetError, match="header"):
        load_dataset(tmp_path / "nothing.csv")


def test_csv_variants_bom_crlf_quotes_column_order_no_usage(tmp_path: Path, tiny) -> None:
    a, b = tiny[0], tiny[3]
    text = ("\ufeffpixels,Emotion\r\n"
            f"\"{_pixels(a.image)}\",{a.label}\r\n"
            f"{_pixels(b.image)},\"{b.label}\"\r\n")
    path = tmp_path / "train.csv"
    path.write_text(text, encoding="utf-8", newline="")
    ds = load_dataset(path)
    assert list(ds.splits) == ["train"]  # no Usage column: everything is training data
    assert ds.split("train").labels.tolist() == [a.label, b.label]
    np.testing.assert_array_equal(ds.split("train").images[1], b.image)


def test_csv_without_csv_suffix_is_sniffed(tmp_path: Path, tiny) -> None:
    path = tmp_path / "fer2013.data"
    path.write_text(S.csv_text(tiny[:3]))
    assert load_dataset(path).report.format == "csv"


def test_csv_parsing_keeps_every_pixel_and_reports_progress(tmp_path: Path) -> None:
    # 3,000 rows (a twelfth of FER-2013); its speed is benchmarks/data_and_training.py's (not a timed test).
    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, (3000, 2304))
    lines = ["emotion,pixels,Usage"] + [f"{i % 7},{' '.join(map(str, r))},Training" for i, r in enumerate(pix)]
    path = tmp_path / "speed.csv"
    path.write_text("\n".join(lines) + "\n")
    calls: list[tuple[int, int]] = []
    ds = load_dataset(path, use_cache=False, progress=lambda d, t: calls.append((d, t)))
    assert len(ds.split("train")) == 3000
    np.testing.assert_array_equal(ds.split("train").images.reshape(3000, -1), pix)
    assert calls[-1][0] == calls[-1][1] == path.stat().st_size
