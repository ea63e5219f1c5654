"""Pixel scalings have command-line words (unit, symmetric, raw); meta.json keeps 0-1, -1-1, 0-255."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from fer_core.cli.main import build_parser
from fer_core.paths import PROJECT_ROOT
from fer_core.preprocess import SCALE_WORDS, SCALES, canonical_scale, scale_pixels, scale_word
from fer_core.store.runs import ModelStore
from tests.cli_helpers import run_cli


def test_every_scaling_has_a_word_and_both_spellings_mean_the_same() -> None:
    assert sorted(SCALE_WORDS.values()) == sorted(SCALES)
    assert SCALE_WORDS == {"unit": "0-1", "symmetric": "-1-1", "raw": "0-255"}
    for word, stored in SCALE_WORDS.items():
        assert canonical_scale(word) == canonical_scale(stored) == canonical_scale(word.upper()) == stored
        assert scale_word(stored) == word
    pixels = np.array([0, 255], dtype=np.uint8)
    assert scale_pixels(pixels, canonical_scale("symmetric")).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="symmetric"):
        canonical_scale("-1..1")


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_the_parser_takes_the_words_and_the_old_spellings() -> None:
    for value, stored in [("symmetric", "-1-1"), ("--scale=-1-1", "-1-1"), ("unit", "0-1"), ("0-1", "0-1"),
                          ("raw", "0-255"), ("0-255", "0-255"), ("auto", "auto")]:
        opt = [value] if value.startswith("--") else ["--scale", value]
        assert _parse("import", "m.h5", "--labels", "csv", *opt).scale == stored, value
        if stored != "auto":
            assert _parse("conventions", *opt).scale == stored, value
    for bad in (["import", "m.h5", "--labels", "csv", "--scale", "half"], ["conventions", "--scale", "auto"]):
        with pytest.raises(SystemExit):
            _parse(*bad)


def test_cli_import_with_a_word_stores_the_canonical_scaling() -> None:
    source = PROJECT_ROOT / "models" / "mini_xception-fer2013" / "model.keras"
    res = run_cli("import", str(source), "--name", "symmetric one", "--labels", "csv", "--scale", "symmetric",
                  "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "scaling symmetric [-1, 1]" in " ".join(res.stdout.split())  # rich wraps lines at 160 characters
    (run,) = ModelStore().list_runs()
    assert run.meta["preprocessing"]["scale"] == "-1-1"  # as existing stores and shipped models write it
    res = run_cli("conventions", run.run_id, "--scale", "unit", "--data", "demo", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    assert ModelStore().read_meta(run.run_id)["preprocessing"]["scale"] == "0-1"
    assert "unit [0, 1]" in res.stdout and "symmetric [-1, 1]" in res.stdout  # the check's table
