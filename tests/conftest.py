"""Shared fixtures: every test gets its own model store and dataset cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from fer_core.paths import shared_fer2013_zip  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's models/ or ~/.cache from a test."""
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
    monkeypatch.setenv("FER_CACHE_DIR", str(session_cache))
    # No background model preload in AppTest runs (it would load every test's model in this
    # process); tests of the preload turn it on, browser servers get the app's default (on).
    monkeypatch.setenv("FER_PRELOAD", "0")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache per test session: decoding the demo set or FER-2013 once is enough."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, session_cache: Path):
    """(store, run_id, demo dataset): one short real training on the demo set, shared by the session."""
    from model_helpers import train_demo_run

    with pytest.MonkeyPatch.context() as mp:  # the demo set decodes into the session's cache
        mp.setenv("FER_CACHE_DIR", str(session_cache))
        return train_demo_run(tmp_path_factory.mktemp("demo-run-models"))


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Path:
    """A model store holding the tiny run the app tests install (tests/app_helpers.install_tiny_run)."""
    from tests.app_helpers import train_tiny_store

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_CACHE_DIR", str(session_cache))
        return train_tiny_store(tmp_path_factory.mktemp("tiny-store"))


@pytest.fixture(scope="session")
def fer2013_zip() -> Path:
    """Real FER-2013 (Kaggle image-folder zip) from ../shared, or skip."""
    path = shared_fer2013_zip()
    if path is None:
        pytest.skip("../shared/data/fer2013.zip is not present")
    return path
