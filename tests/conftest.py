"""Shared fixtures: every test gets its own model store and dataset cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_core.paths import shared_fer2013_zip  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's models/ or ~/.cache from a test."""
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
    monkeypatch.setenv("FER_CACHE_DIR", str(_session_cache(tmp_path_factory)))
    # No background model preload in AppTest runs (it would load every test's model in this
    # process); tests of the preload turn it on, browser servers get the app's default (on).
    monkeypatch.setenv("FER_PRELOAD", "0")


_CACHE: Path | None = None


def _session_cache(factory: pytest.TempPathFactory) -> Path:
    # One cache per test session: decoding the demo set or FER-2013 once is enough.
    global _CACHE
    if _CACHE is None:
        _CACHE = factory.mktemp("cache")
    return _CACHE


@pytest.fixture(scope="session")
def fer2013_zip() -> Path:
    """Real FER-2013 (Kaggle image-folder zip) from ../shared, or skip."""
    path = shared_fer2013_zip()
    if path is None:
        pytest.skip("../shared/data/fer2013.zip is not present")
    return path
