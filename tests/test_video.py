"""Video files: the engine on clips the tests make (a real face moving and growing, a second face
entering half-way, a stretch with no face, sound, phone rotation), the CLI, bad input, the jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from benchmarks.clips import ClipPlan, make_clip
from fer_core.errors import FerError
from fer_core.inference.classifier import EmotionClassifier
from fer_core.inference.faces import make_detector
from fer_core.inference.video import COLUMNS, VideoOptions, VideoOutputs, analyse_video
from fer_core.inference.video_io import VideoError, VideoLimits, frame_at, probe
from fer_core.inference.video_jobs import VideoJobs
from fer_core.store.default_model import default_run
from fer_core.store.runs import ModelStore
from model_helpers import SHIPPED_ROOT
from tests.app_helpers import ROOT
from tests.cli_helpers import run_cli

PLAN = ClipPlan(seconds=4.0, second_face_from=2.0, no_face_from=3.4, audio=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "main": make_clip(d / "two_faces.mp4", PLAN),
        "rotated": make_clip(d / "phone.mp4", ClipPlan(seconds=2.0, size=(480, 640), rotate=90)),
        "no_face": make_clip(d / "empty_room.mp4", ClipPlan(seconds=1.5, no_face_from=0.0)),
    }


@pytest.fixture(autouse=True)
def shipped_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI runs with the shipped default model (read only: `video` writes nothing into the store)."""
    monkeypatch.setenv("FER_MODELS_DIR", str(SHIPPED_ROOT))


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    store = ModelStore(SHIPPED_ROOT)
    return EmotionClassifier.from_store(store, default_run(store).run_id, warm_up_to=4)


def _decoded(path: Path) -> tuple[int, float, bool, str]:
    """(frames, duration of the last frame's end, has audio, pixel format) of a video file, decoded."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        times = [float(f.time) for f in c.decode(v)]
        step = 1.0 / float(v.average_rate)
        return len(times), times[-1] + step, bool(c.streams.audio), v.codec_context.pix_fmt


def test_table_tracks_summary_and_annotated_copy(clips, classifier, tmp_path: Path) -> None:
    out = VideoOutputs(csv=tmp_path / "f.csv", parquet=tmp_path / "f.parquet", summary=tmp_path / "s.json",
                       video=tmp_path / "a.mp4")
    result = analyse_video(clips["main"], classifier, make_detector("yunet"), out)
    assert result.stopped is None and result.frames_read == result.frames_processed == 120
    table = pd.read_csv(out.csv)
    assert list(table.columns) == COLUMNS and len(table) == result.rows
    assert table.equals(pd.read_parquet(out.parquet).astype(table.dtypes))
    assert not table.duplicated(["frame", "track_id"]).any()  # a row per face per processed frame
    probs = table[[c for c in COLUMNS if c.startswith("p_")]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=2e-3)
    # Track ids stay stable: the first face keeps id 1 through the clip, the second gets one id from 2 s.
    by_track = table.groupby("track_id")["time_s"].agg(["min", "max", "count"])
    assert list(by_track.index) == [1, 2], by_track
    assert by_track.loc[1, "min"] == 0.0 and by_track.loc[1, "count"] >= 0.95 * 3.4 * 30
    assert 2.0 <= by_track.loc[2, "min"] <= 2.2 and by_track.loc[2, "count"] >= 0.9 * 1.4 * 30
    assert table["time_s"].max() < 3.4 + 0.2  # the faceless end has (almost) no rows
    summary = json.loads(Path(out.summary).read_text())
    t1, t2 = summary["tracks"]
    assert t1["seconds"] == pytest.approx(3.4, abs=0.15) and t2["seconds"] == pytest.approx(1.4, abs=0.15)
    for t in (t1, t2):  # the seconds add up: time per emotion sums to time on screen, within the clip
        assert sum(t["share"].values()) == pytest.approx(1.0, abs=1e-3)
        assert t["seconds"] == pytest.approx(t["last_s"] - t["first_s"], abs=0.05) and t["last_s"] <= PLAN.seconds
        assert t["dominant"] == "happy"  # the astronaut smiles
    frames, duration, audio, pix = _decoded(Path(out.video))
    assert frames == 120 and duration == pytest.approx(4.0, abs=0.05) and audio and pix == "yuv420p"
    head = Path(out.video).read_bytes()
    assert head.find(b"moov") < head.find(b"mdat")  # +faststart: a browser plays it before the whole file is in
    assert probe(out.video).codec == "h264"
    boxed = frame_at(out.video, 1.0)
    raw = frame_at(clips["main"], 1.0)
    assert boxed.shape == raw.shape and np.abs(boxed.astype(int) - raw).max() > 100  # the overlay is drawn


def test_sampling_keeps_every_frame_in_the_copy(clips, classifier, tmp_path: Path) -> None:
    out = VideoOutputs(csv=tmp_path / "f.csv", video=tmp_path / "a.mp4")
    result = analyse_video(clips["main"], classifier, make_detector("yunet"), out, VideoOptions(max_fps=5))
    assert result.frames_read == 120 and result.frames_processed == 20  # 4 s at 5 frames/s
    assert pd.read_csv(out.csv)["frame"].nunique() <= 20
    assert _decoded(Path(out.video))[0] == 120
    every = analyse_video(clips["main"], classifier, make_detector("yunet"), VideoOutputs(summary=tmp_path / "s.json"),
                          VideoOptions(every_n=4))
    # Time on screen is right to about two analysed intervals (4 frames): the face leaves between two, and
    # the tracker keeps a face for one detection round it is not found in (one missed detection is no exit).
    assert every.frames_processed == 30 and every.tracks[0].seconds == pytest.approx(3.4, abs=2 * 4 / 30 + 1e-6)


def test_phone_rotation_is_honoured(clips, classifier, tmp_path: Path) -> None:
    info = probe(clips["rotated"])
    assert info.rotation == 90 and (info.width, info.height) == (480, 640)  # stored 640x480, shown portrait
    result = analyse_video(clips["rotated"], classifier, make_detector("yunet"),
                           VideoOutputs(csv=tmp_path / "f.csv", video=tmp_path / "a.mp4"))
    assert result.rows >= 0.95 * result.frames_read  # upright faces are found
    out = probe(tmp_path / "a.mp4")
    assert (out.width, out.height, out.rotation) == (480, 640, 0)


def test_a_video_with_no_face(clips, classifier, tmp_path: Path) -> None:
    result = analyse_video(clips["no_face"], classifier, make_detector("yunet"),
                           VideoOutputs(csv=tmp_path / "f.csv", summary=tmp_path / "s.json"))
    assert result.frames_read == 45 and result.rows == 0 and result.tracks == []
    assert pd.read_csv(tmp_path / "f.csv").empty
    res = run_cli("video", str(clips["no_face"]), "--summary", str(tmp_path / "t.json"), "--no-progress")
    assert res.returncode == 0 and "0 face track(s)" in res.stdout


def test_cancel_keeps_a_playable_part(clips, classifier, tmp_path: Path) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int, fps: float) -> None:
        if done >= 30:
            cancel.set()

    out = VideoOutputs(csv=tmp_path / "f.csv", video=tmp_path / "a.mp4")
    result = analyse_video(clips["main"], classifier, make_detector("yunet"), out, progress=progress, cancel=cancel)
    assert result.stopped == "cancelled" and 30 <= result.frames_read < 120
    assert _decoded(Path(out.video))[0] == result.frames_read  # complete and playable up to where it stopped


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=48000)
        for start in range(0, 48000, 1024):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts, f.time_base = 48000, start, Fraction(1, 48000)
            out.mux(s.encode(f))
        out.mux(s.encode(None))
    return path


def test_bad_input_gets_a_clear_message(clips, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    data = clips["main"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # an MP4 cut short before its index
    cases = {text: "cannot be opened as a video", empty: "is empty", cut: "cut short",
             _audio_only(tmp_path / "song.m4a"): "an audio file", tmp_path / "missing.mp4": "does not exist"}
    for path, words in cases.items():
        with pytest.raises(VideoError, match=words):
            probe(path)
        res = run_cli("video", str(path), "--csv", str(tmp_path / "x.csv"), "--no-progress")
        assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
    small = VideoLimits(max_bytes=10_000, max_seconds=2.0, max_pixels=320 * 240)
    for limits, words in ((small, "GB"), (VideoLimits(max_seconds=2.0), "lasts"), (VideoLimits(max_pixels=320 * 240), "8K")):
        with pytest.raises(VideoError, match=words):
            probe(clips["main"], limits)
    assert issubclass(VideoError, FerError)


def test_a_truncated_faststart_file_keeps_what_decodes(clips, classifier, tmp_path: Path) -> None:
    full = tmp_path / "full.mp4"
    analyse_video(clips["main"], classifier, make_detector("yunet"), VideoOutputs(video=full))
    data = full.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])  # index first (+faststart): the first part still decodes
    result = analyse_video(half, classifier, make_detector("yunet"), VideoOutputs(csv=tmp_path / "f.csv"))
    assert 10 < result.frames_read < 120
    assert any("cut short" in n for n in result.notes)


def test_cli_writes_everything_and_ctrl_c_keeps_what_was_done(clips, tmp_path: Path) -> None:
    res = run_cli("video", str(clips["main"]), "--out", str(tmp_path / "a.mp4"), "--csv", str(tmp_path / "f.csv"),
                  "--summary", str(tmp_path / "s.json"), "--max-fps", "10")
    assert res.returncode == 0, res.stderr
    assert "120 frames read, 40 analysed" in res.stdout and "face #1" in res.stdout and "face #2" in res.stdout
    assert "frames 120/120 (100%)" in res.stderr  # one progress line per 10% in a pipe
    assert res.stderr.count("frames ") <= 12
    assert _decoded(tmp_path / "a.mp4")[0] == 120
    res = run_cli("video", str(clips["main"]), "--no-progress")
    assert res.returncode == 2 and "say what to write" in res.stderr

    long_clip = make_clip(tmp_path / "long.mp4", ClipPlan(seconds=20.0))
    csv_path = tmp_path / "long.csv"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "fer_core", "video", str(long_clip), "--csv", str(csv_path),
                             "--out", str(tmp_path / "long_out.mp4"), "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (csv_path.is_file() and csv_path.read_text().count("\n") > 30):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted after" in stdout and "Traceback" not in stderr
    rows = pd.read_csv(csv_path)
    frames = _decoded(tmp_path / "long_out.mp4")[0]
    assert 30 <= len(rows) and frames < 600 and rows["frame"].max() < frames  # what was done, complete


def test_jobs_run_once_per_file_and_are_found_again(clips, classifier, tmp_path: Path) -> None:
    jobs = VideoJobs(root=tmp_path / "videos")
    parts = lambda: (classifier, make_detector("yunet"))  # noqa: E731
    data = clips["main"].read_bytes()
    job = jobs.start(data, "two_faces.mp4", "run", "yunet", VideoOptions(max_fps=10), parts)
    assert jobs.start(data, "again.mp4", "run", "yunet", VideoOptions(max_fps=10), parts) is job  # not restarted
    deadline = time.monotonic() + 120
    while job.state == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job.state == "done" and job.video.is_file() and job.csv.is_file(), job.error
    assert not list(job.folder.glob("source*"))  # the upload's copy is gone, the results stay
    again = VideoJobs(root=tmp_path / "videos").get(job.key)  # another server process: found on disk
    assert again is not None and again.state == "done" and again.summary["tracks"] == job.summary["tracks"]
    assert again.name == "two_faces.mp4"
    bad = jobs.start(b"not a video", "notes.mp4", "run", "yunet", VideoOptions(), parts)
    while bad.state == "running":
        time.sleep(0.05)
    assert bad.state == "failed" and "cannot be opened as a video" in bad.error and not bad.folder.exists()
