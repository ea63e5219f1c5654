"""The Video page under AppTest: the sample clip and an upload are analysed off the script thread
(progress, then the annotated video, the per-face table and charts, downloads); a file that is no
video gets a message; a rerun finds the same job instead of starting it again."""

from __future__ import annotations

import os
import time

from benchmarks.clips import ClipPlan, make_clip
from fer_core.inference.video_jobs import VIDEO_JOBS
from tests.app_helpers import assert_clean, install_tiny_run, new_app, open_page, texts

PAGE = "app_pages/video.py"


def _until_done(at, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = VIDEO_JOBS.get(at.session_state["video_job"])
        if job is not None and job.state != "running":
            return at.run(), job
        time.sleep(0.3)
    raise AssertionError("the analysis did not end")


def test_sample_clip_then_upload_then_bad_file(tiny_store, tmp_path):
    install_tiny_run(tiny_store, os.environ["FER_MODELS_DIR"])
    at = open_page(new_app(), PAGE)
    assert_clean(at)
    assert "sample clip" in texts(at)
    at.button(key="video_go").click().run()
    assert_clean(at)
    key = at.session_state["video_job"]
    at.run()  # a rerun while it runs (or after) finds the same job
    assert at.session_state["video_job"] == key and VIDEO_JOBS.get(key) is not None
    at, job = _until_done(at)
    assert_clean(at)
    assert job.state == "done", job.error
    assert len(at.get("video")) == 1, "the annotated video is shown"
    assert "2 face(s)" in texts(at) and len(at.dataframe) == 1
    assert len(at.get("plotly_chart")) == 2, "one emotion-over-time chart per face"
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Annotated video (MP4)", "Per-frame table (CSV)", "Per-face summary (JSON)"], labels

    clip = make_clip(tmp_path / "one_face.mp4", ClipPlan(seconds=2.0))
    at.file_uploader(key="video_upload").upload("one_face.mp4", clip.read_bytes(), "video/mp4")
    at.run()
    at.select_slider(key="video_rate").set_value(10).run()
    at.button(key="video_go").click().run()
    assert at.session_state["video_job"] != key
    at, job = _until_done(at)
    assert_clean(at)
    assert job.summary["frames_processed"] == 20 and "1 face(s)" in texts(at)

    at.file_uploader(key="video_upload").upload("notes.mp4", b"just some text", "video/mp4")
    at.run()
    at.button(key="video_go").click().run()
    at, job = _until_done(at)
    assert_clean(at)
    assert any("could not be analysed" in e.value and "cannot be opened as a video" in e.value for e in at.error)
