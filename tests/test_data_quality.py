"""Blank images and exact duplicates, within a split and across splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fer_core.data import load_dataset
from tests import samples as S
from fer_core.data.quality import blank_indices, find_duplicates
from fer_core.data import Split


def _split(imgs: list[np.ndarray]) -> Split:
    return Split(images=np.stack(imgs), labels=np.zeros(len(imgs), np.int64), sources=[f"s{i}" for i in range(len(imgs))])


def test_blank_indices() -> None:
    rng = np.random.default_rng(0)
    black = np.zeros((48, 48), np.uint8)
    grey = np.full((48, 48), 128, np.uint8)
    almost = grey.copy()
    almost[::7, ::5] = 131  # std ~1.2: still nothing to see
    speck = black.copy()
    speck[24, 24] = 255  # one bright pixel: std ~5.3, not blank
    face = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    imgs = np.stack([face, black, grey, almost, speck, face])
    assert blank_indices(imgs) == [1, 2, 3]
    assert blank_indices(imgs[:0]) == []


def test_duplicates_within_and_across_splits() -> None:
    rng = np.random.default_rng(1)
    a, b, c, d, e = (rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(5))
    splits = {
        "train": _split([a, b, a, c, a]),
        "test": _split([d, a, a, b, e]),
        "private_test": _split([e, c, d]),
    }
    within, across = find_duplicates(splits)
    assert within == {"train": [[0, 2, 4]], "test": [[1, 2]], "private_test": []}
    assert across == [
        {"split_a": "train", "index_a": 0, "split_b": "test", "index_b": 1},
        {"split_a": "train", "index_a": 0, "split_b": "test", "index_b": 2},
        {"split_a": "train", "index_a": 1, "split_b": "test", "index_b": 3},
        {"split_a": "train", "index_a": 3, "split_b": "private_test", "index_b": 1},
        {"split_a": "test", "index_a": 4, "split_b": "private_test", "index_b": 0},
        {"split_a": "test", "index_a": 0, "split_b": "private_test", "index_b": 2},
    ]
    for p in across:  # every reported pair really is pixel-identical
        assert np.array_equal(splits[p["split_a"]].images[p["index_a"]], splits[p["split_b"]].images[p["index_b"]])


def test_one_pixel_difference_is_not_a_duplicate() -> None:
    a = np.random.default_rng(2).integers(0, 255, (48, 48), dtype=np.uint8)
    b = a.copy()
    b[10, 10] += 1
    within, across = find_duplicates({"train": _split([a, b]), "test": _split([b])})
    assert within["train"] == [] and across == [
        {"split_a": "train", "index_a": 1, "split_b": "test", "index_b": 0}
    ]


def test_report_of_a_loaded_zip(tmp_path: Path) -> None:
    faces = S.sample_images(per_class=1, seed=4)
    files = S.layout_files(faces)
    black = S.encode(np.zeros((48, 48), np.uint8))
    train_face = files["train/happy/img00003.png"]
    files["train/angry/blank.png"] = black
    files["test/sad/blank.png"] = black
    files["train/fear/dup_of_happy.png"] = train_face  # same pixels, other label: worth knowing
    files["test/happy/leak.png"] = train_face  # a test image that is also in train
    ds = load_dataset(S.write_zip(tmp_path / "q.zip", files))
    train, test = ds.split("train"), ds.split("test")
    src = lambda split, name: list(split.sources).index(name)  # noqa: E731
    assert ds.report.blank == {"train": [src(train, "train/angry/blank.png")], "test": [src(test, "test/sad/blank.png")]}
    assert ds.report.duplicates_within["train"] == [sorted([src(train, "train/fear/dup_of_happy.png"),
                                                            src(train, "train/happy/img00003.png")])]
    assert ds.report.duplicates_within["test"] == []
    pairs = {(p["split_a"], train.sources[p["index_a"]], p["split_b"], test.sources[p["index_b"]])
             for p in ds.report.duplicates_across}
    first_happy = min(src(train, "train/fear/dup_of_happy.png"), src(train, "train/happy/img00003.png"))
    assert pairs == {
        ("train", train.sources[first_happy], "test", "test/happy/leak.png"),
        ("train", "train/angry/blank.png", "test", "test/sad/blank.png"),
    }
    summary = ds.report.summary()
    assert summary["blank"] == {"train": 1, "test": 1}
    assert summary["duplicate_groups_within"] == {"train": 1}
    assert summary["duplicate_images_within"] == {"train": 2}
    assert summary["duplicates_across"] == {"test in train": 2}
    assert summary["images"] == {"train": 9, "test": 9}
    json.dumps(summary)
