"""Split / LoadReport / Dataset conveniences and the report's JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_core.data import Dataset, LoadReport, Split
from fer_core.data.types import SKIPPED_LIST_CAP
from fer_core.errors import DatasetError
from fer_core.labels import FER_LABELS


def _split(labels: list[int]) -> Split:
    n = len(labels)
    return Split(images=np.zeros((n, 48, 48), np.uint8), labels=labels, sources=[f"x{i}" for i in range(n)])


def _dataset() -> Dataset:
    report = LoadReport(source="mem", format="demo")
    return Dataset(name="t", splits={"train": _split([0, 6, 6, 4]), "test": _split([5])}, fingerprint="f",
                   synthetic=False, report=report)


def test_split_validates_and_converts() -> None:
    s = _split([1, 2])
    assert s.labels.dtype == np.int64 and s.images.dtype == np.uint8 and s.sources.dtype.kind == "U"
    assert len(s) == 2
    with pytest.raises(ValueError, match="inconsistent split"):
        Split(images=np.zeros((2, 48, 48), np.uint8), labels=[0], sources=["a", "b"])


def test_split_lookup_names_available_splits() -> None:
    ds = _dataset()
    assert ds.split("test") is ds.splits["test"]
    with pytest.raises(DatasetError, match="no split 'private_test'.*train, test"):
        ds.split("private_test")


def test_class_counts_in_fer_order_with_zeros() -> None:
    counts = _dataset().class_counts()
    assert list(counts["train"]) == list(FER_LABELS)
    assert counts["train"] == {"angry": 1, "disgust": 0, "fear": 0, "happy": 0, "sad": 1, "surprise": 0, "neutral": 2}
    assert counts["test"]["surprise"] == 1 and sum(counts["test"].values()) == 1
    assert _dataset().num_images == 5
    assert _split([]).class_counts() == {name: 0 for name in FER_LABELS}


def test_report_round_trip_through_json() -> None:
    r = LoadReport(source="x.zip", format="zip", counts={"train": {"happy": 2}})
    r.add_skipped("a.jpg", "not an image")
    r.add_skipped("b.jpg", "not an image")
    r.add_skipped("c", "unknown class folder 'foo'")
    r.blank = {"train": [np.int64(3)]}
    r.duplicates_within = {"train": [[np.int64(1), 2]]}
    r.duplicates_across = [{"split_a": "train", "index_a": np.int64(0), "split_b": "test", "index_b": 5}]
    r.resized = 4
    d = json.loads(json.dumps(r.to_dict()))
    back = LoadReport.from_dict(d)
    assert back == LoadReport.from_dict(r.to_dict())
    assert back.skipped_by_reason == {"not an image": 2, "unknown class folder 'foo'": 1}
    assert back.total_skipped == 3 and back.resized == 4
    assert back.duplicates_across[0]["index_b"] == 5
    assert back.summary() == r.summary()
    assert r.summary()["skipped"] == 3


def test_skipped_examples_are_capped_but_counted() -> None:
    r = LoadReport(source="x", format="csv")
    for i in range(SKIPPED_LIST_CAP + 50):
        r.add_skipped(f"csv row {i}", "wrong pixel count")
    assert len(r.skipped) == SKIPPED_LIST_CAP
    assert r.skipped_by_reason == {"wrong pixel count": SKIPPED_LIST_CAP + 50}
