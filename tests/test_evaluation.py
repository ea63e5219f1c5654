"""Evaluation: metrics JSON, confusion matrix, label reordering, TTA, saved results."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from fer_core.inference.evaluation import compute_metrics, evaluate_model, evaluate_run
from fer_core.labels import ALPHABETICAL_LABELS, FER_LABELS
from fer_core.store.runs import ModelStore

PREP = {"color": "grayscale", "scale": "0-1"}


def _alphabetical_copy(model: keras.Model) -> keras.Model:
    """The same network with its output columns permuted into ALPHABETICAL_LABELS order."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    perm = [FER_LABELS.index(name) for name in ALPHABETICAL_LABELS]
    last = [layer for layer in twin.layers if layer.get_weights()][-1]
    kernel, bias = last.get_weights()
    last.set_weights([kernel[..., perm], bias[perm]])
    return twin


def test_evaluate_model_fields(demo_run) -> None:
    store, run_id, ds = demo_run
    test = ds.splits["test"]
    model = store.load_model(run_id)
    r = evaluate_model(model, test.images, test.labels, FER_LABELS, (48, 48, 1), PREP,
                       sources=test.sources, split="test", dataset_info={"fingerprint": ds.fingerprint})
    n = len(test.labels)
    for key in ("split", "n", "labels", "dataset", "timestamp", "accuracy", "log_loss", "macro_f1", "per_class",
                "report", "confusion_matrix", "roc", "macro_roc_auc", "predictions", "top2_accuracy"):
        assert key in r, key
    assert r["split"] == "test" and r["n"] == n and r["labels"] == list(FER_LABELS)
    assert r["dataset"]["fingerprint"] == ds.fingerprint
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == n
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(test.labels, minlength=7))  # rows are true
    assert r["accuracy"] == pytest.approx(np.trace(cm) / n)
    assert r["accuracy"] >= 0.6 and r["log_loss"] > 0
    assert set(r["per_class"]) == set(FER_LABELS)
    assert sum(c["support"] for c in r["per_class"].values()) == n
    assert r["macro_f1"] == pytest.approx(np.mean([c["f1"] for c in r["per_class"].values()]))
    for name, curve in r["roc"].items():
        assert 2 <= len(curve["fpr"]) == len(curve["tpr"]) <= 100
        assert curve["fpr"][0] == 0.0 and curve["tpr"][-1] == 1.0
        assert 0.5 < curve["auc"] <= 1.0 and r["per_class"][name]["roc_auc"] == pytest.approx(curve["auc"], abs=1e-4)
    preds = r["predictions"]
    assert len(preds) == n and preds[0]["index"] == 0 and preds[0]["source"] == str(test.sources[0])
    for p in preds[:20]:
        assert len(p["probs"]) == 7 and abs(sum(p["probs"]) - 1) < 1e-2
        assert p["pred"] == FER_LABELS[int(np.argmax(p["probs"]))] and p["true"] in FER_LABELS
        assert all(v == round(v, 4) for v in p["probs"])
    assert sum(not p["correct"] for p in preds) == n - np.trace(cm)
    json.dumps(r, allow_nan=False)  # plain JSON


def test_alphabetical_model_is_reordered(demo_run) -> None:
    store, run_id, ds = demo_run
    test = ds.splits["test"]
    model = store.load_model(run_id)
    alpha = _alphabetical_copy(model)
    x = test.images[:8, ..., None].astype("float32") / 255.0
    assert not np.allclose(alpha(x), model(x))  # the columns really moved
    base = evaluate_model(model, test.images, test.labels, FER_LABELS, (48, 48, 1), PREP)
    right = evaluate_model(alpha, test.images, test.labels, ALPHABETICAL_LABELS, (48, 48, 1), PREP)
    wrong = evaluate_model(alpha, test.images, test.labels, FER_LABELS, (48, 48, 1), PREP)
    assert right["accuracy"] == pytest.approx(base["accuracy"])
    assert right["confusion_matrix"] == base["confusion_matrix"]
    assert wrong["accuracy"] < base["accuracy"] - 0.2


def test_evaluate_run_saves_json_and_uses_meta_labels(demo_run, tmp_path) -> None:
    store, run_id, ds = demo_run
    r = evaluate_run(store, run_id, ds, split="test")
    assert r["run_id"] == run_id and r["same_dataset_as_training"] is True and "warning" not in r
    saved = store.load_evaluation(run_id, "test")
    assert saved["accuracy"] == r["accuracy"] and len(saved["predictions"]) == r["n"]
    metrics = store.get(run_id).metrics
    assert metrics["test_accuracy"] == r["accuracy"]
    (listed,) = store.list_evaluations(run_id)
    assert (listed.key.split, listed.key.fingerprint, listed.key.tta) == ("test", ds.fingerprint, False)
    assert listed.n == r["n"] and listed.synthetic and "synthetic" in listed.label

    # An imported model with alphabetical labels in its meta is scored the same.
    other = ModelStore(tmp_path / "m")
    meta = {k: v for k, v in store.read_meta(run_id).items() if k not in ("run_id", "created", "updated")}
    imported = other.create_run({**meta, "labels": list(ALPHABETICAL_LABELS), "status": "finished"})
    other.save_model(imported.run_id, _alphabetical_copy(store.load_model(run_id)))
    r2 = evaluate_run(other, imported.run_id, ds, split="test")
    assert r2["accuracy"] == pytest.approx(r["accuracy"]) and r2["model_labels"] == list(ALPHABETICAL_LABELS)
    with pytest.raises(ValueError, match="no 'private_test' split"):
        evaluate_run(store, run_id, ds, split="private_test")


def test_tta_and_logit_outputs(demo_run) -> None:
    store, run_id, ds = demo_run
    test = ds.splits["test"]
    model = store.load_model(run_id)
    r = evaluate_model(model, test.images, test.labels, FER_LABELS, (48, 48, 1), PREP, tta=True, batch_size=64)
    assert r["tta"] is True and r["accuracy"] >= 0.6
    # TTA is the mean of each face's probabilities and its mirror image's.
    plain = evaluate_model(model, test.images, test.labels, FER_LABELS, (48, 48, 1), PREP)
    mirrored = evaluate_model(model, test.images[:, :, ::-1], test.labels, FER_LABELS, (48, 48, 1), PREP)
    expected = (np.array([p["probs"] for p in plain["predictions"]])
                + np.array([p["probs"] for p in mirrored["predictions"]])) / 2
    assert np.abs(np.array([p["probs"] for p in r["predictions"]]) - expected).max() < 2e-4  # rounded to 4 places
    assert not np.allclose(expected, [p["probs"] for p in plain["predictions"]], atol=1e-3)  # the mirror mattered
    # A model ending in logits (no softmax) still yields probabilities.
    inp = keras.Input((48, 48, 1))
    logits = keras.layers.Dense(7)(keras.layers.Flatten()(inp))
    r = evaluate_model(keras.Model(inp, logits), test.images[:30], test.labels[:30], FER_LABELS, (48, 48, 1), PREP)
    assert all(abs(sum(p["probs"]) - 1) < 1e-2 for p in r["predictions"])
    # RGB models at another size get resized 3-channel input.
    inp = keras.Input((64, 64, 3))
    out = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inp))
    r = evaluate_model(keras.Model(inp, out), test.images[:10], test.labels[:10], FER_LABELS, (64, 64, 3),
                       {"color": "rgb", "scale": "-1-1"})
    assert r["n"] == 10


def test_compute_metrics_handles_absent_class() -> None:
    y = np.array([0, 0, 1, 1, 3])
    probs = np.eye(7)[[0, 1, 1, 1, 3]] * 0.9 + 0.1 / 7
    m = compute_metrics(y, probs)
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["per_class"]["fear"]["support"] == 0 and m["per_class"]["fear"]["roc_auc"] is None
    assert m["roc"]["fear"] == {"fpr": [], "tpr": [], "auc": None}
    assert np.array(m["confusion_matrix"]).sum() == 5


def test_evaluate_and_predict_give_the_same_probabilities(demo_run) -> None:
    """Evaluate (evaluate_run) and Predict / the webcam (EmotionClassifier) call the model through one
    engine: the same faces get the same probabilities, an alphabetical model's included."""
    from fer_core.inference.classifier import EmotionClassifier

    store, run_id, ds = demo_run
    test = ds.splits["test"]
    evaluated = np.array([p["probs"] for p in evaluate_run(store, run_id, ds, split="test")["predictions"]])
    predicted = EmotionClassifier.from_store(store, run_id, warm_up_to=0).predict_proba(list(test.images))
    assert predicted.shape == evaluated.shape == (len(test.labels), 7)
    assert np.abs(predicted - evaluated).max() < 1e-4  # evaluations keep 4 decimals

    model = store.load_model(run_id)
    alpha = _alphabetical_copy(model)
    r = evaluate_model(alpha, test.images[:50], test.labels[:50], ALPHABETICAL_LABELS, (48, 48, 1), PREP)
    clf = EmotionClassifier(alpha, ALPHABETICAL_LABELS, (48, 48, 1), PREP, warm_up_to=0)
    assert np.abs(clf.predict_proba(list(test.images[:50])) - [p["probs"] for p in r["predictions"]]).max() < 1e-4
    assert np.abs(clf.predict_proba(list(test.images[:50])) - predicted[:50]).max() < 1e-4


def test_evaluate_and_predict_read_a_stored_run_the_same_way(demo_run, tmp_path) -> None:
    """Both build their engine with ModelRunner.from_run: a run whose meta.json lists labels its model
    cannot have is refused by both, with one message."""
    import shutil

    from fer_core.errors import ModelFileError
    from fer_core.inference.classifier import EmotionClassifier

    store, run_id, ds = demo_run
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(store.run_dir(run_id), copy.root / run_id)
    copy.update_meta(run_id, labels=["happy", "sad", "angry"])
    with pytest.raises(ModelFileError, match="label list") as predict_error:
        EmotionClassifier.from_store(copy, run_id, warm_up_to=0)
    with pytest.raises(ModelFileError, match="label list") as evaluate_error:
        evaluate_run(copy, run_id, ds, split="test")
    assert str(predict_error.value) == str(evaluate_error.value)
