"""The Batch page under AppTest: a folder on the server is labelled in the background (progress,
then counts, the per-file table, charts, downloads); a rerun or a new session finds the job; an
uploaded zip works the same; Cancel keeps what is done and Resume finishes it; a page with nothing
named says what to do."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import pandas as pd

from benchmarks.corpus_maker import make_corpus
from fer_core.corpus.jobs import CORPUS_JOBS
from tests.app_helpers import assert_clean, install_tiny_run, new_app, open_page, texts

PAGE = "app_pages/batch.py"


def _until_done(at, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = CORPUS_JOBS.get(at.session_state["batch_job"])
        if job is not None and job.state != "running":
            return at.run(), job
        time.sleep(0.3)
    raise AssertionError("the job did not end")


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_folder_job_then_zip_upload(tiny_store, tmp_path: Path) -> None:
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    corpus = tmp_path / "shots"
    facts = make_corpus(corpus, 12, seed=5, broken=2)
    at = open_page(new_app(), PAGE)
    assert_clean(at)
    at.button(key="batch_go").click().run()
    assert any("name a folder on the server" in e.value for e in at.error)

    at.text_input(key="batch_folder").set_value(str(corpus)).run()
    at.button(key="batch_go").click().run()
    assert_clean(at)
    key = at.session_state["batch_job"]
    at, job = _until_done(at)
    assert_clean(at)
    assert job.state == "done", job.error
    assert _metric(at, "Files") == "12" and _metric(at, "Could not be read") == "2"
    assert int(_metric(at, "Faces")) >= facts.faces_placed - 3
    table = at.dataframe[0].value
    assert len(table) == 12 and set(table["status"]) <= {"faces", "no face", "error"}
    assert [b.label for b in at.get("download_button")] == ["All rows (Parquet)", "All rows (CSV)"]
    assert len(at.get("plotly_chart")) == 2, "faces per emotion, and per folder"

    again = open_page(new_app(), PAGE)  # a new session (a reload) shows the latest job
    assert_clean(again)
    assert again.session_state["batch_job"] == key and _metric(again, "Files") == "12"

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(corpus.rglob("photo*.jpg"))[:3]:
            zf.write(p, f"upload/{p.name}")
    at.radio(key="batch_where").set_value("Upload a zip").run()
    at.file_uploader(key="batch_zip").upload("shots.zip", buf.getvalue(), "application/zip")
    at.run()
    at.button(key="batch_go").click().run()
    assert at.session_state["batch_job"] != key
    at, job = _until_done(at)
    assert job.state == "done" and _metric(at, "Files") == "3", job.error
    rows = pd.read_parquet(job.folder.rows_dir)
    assert set(rows["source"].str.split("/").str[1]) == {"upload"}


def test_cancel_then_resume(tiny_store, tmp_path: Path) -> None:
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    corpus = tmp_path / "many"
    make_corpus(corpus, 60, seed=6, broken=0)
    at = open_page(new_app(), PAGE)
    at.text_input(key="batch_folder").set_value(str(corpus)).run()
    at.button(key="batch_go").click().run()
    job = CORPUS_JOBS.get(at.session_state["batch_job"])
    job.cancel()  # what the Cancel button does (its fragment does not tick under AppTest)
    at, job = _until_done(at)
    assert_clean(at)
    assert job.state == "cancelled"
    assert "Resume finishes the rest" in texts(at)
    at.button(key=f"batch_resume_{job.key}").click().run()
    at, job = _until_done(at)
    assert_clean(at)
    assert job.state == "done" and _metric(at, "Files") == "60", job.error
    rows = pd.read_parquet(job.folder.rows_dir)
    assert rows.groupby("item")["source"].nunique().eq(1).all() and rows["item"].nunique() == 60


def test_earlier_jobs_can_be_picked(tiny_store, tmp_path: Path) -> None:
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    a, b = tmp_path / "first", tmp_path / "second"
    make_corpus(a, 2, seed=7, broken=0)
    make_corpus(b, 3, seed=8, broken=0)
    at = open_page(new_app(), PAGE)
    started = []
    for folder in (a, b):
        at.text_input(key="batch_folder").set_value(str(folder)).run()
        at.button(key="batch_go").click().run()
        at, job = _until_done(at)
        assert job.state == "done", job.error
        started.append(job.key)
    assert _metric(at, "Files") == "3"
    first = started[0]
    at.selectbox(key="batch_recent").set_value(first).run()
    assert at.session_state["batch_job"] == first and _metric(at, "Files") == "2"
    at.run()  # and it stays on the picked job
    assert _metric(at, "Files") == "2"
