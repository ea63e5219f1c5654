"""Exporting runs: .keras, legacy .h5 and TFLite files that give the original's answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_core.errors import ModelFileError
from fer_core.labels import FER_LABELS
from fer_core.store.export import (
    ExportCheck,
    CLEAR_MARGIN,
    EXPORT_FORMATS,
    TFLITE_MAX_DIFF_POINTS,
    TFLiteRunner,
    export_bytes,
    export_filename,
    export_run,
    verify_export,
)
from fer_core.cli.models import EXIT_CHECK_FAILED
from fer_core.store.default_model import default_run
from fer_core.store.importing import import_model
from fer_core.paths import PROJECT_ROOT
from fer_core.preprocess import prepare_faces
from fer_core.store.runs import ModelStore
from tests.cli_helpers import run_cli


# The session's model is trained by the test session itself: it differs from run to run and from
# machine to machine, and so do its near-ties, which quantisation may flip (CI once saw 6 of the
# 560 demo faces flip with int8 weights). Agreement is therefore asserted on the clear cases only:
# faces where the original's top class leads the runner-up by more than CLEAR_MARGIN (0.1). On the
# shipped models' 3,589 PublicTest faces int8 weights move a probability by at most 0.035 and the
# widest lead they flipped was 0.031, so a clear face that changes class means a broken export;
# the 1% slack only spares a freak model. A scrambled output agrees on none (see the test below).
MIN_CLEAR_AGREEMENT = 0.99


def _assert_agrees_where_clear(check) -> None:
    assert check.n_clear >= check.n // 2, check  # a trained model is clear about most faces: never vacuous
    assert check.clear_agreement >= MIN_CLEAR_AGREEMENT, check


def _clear_rows(probs: np.ndarray) -> np.ndarray:
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0] > CLEAR_MARGIN


@pytest.mark.parametrize("fmt", ["tflite-float16", "tflite-dynamic"])
def test_tflite_export_predicts_like_the_original_on_demo_test_split(demo_run, fmt: str) -> None:
    store, run_id, ds = demo_run
    data = export_bytes(store, run_id, fmt)
    assert data[4:8] == b"TFL3"  # the FlatBuffer identifier of a TFLite model
    check = verify_export(store, run_id, fmt, data, ds, "test")
    assert check.n == len(ds.splits["test"].labels)
    _assert_agrees_where_clear(check)
    # The < 0.5-point accuracy bound is checked on the 3,589-image PublicTest split below:
    # on the 560 demo faces one point is 5.6 images, so it would measure training noise.
    assert check.original_accuracy > 0.5
    assert check.size_bytes < 0.6 * check.original_size_bytes

    # Independently of verify_export: run the file in the LiteRT interpreter on raw test faces.
    runner = TFLiteRunner(data)
    meta = store.read_meta(run_id)
    assert runner.input_shape == tuple(meta["input_shape"])
    test = ds.splits["test"]
    x = prepare_faces(test.images, meta["input_shape"], meta["preprocessing"])
    model = store.load_model(run_id)
    original, exported = np.asarray(model(x, training=False)), runner(x)
    clear = _clear_rows(original)
    assert clear.sum() == check.n_clear
    assert (original.argmax(1) == exported.argmax(1))[clear].mean() >= MIN_CLEAR_AGREEMENT


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_keras_and_h5_exports_are_exact(demo_run, tmp_path: Path, fmt: str) -> None:
    store, run_id, ds = demo_run
    model_path, sidecar = export_run(store, run_id, fmt, tmp_path)
    assert model_path.name == export_filename(run_id, fmt) and model_path.suffix == EXPORT_FORMATS[fmt]["suffix"]
    check = verify_export(store, run_id, fmt, model_path.read_bytes(), ds)
    assert check.agreement == 1.0 and check.difference_points == 0.0
    assert check.max_probability_difference < 1e-5
    conv = json.loads(sidecar.read_text())
    meta = store.read_meta(run_id)
    assert conv["labels"] == meta["labels"] and conv["input_shape"] == meta["input_shape"]
    assert conv["preprocessing"] == meta["preprocessing"] and conv["format"] == fmt

    # The exported file can be imported back (e.g. into another fer-studio) with its sidecar's conventions.
    other = ModelStore(tmp_path / "other-store")
    back = import_model(model_path, labels=conv["labels"], scale=conv["preprocessing"]["scale"], store=other)
    x = prepare_faces(ds.splits["test"].images[:64], conv["input_shape"], conv["preprocessing"])
    np.testing.assert_allclose(np.asarray(other.load_model(back.run_id)(x)), np.asarray(store.load_model(run_id)(x)),
                               atol=1e-5)


def test_export_of_an_imported_alphabetical_model_keeps_its_label_order(tmp_path: Path, demo_run) -> None:
    """An imported run's export carries its own order, and the check compares in canonical order."""
    from fer_core.training.architectures import build_model

    store, _, ds = demo_run
    path = tmp_path / "nb.h5"
    # An untrained network answers near-ties that float16 weights may flip, and a different one each
    # time unless seeded: seed 4's answers are clear (its top class leads by more than 0.28 on these
    # faces), so the check must agree on every face, and would agree on none were the order mixed up.
    build_model("mini_xception", input_shape=(48, 48, 3), seed=4).save(path)
    own = ModelStore(tmp_path / "store")
    run = import_model(path, labels="alphabetical", scale="0-1", store=own)
    out, sidecar = export_run(own, run.run_id, "tflite-float16", tmp_path / "out")
    conv = json.loads(sidecar.read_text())
    assert conv["labels"] == sorted(FER_LABELS) and conv["input_shape"] == [48, 48, 3]
    check = verify_export(own, run.run_id, "tflite-float16", out.read_bytes(), ds, max_images=100)
    assert check.n == 100 and check.n_clear >= 90, check
    assert check.clear_agreement >= MIN_CLEAR_AGREEMENT, check


def test_check_fails_an_export_that_scrambles_the_classes(demo_run, tmp_path: Path, monkeypatch, capsys) -> None:
    """What the agreement and accuracy rules are for: an export that answers other classes fails both."""
    from fer_core.cli.main import main
    from fer_core.store import export as export_module

    store, run_id, ds = demo_run
    real = export_module._exported_predict_fn
    monkeypatch.setattr(export_module, "_exported_predict_fn",
                        lambda *a: (lambda x, fn=real(*a): np.roll(fn(x), 1, axis=1)))  # class k answered as k+1
    check = verify_export(store, run_id, "tflite-dynamic", export_bytes(store, run_id, "tflite-dynamic"), ds)
    assert check.n_clear >= check.n // 2 and check.clear_agreement < 0.2, check
    assert abs(check.difference_points) >= TFLITE_MAX_DIFF_POINTS and "moved accuracy" in check.problem, check
    monkeypatch.setenv("FER_MODELS_DIR", str(store.root))
    code = main(["export", run_id, "--format", "tflite-dynamic", "--out", str(tmp_path), "--check", "demo",
                 "--no-progress"])
    assert code == EXIT_CHECK_FAILED
    assert "moved accuracy" in capsys.readouterr().out


def _check(n: int, gained: int, lost: int) -> ExportCheck:
    return ExportCheck(format="tflite-dynamic", split="test", n=n, size_bytes=1, original_size_bytes=1,
                       original_accuracy=0.6, exported_accuracy=0.6 + (gained - lost) / n, agreement=1.0,
                       max_probability_difference=0.0, seconds=0.0, gained=gained, lost=lost)


def test_the_accuracy_rule_tells_a_broken_export_from_flipped_near_ties() -> None:
    """0.5 points or more, and more than chance: 3 of the 560 demo faces flipped one way is noise
    (0.54 points), 30 is not; on PublicTest 20 faces lost and none gained (0.56 points) is a real move."""
    assert _check(560, 0, 2).problem is None  # 0.36 points
    assert _check(560, 1, 4).problem is None  # 0.54 points, |1-4| = 3 <= 2 sqrt(5)
    assert _check(560, 0, 3).problem is None  # 0.54 points, 3 <= 2 sqrt(3)
    assert "moved accuracy by -5.36 points" in _check(560, 0, 30).problem
    assert _check(3589, 0, 20).problem is not None
    assert _check(3589, 40, 60).problem is None  # 0.56 points, 20 <= 2 sqrt(100)


def test_bad_export_requests(demo_run, tmp_path: Path) -> None:
    store, run_id, ds = demo_run
    with pytest.raises(ModelFileError, match="Unknown export format"):
        export_bytes(store, run_id, "onnx")
    with pytest.raises(ModelFileError, match="no 'validation' split"):
        verify_export(store, run_id, "keras", b"", ds, "validation")
    with pytest.raises(ModelFileError, match="Not a usable TFLite model"):
        TFLiteRunner(b"not a flatbuffer at all")
    with pytest.raises(ModelFileError, match="No run"):
        export_bytes(ModelStore(tmp_path / "empty"), "nope", "h5")


def test_cli_export_writes_files_and_reports_the_check(demo_run, tmp_path: Path, monkeypatch) -> None:
    store, run_id, _ = demo_run
    monkeypatch.setenv("FER_MODELS_DIR", str(store.root))
    out = tmp_path / "exports"
    res = run_cli("export", run_id, "--format", "h5", "--format", "tflite-dynamic", "--out", str(out),
                  "--check", "demo", "--no-progress")
    assert res.returncode in (0, EXIT_CHECK_FAILED), res.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([f"{run_id}.h5", f"{run_id}.h5.json", f"{run_id}-dynamic.tflite",
                            f"{run_id}-dynamic.tflite.json"])
    check = json.loads((out / f"{run_id}-dynamic.tflite.json").read_text())["check"]
    assert check["n_clear"] >= check["n"] // 2 and check["clear_agreement"] >= MIN_CLEAR_AGREEMENT, check
    # The exit status says whether the accuracy moved more than allowed, and the output why.
    moved = check["problem"] is not None
    assert res.returncode == (EXIT_CHECK_FAILED if moved else 0)
    assert ("moved accuracy" in res.stdout) == moved
    assert "tflite-dynamic" in res.stdout and "same class" in res.stdout and "clear cases" in res.stdout
    res = run_cli("export", "no-such-run", "--format", "h5", "--out", str(out))
    assert res.returncode == 2 and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def publictest(fer2013_zip: Path):
    from fer_core.data import load_dataset

    return load_dataset(fer2013_zip)  # decoded once for both formats


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("fmt", ["tflite-float16", "tflite-dynamic"])
def test_tflite_export_of_the_shipped_model_keeps_its_publictest_accuracy(fmt: str, publictest) -> None:
    """The issue's bound: a TFLite export moves PublicTest accuracy by less than 0.5 points."""
    store = ModelStore(PROJECT_ROOT / "models")
    run = default_run(store)
    check = verify_export(store, run.run_id, fmt, export_bytes(store, run.run_id, fmt), publictest, "test")
    assert check.n == 3589
    assert abs(check.difference_points) < TFLITE_MAX_DIFF_POINTS, check
    assert check.agreement >= 0.99, check
