"""Documented limits (docs/LIMITS.md) hold: the upload size in .streamlit/config.toml, and the disk a
public app may fill with strangers' uploads and their decoded caches (oldest files go first)."""

from __future__ import annotations

import os
import re
import time
import tomllib
from pathlib import Path

import pytest

from fer_core.data import cache, load_dataset
from tests import samples as S
from fer_core.data import DEFAULT_LIMITS
from fer_core.paths import cache_dir

ROOT = Path(__file__).resolve().parents[1]
LIMITS_MD = ROOT / "docs" / "LIMITS.md"


def test_upload_limit_is_configured_and_documented() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    mb = config["server"]["maxUploadSize"]
    doc = LIMITS_MD.read_text()
    assert f"{mb} MB" in doc and "server.maxUploadSize" in doc
    assert mb * (1 << 20) <= DEFAULT_LIMITS.max_total_size  # an accepted upload can pass the zip limits
    for figure in (f"{DEFAULT_LIMITS.max_members:,}", "2 GiB", "512 MiB", "100x", "64 KiB", "50 MP", "50 MB",
                   "4096 x 4096", f"{cache.MAX_KEPT_UPLOADS} most recent", f"{cache.MAX_CACHED_DATASETS} most recently"):
        assert figure in doc, figure
    assert "docs/LIMITS.md" in (ROOT / "README.md").read_text()


def _touch(path: Path, size: int, age_s: float) -> Path:
    path.write_bytes(b"x" * size)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_prune_removes_least_recently_used_files_first(tmp_path: Path) -> None:
    files = [_touch(tmp_path / f"f{i}.zip", 100, age_s=100 - i) for i in range(8)]  # f7 is the newest
    old_partial = _touch(tmp_path / "dead.zip.part", 100, age_s=2 * cache.PARTIAL_GRACE_S)
    live_partial = _touch(tmp_path / "live.zip.part", 100, age_s=1)
    removed = cache.prune(tmp_path, max_files=3, max_bytes=10_000, keep=[files[0]])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["f0.zip", "f6.zip", "f7.zip", "live.zip.part"], left  # kept + 2 newest; a live upload stays
    assert old_partial in removed
    cache.prune(tmp_path, max_files=10, max_bytes=250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f6.zip", "f7.zip", "live.zip.part"]
    assert live_partial.exists()


def test_decoded_dataset_cache_keeps_the_most_recently_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "MAX_CACHED_DATASETS", 3)
    sources = [S.write_csv(tmp_path / f"d{i}.csv", S.sample_images(per_class=1, seed=i)) for i in range(5)]
    load_dataset(sources[0])
    for i, src in enumerate(sources[1:], 1):
        time.sleep(0.02)
        load_dataset(src)
        if i == 2:
            time.sleep(0.02)
            assert load_dataset(sources[0]).report.from_cache  # used again: now recent
    cached = list((tmp_path / "cache" / "datasets").glob("*.npz"))
    assert len(cached) == 3
    assert load_dataset(sources[0]).report.from_cache and load_dataset(sources[4]).report.from_cache
    assert not load_dataset(sources[1]).report.from_cache  # evicted, decoded again


@pytest.mark.slow
def test_dataset_page_keeps_only_the_most_recent_uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))  # not the session's shared cache
    monkeypatch.setattr(cache, "MAX_KEPT_UPLOADS", 2)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180).run()
    at.switch_page("app_pages/dataset.py").run()
    at.segmented_control(key="ds_choice").set_value("Upload a zip or CSV").run()
    for i in range(4):
        text = S.csv_text(S.sample_images(per_class=1, seed=100 + i))
        at.file_uploader(key="ds_upload").upload(f"upload{i}.csv", text.encode(), "text/csv").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
    names = sorted(re.sub(r"^[0-9a-f]+-", "", p.name) for p in (cache_dir() / "uploads").iterdir())
    assert names == ["upload2.csv", "upload3.csv"], names
    assert at.session_state["dataset_label"] == "upload3.csv"
