"""Calibrate the shipped models and refresh their bundled PublicTest evaluation (a maintainer's tool).

    .venv/bin/python docs/calibrate_shipped.py [--data ../shared/data/fer2013.zip]

For every shipped model under models/: fits its temperature on its own validation split of
FER-2013 (fer_core.training.calibrate: the stratified fraction of train and seed it trained with,
never the test split), records it in its meta.json, then evaluates it on PublicTest (the `test`
split) through the one engine, so the bundled evaluation_test.json carries the calibrated
probabilities, the expected calibration error and the reliability bins. Accuracy does not change.
Prints one line per model: temperature, validation ECE before/after, PublicTest ECE before/after.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_core.calibration import apply_temperature, expected_calibration_error  # noqa: E402
from fer_core.data import load_dataset  # noqa: E402
from fer_core.inference.evaluation import evaluate_runner  # noqa: E402
from fer_core.store.atomic import atomic_write_json  # noqa: E402
from fer_core.store.prediction import ModelRunner  # noqa: E402
from fer_core.store.runs import ModelStore  # noqa: E402
from fer_core.training.calibrate import calibrate_run  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013.zip"))
    args = p.parse_args()
    store = ModelStore(ROOT / "models")
    ds = load_dataset(args.data)
    test = ds.splits["test"]
    for run in store.list_runs():
        meta = run.meta or {}
        if not meta.get("shipped"):
            continue
        rec = calibrate_run(store, run.run_id, ds, allow_shipped=True)
        runner = ModelRunner.from_run(store, run.run_id)
        bundled = json.loads((run.path / "evaluation_test.json").read_text())
        ev = evaluate_runner(runner, test.images, test.labels, sources=getattr(test, "sources", None), split="test",
                             dataset_info=bundled.get("dataset"))
        ev["run_id"] = run.run_id
        atomic_write_json(run.path / "evaluation_test.json", ev)
        raw = ModelRunner.from_run(store, run.run_id, temperature=1.0).probabilities(test.images)
        before = expected_calibration_error(raw, test.labels)
        check = expected_calibration_error(apply_temperature(raw, rec["temperature"]), test.labels)
        print(f"{run.run_id}: T {rec['temperature']:.3f}  validation ECE {rec['ece_before']:.3f} -> {rec['ece_after']:.3f}  "
              f"PublicTest ECE {before:.3f} -> {ev['ece']:.3f} (check {check:.3f})  accuracy {ev['accuracy']:.4f} "
              f"(bundled before: {bundled.get('accuracy'):.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
