"""Calibration: ECE and reliability bins, temperature fitting, the engine applying a run's
temperature, and `calibrate` fitting it on the run's own validation split (never a test split)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fer_core.calibration import (
    apply_temperature,
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from fer_core.errors import FerError
from fer_core.inference.evaluation import compute_metrics


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sampled(n: int, true_t: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits z; labels drawn from softmax(z / true_t); returns (softmax(z), labels): a model that
    is calibrated after dividing its logits by true_t."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3.0, (n, 7))
    p_true = softmax(z / true_t)
    y = np.array([rng.choice(7, p=row) for row in p_true])
    return softmax(z).astype(np.float32), y


def test_ece_is_small_for_a_calibrated_model_and_large_for_an_overconfident_one() -> None:
    calibrated, y = sampled(20_000, 1.0)
    over, y2 = sampled(20_000, 2.5, seed=1)  # the truth is softer than what the model says
    assert expected_calibration_error(calibrated, y) < 0.02
    assert expected_calibration_error(over, y2) > 0.1
    bins = reliability_bins(over, y2)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 20_000
    full = [b for b in bins if b["count"] > 200]
    assert all(b["accuracy"] < b["confidence"] for b in full[-3:])  # over-confident at the top


@pytest.mark.parametrize("true_t", [0.6, 2.0])
def test_the_fitted_temperature_recovers_the_truth_and_keeps_every_top_class(true_t: float) -> None:
    probs, y = sampled(8_000, true_t, seed=2)
    t = fit_temperature(probs, y)
    assert abs(t - true_t) / true_t < 0.1, t
    after = apply_temperature(probs, t)
    assert np.array_equal(after.argmax(axis=1), probs.argmax(axis=1))
    assert np.allclose(after.sum(axis=1), 1.0, atol=1e-5)
    report = calibration_report(probs, y, t)
    assert report["ece_after"] < report["ece_before"] and report["nll_after"] < report["nll_before"]
    assert apply_temperature(probs, 1.0) is probs
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            apply_temperature(probs, bad)
    with pytest.raises(ValueError, match="at least 20"):
        fit_temperature(probs[:5], y[:5])


def test_evaluation_reports_ece_and_reliability() -> None:
    probs, y = sampled(2_000, 2.0, seed=3)
    m = compute_metrics(y, probs.astype(np.float64))
    assert m["ece"] == pytest.approx(expected_calibration_error(probs, y))
    assert sum(b["count"] for b in m["reliability"]) == 2_000


@pytest.fixture
def own_run(demo_run, tmp_path):
    """A copy of the session's demo run in a store of its own (calibration writes its meta.json)."""
    from fer_core.store.runs import ModelStore

    store, run_id, ds = demo_run
    shutil.copytree(store.root / run_id, tmp_path / run_id)
    return ModelStore(tmp_path), run_id, ds


def test_calibrate_fits_on_the_runs_validation_split_and_every_page_gets_it(own_run) -> None:
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.inference.evaluation import evaluate_run
    from fer_core.store.prediction import ModelRunner
    from fer_core.training.calibrate import calibrate_run, validation_faces

    store, run_id, ds = own_run
    x_val, y_val, where = validation_faces(store.read_meta(run_id), ds)
    assert "train fraction" in where and len(y_val) == round(0.2 * len(ds.splits["train"].labels))
    rec = calibrate_run(store, run_id, ds)
    meta = store.read_meta(run_id)
    assert meta["calibration"]["temperature"] == rec["temperature"] != 1.0 and rec["n"] == len(y_val)
    # what the fit guarantees on the faces it was fitted on (T = 1 is among the candidates): the
    # log-likelihood does not get worse; ECE usually falls too, but is not what is minimised
    assert rec["nll_after"] <= rec["nll_before"] + 1e-4
    faces = ds.splits["test"].images[:40]
    raw = ModelRunner.from_run(store, run_id, temperature=1.0).probabilities(faces)
    expected = apply_temperature(raw, rec["temperature"])
    assert np.allclose(ModelRunner.from_run(store, run_id).probabilities(faces), expected, atol=1e-5)
    assert np.allclose(EmotionClassifier.from_store(store, run_id).predict_proba(list(faces)), expected, atol=1e-4)
    ev = evaluate_run(store, run_id, ds, split="test")
    assert ev["temperature"] == rec["temperature"] and ev["ece"] is not None and ev["reliability"]


def test_calibrate_refuses_a_test_split_another_dataset_and_a_shipped_model(own_run, tmp_path) -> None:
    from fer_core.data import load_dataset
    from fer_core.training.calibrate import calibrate_run

    store, run_id, ds = own_run
    meta = store.read_meta(run_id)
    other = load_dataset(str(_tiny_folder(tmp_path / "other")))
    with pytest.raises(FerError, match="not the dataset the run trained on"):
        calibrate_run(store, run_id, other)
    store.write_meta(run_id, {**meta, "params": {**meta["params"], "validation": "test"}})
    with pytest.raises(FerError, match="tune to a test set"):
        calibrate_run(store, run_id, ds)
    store.write_meta(run_id, {**meta, "shipped": {"default": False}})
    with pytest.raises(FerError, match="shipped model"):
        calibrate_run(store, run_id, ds)
    assert "calibration" not in store.read_meta(run_id)
    assert calibrate_run(store, run_id, ds, write=False)["temperature"] > 0  # a dry run may look


def _tiny_folder(root):
    """A 7-class image folder dataset with a few gray faces per class (not the demo set)."""
    import cv2

    rng = np.random.default_rng(5)
    for split in ("train", "test"):
        for c in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
            (root / split / c).mkdir(parents=True)
            for i in range(4):
                cv2.imwrite(str(root / split / c / f"{i}.png"), rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return root


def test_a_broken_recorded_temperature_is_ignored() -> None:
    from fer_core.store.prediction import recorded_temperature

    assert recorded_temperature({}) == 1.0
    assert recorded_temperature({"calibration": {"temperature": 1.3}}) == 1.3
    for bad in ("x", -2, 0, None, float("inf")):
        assert recorded_temperature({"calibration": {"temperature": bad}}) == 1.0
    assert recorded_temperature({"calibration": "nonsense"}) == 1.0
