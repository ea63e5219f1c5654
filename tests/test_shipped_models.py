"""The models shipped in models/: loadable, self-describing, and as accurate as the README says."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fer_core.store.default_model import default_run
from fer_core.labels import FER_LABELS
from fer_core.paths import PROJECT_ROOT
from fer_core.store.runs import ModelStore
from model_helpers import SHIPPED, SHIPPED_ROOT



def test_a_default_model_ships() -> None:
    assert SHIPPED, "no shipped model under models/"
    run = default_run(ModelStore(SHIPPED_ROOT))
    assert run is not None and run.run_id in SHIPPED
    assert run.meta["shipped"].get("default") is True


@pytest.mark.parametrize("run_id", SHIPPED)
def test_shipped_model_is_complete_and_loads_safely(run_id: str) -> None:
    store = ModelStore(SHIPPED_ROOT)
    info = store.get(run_id)
    # "stopped": ended by its time budget before its planned epochs (vgg_fer-fer2013: 134 of 150), best epoch kept
    assert info.status in ("finished", "stopped") and info.usable and info.meta["best_epoch"]
    assert info.meta["labels"] == list(FER_LABELS)
    assert info.model_path.stat().st_size < 25 * 2**20
    model = store.load_model(run_id)  # safe_mode=True
    assert tuple(model.output_shape) == (None, len(FER_LABELS))
    assert list(model.input_shape[1:]) == info.meta["input_shape"]
    ev = store.load_evaluation(run_id, "test")
    assert ev is not None and ev["n"] == 3589 and not ev["dataset"].get("synthetic")


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("run_id", SHIPPED)
def test_shipped_model_reproduces_its_readme_accuracy(run_id: str, fer2013_zip: Path, tmp_path: Path) -> None:
    """Evaluate on the real PublicTest split (a copy of the run, so models/ is not rewritten)."""
    from fer_core.data import load_dataset
    from fer_core.inference.evaluation import evaluate_run

    shutil.copytree(SHIPPED_ROOT / run_id, tmp_path / run_id)
    store = ModelStore(tmp_path)
    shipped = store.load_evaluation(run_id, "test")
    result = evaluate_run(store, run_id, load_dataset(fer2013_zip), split="test")
    assert result["n"] == 3589
    assert result["accuracy"] == pytest.approx(shipped["accuracy"], abs=0.002)
    assert result["macro_f1"] == pytest.approx(shipped["macro_f1"], abs=0.003)
    row = next(ln for ln in (PROJECT_ROOT / "README.md").read_text().splitlines()
               if ln.startswith(f"| `{run_id}`"))
    figures = re.findall(r"(\d+\.\d)%", row)
    assert f"{100 * result['accuracy']:.1f}" in figures, row


@pytest.mark.slow
@pytest.mark.shared_data
def test_default_model_meets_the_accuracy_targets_with_tta(fer2013_zip: Path, tmp_path: Path) -> None:
    """What `python -m fer_core evaluate --data fer2013.zip --tta` reports for the default model: >= 70% on
    PublicTest with the flip TTA the app uses, macro F1 >= 0.65, disgust recall >= 40%."""
    from fer_core.data import load_dataset
    from fer_core.inference.evaluation import evaluate_run

    run = default_run(ModelStore(SHIPPED_ROOT))
    assert run is not None
    shutil.copytree(SHIPPED_ROOT / run.run_id, tmp_path / run.run_id)
    result = evaluate_run(ModelStore(tmp_path), run.run_id, load_dataset(fer2013_zip), split="test", tta=True)
    assert result["n"] == 3589 and result["tta"]
    assert result["accuracy"] >= 0.70, result["accuracy"]
    assert result["macro_f1"] >= 0.65, result["macro_f1"]
    assert result["report"]["disgust"]["recall"] >= 0.40, result["report"]["disgust"]
