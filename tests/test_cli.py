"""The command line end to end, in subprocesses, on data the tests make and the demo set."""

from __future__ import annotations

import json
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
    assert res.returncode == 0, res.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == ["astronaut.jpg", "junk.jpg"]
    face, bad = rows
    assert face["status"] == "faces" and face["face"] == "1" and int(face["w"]) > 50
    probs = [float(face[f"p_{lab}"]) for lab in FER_LABELS]
    assert abs(sum(probs) - 1) < 0.01 and face["label"] == FER_LABELS[int(np.argmax(probs))]
    assert bad["status"] == "error" and bad["error"] and "junk.jpg" in res.stdout
