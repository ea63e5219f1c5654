"""Labelling a corpus (fer_core.corpus, `python -m fer_core batch`) on a tiny corpus the tests make:
nested folders of photos with 1-4 real faces, one with none, a truncated JPEG, a text file named
.jpg, a zip, a list file, a short clip. Rows, failure rows with reasons, the per-file summary and
the manifest; the same answers as `predict`; a job killed mid-run then resumed does every file
exactly once; the CLI's messages and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.clips import ClipPlan, make_clip
from benchmarks.corpus_maker import make_corpus
from fer_core.corpus.inputs import iter_items
from fer_core.corpus.job import BatchSettings, run_batch
from fer_core.corpus.output import JobFolder
from fer_core.corpus.rows import PROB_COLUMNS
from fer_core.errors import FerError
from model_helpers import SHIPPED_ROOT
from tests.cli_helpers import ROOT, run_cli


@pytest.fixture(autouse=True)
def shipped_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs run with the shipped default model (read only: a job writes nothing into the store)."""
    monkeypatch.setenv("FER_MODELS_DIR", str(SHIPPED_ROOT))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    facts = make_corpus(root / "photos", 14, seed=3, broken=0)
    photos = root / "photos"
    (photos / "set00" / "batch00" / "truncated.jpg").write_bytes((photos / "set00/batch00/photo000001.jpg").read_bytes()[:900])
    (photos / "set00" / "batch01").mkdir(parents=True, exist_ok=True)
    (photos / "set00" / "batch01" / "notes.jpg").write_text("not a photo", encoding="utf-8")
    (photos / ".hidden").mkdir()
    (photos / ".hidden" / "skip.jpg").write_bytes(b"never read")
    (photos / "readme.txt").write_text("not a photo either: a folder's other files are left out", encoding="utf-8")
    make_clip(photos / "clips" / "talk.mp4", ClipPlan(seconds=4.0, faces=2))
    with zipfile.ZipFile(root / "more.zip", "w") as zf:
        for i in range(3):
            zf.write(photos / "set00" / "batch00" / f"photo00000{i + 2}.jpg", f"inner/p{i}.jpg")
        zf.writestr("inner/empty.jpg", b"")
    (root / "list.txt").write_text("photos/set00/batch00/photo000004.jpg\n# a comment\nmissing.jpg\n", encoding="utf-8")
    return {"root": root, "photos": photos, "zip": root / "more.zip", "list": root / "list.txt",
            "no_face": facts.no_face}


def _srcs(corpus: dict[str, Path]) -> list[str]:
    return [str(corpus["photos"]), str(corpus["zip"]), str(corpus["list"])]


def test_inputs_expand_folders_zips_lists_and_globs(corpus) -> None:
    items = list(iter_items(_srcs(corpus) + [str(corpus["photos"] / "set00" / "**" / "photo00001*.jpg"),
                                            str(corpus["root"] / "nowhere")]))
    names = [i.source for i in items]
    assert [i.item for i in items] == list(range(len(items)))
    assert "photos/clips/talk.mp4" in names and "photos/set00/batch01/notes.jpg" in names
    assert not any(".hidden" in n or n.endswith("readme.txt") for n in names)
    assert [i.source for i in items if i.member] == [f"more.zip/inner/{n}" for n in ("empty.jpg", "p0.jpg", "p1.jpg", "p2.jpg")]
    kinds = {i.source: i.kind for i in items}
    assert kinds["photos/clips/talk.mp4"] == "video"
    listed = str(corpus["root"] / "photos/set00/batch00/photo000004.jpg")  # the list's path, read from its folder
    assert any(i.source == listed and i.path == listed and i.kind == "photo" for i in items)
    missing = next(i for i in items if i.source.endswith("missing.jpg"))
    assert missing.kind == "error" and missing.error == "no such file or folder"
    assert sum(1 for i in items if "photo00001" in i.source and "**" not in i.source) >= 4  # the glob's matches
    assert items[-1].kind == "error" and items[-1].error == "no such file or folder"


def test_local_engine_rows_summary_and_manifest(corpus, tmp_path: Path) -> None:
    manifest = run_batch(_srcs(corpus), tmp_path / "job", workers=2)
    folder = JobFolder(tmp_path / "job")
    rows = folder.read_rows()
    items = list(iter_items(_srcs(corpus)))
    assert manifest["state"] == "done" and manifest["counts"]["done"] == len(items)
    assert sorted(rows["item"].unique()) == list(range(len(items))), "every file has rows"
    assert manifest["model"]["run_id"] == "vgg_fer-fer2013" and len(manifest["model"]["labels"]) == 7
    assert manifest["settings"] == {"detector": "auto", "max_fps": 2.0, "whole_image": False, "shard_size": 256}
    by_source = rows.groupby("source")
    reasons = {s: g["error"].iloc[0] for s, g in by_source if g["status"].iloc[0] == "error"}
    assert "truncated" in reasons["photos/set00/batch00/truncated.jpg"] or "corrupt" in reasons["photos/set00/batch00/truncated.jpg"]
    assert "not an image" in reasons["photos/set00/batch01/notes.jpg"]
    assert "empty" in reasons["more.zip/inner/empty.jpg"]
    assert reasons[next(s for s in reasons if s.endswith("missing.jpg"))] == "no such file or folder"
    assert rows[rows["source"].str.endswith("missing.jpg")]["kind"].tolist() == ["photo"]  # by its name
    assert manifest["counts"]["failed"] == len(reasons) == 4
    faces = rows[rows["status"] == "face"]
    assert np.allclose(faces[PROB_COLUMNS].sum(axis=1), 1.0, atol=1e-4)
    assert (faces["label"] == faces[PROB_COLUMNS].idxmax(axis=1).str.removeprefix("p_")).all()
    video = rows[rows["kind"] == "video"]
    assert video["time_s"].max() < 4.0 and set(video["track_id"].dropna()) == {1, 2}, "two faces followed through the clip"
    assert len(video["frame"].unique()) == 8, "2 frames per second of a 4 s clip"
    assert (rows[rows["status"] == "no face"]["kind"] == "photo").sum() == corpus["no_face"]
    sources = pd.read_parquet(folder.sources)
    assert len(sources) == len(items) and (sources.groupby("status").size()["error"] == 4)
    talk = sources[sources["source"] == "photos/clips/talk.mp4"].iloc[0]
    assert talk["faces"] == 2 and talk["dominant"] == "happy"  # the astronaut smiles


def test_same_answers_as_predict(corpus, tmp_path: Path) -> None:
    from fer_core.inference.batch_predict import STILL_IMAGE_DETECT_WIDTH
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.inference.faces import make_detector
    from fer_core.inference.sources import path_sources, predict_sources
    from fer_core.store.runs import ModelStore

    run_batch([str(corpus["photos"] / "set00")], tmp_path / "job", workers=1)
    rows = JobFolder(tmp_path / "job").read_rows()
    classifier = EmotionClassifier.from_store(ModelStore(SHIPPED_ROOT), "vgg_fer-fer2013", warm_up_to=1)
    detector = make_detector("auto", max_width=STILL_IMAGE_DETECT_WIDTH)
    results = [r for r, _ in predict_sources(path_sources([corpus["photos"] / "set00"]), detector, classifier)]
    expected = [(r.name, f.index + 1, f.box.x, f.box.y, f.label, f.probabilities) for r in results for f in r.faces]
    got = rows[rows["status"] == "face"]
    assert len(got) == len(expected) > 20
    for (name, face, x, y, label, probs), (_, row) in zip(expected, got.iterrows()):
        assert (row["source"], row["face"], row["x"], row["y"], row["label"]) == (name, face, x, y, label)
        assert np.abs(row[PROB_COLUMNS].to_numpy(float) - probs).max() < 1e-5


def _shards(out: Path) -> list[Path]:
    return sorted((out / "rows").glob("*.parquet")) if (out / "rows").is_dir() else []


def test_killed_job_resumes_without_redoing_or_duplicating(corpus, tmp_path: Path) -> None:
    out = tmp_path / "job"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "fer_core", "batch", str(corpus["photos"]), "--out", str(out), "--shard-size", "3",
           "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while len(_shards(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its workers, mid-run
    proc.wait(timeout=30)
    before = {p.name: p.stat().st_mtime_ns for p in _shards(out)}
    total = len(list(iter_items([str(corpus["photos"])])))
    assert 0 < len(JobFolder(out).scan_done(total).nonzero()[0]) < total
    again = run_cli("batch", "--out", str(out), "--resume", "--no-progress")
    assert again.returncode == 5, again.stderr  # done; two of the photos cannot be read
    assert all(p.stat().st_mtime_ns == before[p.name] for p in _shards(out) if p.name in before), "shards rewritten"
    rows = JobFolder(out).read_rows()
    per_item = rows.groupby("item")["source"].nunique()
    assert sorted(per_item.index) == list(range(total)) and (per_item == 1).all()
    assert not rows.duplicated(["item", "frame", "face", "track_id"]).any(), "no row twice"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "done" and len(manifest["runs"]) == 1  # the killed run never wrote its record
    assert "--resume" not in again.stdout and f"{total} of {total} file(s) done" in again.stdout


def test_cli_refuses_what_it_cannot_do(corpus, tmp_path: Path) -> None:
    out = tmp_path / "job"
    first = run_cli("batch", str(corpus["list"]), "--out", str(out), "--no-progress")
    assert first.returncode == 5 and "1 could not be read" in first.stdout, first.stdout + first.stderr
    again = run_cli("batch", str(corpus["list"]), "--out", str(out))
    assert again.returncode == 2 and "already holds a corpus job" in again.stderr and "Traceback" not in again.stderr
    other = run_cli("batch", "--out", str(tmp_path / "nothing"), "--resume")
    assert other.returncode == 2 and "no corpus job to resume" in other.stderr
    bad = run_cli("batch", str(corpus["list"]), "--out", str(tmp_path / "x"), "--max-fps", "-1")
    assert bad.returncode == 2 and "--max-fps" in bad.stderr


def test_a_resume_keeps_its_model(corpus, tmp_path: Path) -> None:
    run_batch([str(corpus["list"])], tmp_path / "job")
    with pytest.raises(FerError, match="started with the model vgg_fer-fer2013"):
        run_batch([], tmp_path / "job", run_id="mini_xception-fer2013", resume=True)
    with pytest.raises(FerError, match="not empty"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        run_batch([str(corpus["list"])], tmp_path / "full", settings=BatchSettings())


@pytest.fixture(scope="module")
def ray_installed() -> None:
    """The Ray engine's tests: under CI (`CI=true`, where .ci/run installs requirements-ray.txt) a
    missing Ray fails; elsewhere it skips."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ray is not installed: .ci/run installs requirements-ray.txt for these tests")
        pytest.skip("ray is not installed (pip install -r requirements-ray.txt)")


def test_ray_engine_writes_the_local_engines_rows(ray_installed, corpus, tmp_path: Path) -> None:
    srcs = _srcs(corpus)
    run_batch(srcs, tmp_path / "local", workers=2)
    manifest = run_batch(srcs, tmp_path / "ray", engine="ray", workers=2)
    assert manifest["state"] == "done" and manifest["runs"][-1]["engine"] == "ray"
    local, ray = JobFolder(tmp_path / "local").read_rows(), JobFolder(tmp_path / "ray").read_rows()
    keys = ["item", "source", "kind", "status", "frame", "face", "track_id", "x", "y", "w", "h", "label", "error"]
    assert local[keys].astype(str).equals(ray[keys].astype(str))
    assert np.nanmax(np.abs(local[PROB_COLUMNS].to_numpy(float) - ray[PROB_COLUMNS].to_numpy(float))) < 1e-5
    assert manifest["counts"] == json.loads((tmp_path / "local" / "manifest.json").read_text())["counts"]
    # a resume of a finished Ray job has nothing left to do and changes nothing
    shards = sorted(p.name for p in (tmp_path / "ray" / "rows").iterdir())
    again = run_batch([], tmp_path / "ray", engine="ray", resume=True)
    assert again["state"] == "done" and sorted(p.name for p in (tmp_path / "ray" / "rows").iterdir()) == shards


def test_a_csv_list_names_its_files_in_a_column(corpus, tmp_path: Path) -> None:
    photo = corpus["photos"] / "set00" / "batch00" / "photo000003.jpg"
    (tmp_path / "coded.csv").write_text(f"participant,file\nP1,{photo}\nP2,{photo.name}\n", encoding="utf-8")
    items = list(iter_items([str(tmp_path / "coded.csv")]))
    assert [(i.source, i.kind) for i in items] == [(str(photo), "photo"), (str(tmp_path / photo.name), "error")]
    assert items[1].error == "no such file or folder"  # relative paths are read from the list's folder
    (tmp_path / "bare.csv").write_text(f"{photo}\n", encoding="utf-8")  # no header: the first column
    assert [i.source for i in iter_items([str(tmp_path / "bare.csv")])] == [str(photo)]


def test_one_process_at_a_time_works_on_a_job(corpus, tmp_path: Path) -> None:
    run_batch([str(corpus["list"])], tmp_path / "job")
    with JobFolder(tmp_path / "job").lock():  # as if a job were still running there
        with pytest.raises(FerError, match="is being labelled by process"):
            run_batch([], tmp_path / "job", resume=True)
    assert run_batch([], tmp_path / "job", resume=True)["state"] == "done"
    with pytest.raises(FerError, match="no corpus job to resume"):
        run_batch([], tmp_path / "nothing", resume=True)
    assert not (tmp_path / "nothing").exists(), "a refused job leaves nothing behind"
