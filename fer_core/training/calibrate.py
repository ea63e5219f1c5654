"""Fit a run's calibration temperature on its own validation split and record it in meta.json.

The validation split is rebuilt exactly as training drew it (fer_core.training.split with the
run's stored settings: the same stratified fraction of train and seed), so the temperature is
fitted on faces the model was selected on but never trained on, and never on a test split. The
one engine (ModelRunner.from_run) then applies it on every page (fer_core.calibration).
"""

from __future__ import annotations

from typing import Any

from fer_core.calibration import calibration_report, fit_temperature
from fer_core.errors import FerError
from fer_core.store.atomic import now_iso
from fer_core.store.prediction import ModelRunner
from fer_core.store.runs import ModelStore
from fer_core.training.config import TrainConfig
from fer_core.training.split import prepare_training_data

#: Split names a validation may use for fitting; any other named split could be a test set.
VALIDATION_SPLITS = ("val", "validation", "PrivateTest_val")


def validation_faces(meta: dict[str, Any], dataset: Any) -> tuple[Any, Any, str]:
    """(images, labels, description) of the run's validation split in `dataset` (its training data)."""
    params = meta.get("params") or {}
    if not params:
        raise FerError("this run records no training settings (an imported model?): its validation split is "
                       "unknown, so there is nothing to fit a temperature on")
    trained_on = (meta.get("dataset") or {}).get("fingerprint")
    if trained_on and trained_on != getattr(dataset, "fingerprint", None):
        raise FerError(f"this is not the dataset the run trained on ({(meta.get('dataset') or {}).get('name')}): "
                       "its validation split is part of that one; pass it with --data")
    config = TrainConfig.from_settings(params)
    if config.validation_fraction is None and config.validation not in VALIDATION_SPLITS:
        raise FerError(f"the run validated on the {config.validation!r} split: fitting a temperature there would "
                       "tune to a test set; retrain with a validation fraction (--val 0.1)")
    data = prepare_training_data(dataset, config)
    what = f"validation split ({data.validation_source}, seed {config.seed}) of {getattr(dataset, 'name', 'the dataset')}"
    return data.x_val, data.y_val, what


def calibrate_run(store: ModelStore, run_id: str, dataset: Any, *, write: bool = True,
                  allow_shipped: bool = False) -> dict[str, Any]:
    """Fit the temperature of `run_id` on its validation split; record it in meta.json (`calibration`).

    Returns the record: temperature, faces, ECE and NLL before and after, where it was fitted.
    A shipped model's folder is read-only (FerError) unless `allow_shipped` (docs/ship_model.py).
    """
    meta = store.read_meta(run_id)
    if meta.get("shipped") and write and not allow_shipped:
        raise FerError(f"{meta.get('name') or run_id} is a shipped model: it comes calibrated "
                       f"(temperature {((meta.get('calibration') or {}).get('temperature', 1.0)):.2f}) and its folder "
                       "is read-only; use --dry-run to see the fit")
    x_val, y_val, where = validation_faces(meta, dataset)
    runner = ModelRunner.from_run(store, run_id, temperature=1.0)  # the model's own probabilities
    probs = runner.probabilities(x_val)
    temperature = fit_temperature(probs, y_val)
    record = {**calibration_report(probs, y_val, temperature), "fitted_on": where, "timestamp": now_iso()}
    if write:
        if meta.get("shipped"):
            store.write_meta(run_id, {**meta, "calibration": record})
        else:
            store.update_meta(run_id, calibration=record)
    return record
