"""Real FER-2013 (the team's Kaggle image-folder zip in ../shared): counts, report, cache speed."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fer_core.data import load_dataset
from fer_core.labels import FER_LABELS, canonical_label

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

# Folder counts of the Kaggle zip (verified with `unzip -l`).
TRAIN = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "neutral": 4965, "sad": 4830, "surprise": 3171}
TEST = {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "neutral": 607, "sad": 653, "surprise": 415}


def test_real_fer2013_zip(fer2013_zip: Path) -> None:
    ds = load_dataset(fer2013_zip, use_cache=False)  # load times: benchmarks/data_and_training.py
    train, test = ds.split("train"), ds.split("test")
    assert len(train) == 28_709 and len(test) == 3_589
    assert ds.class_counts()["train"] == {k: TRAIN[k] for k in FER_LABELS}
    assert ds.class_counts()["test"] == {k: TEST[k] for k in FER_LABELS}
    # the counts agree with the zip's own folders, read independently
    with zipfile.ZipFile(fer2013_zip) as zf:
        folders = Counter(tuple(n.split("/")[:2]) for n in zf.namelist() if not n.endswith("/"))
    for (split, folder), n in folders.items():
        assert ds.report.counts[split][canonical_label(folder)] == n
    # every image's label is the one of the folder it came from
    for split in (train, test):
        folder_label = np.array([FER_LABELS.index(canonical_label(s.split("/")[1])) for s in split.sources])
        np.testing.assert_array_equal(split.labels, folder_label)
    report = ds.report
    assert report.skipped_by_reason == {} and report.resized == 0
    s = report.summary()
    # measured on this zip: 12 all-black images in train, 1 in test, plus 1 uniform grey (127-130) in train
    assert s["blank"] == {"train": 12, "test": 1}
    assert s["duplicates_across"] == {"test in train": 280}
    assert s["duplicate_images_within"] == {"train": 2271, "test": 52}

    # decoded once: the next load is a cache read (the session cache is empty before this)
    load_dataset(fer2013_zip)
    again = load_dataset(fer2013_zip)
    assert again.report.from_cache
    np.testing.assert_array_equal(again.split("test").images, test.images)
