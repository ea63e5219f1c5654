"""Importing models trained elsewhere: conventions stored and used, label-order check, safety."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fer_core.inference.classifier import EmotionClassifier
from fer_core.errors import ModelFileError
from fer_core.labels import ALPHABETICAL_LABELS, FER_LABELS
from fer_core.store.conventions import apply_conventions, check_run_conventions
from fer_core.store.importing import import_model, resolve_labels, summarize_model_file
from fer_core.store.safety import inspect_model_file
from fer_core.store.runs import ModelStore
from fer_core.store.model_files import load_model_file
from tests.cli_helpers import run_cli
from tests.foreign_models import FER_PACKAGE, NOTEBOOK, Convention, model_predictions, train_foreign

# Classes whose index differs between the CSV and the alphabetical order.
MOVED = {"sad", "surprise", "neutral"}


@pytest.fixture(scope="module")
def demo():
    from fer_core.data import load_demo

    return load_demo()


@pytest.fixture(scope="module")
def foreign(demo, tmp_path_factory):
    """{convention name: (convention, model, {".h5": path, ".keras": path})}, trained once."""
    out = {}
    folder = tmp_path_factory.mktemp("foreign")
    for conv in (NOTEBOOK, FER_PACKAGE):
        model = train_foreign(conv, demo)
        files = {}
        for suffix in (".h5", ".keras"):
            path = folder / f"{conv.name}_model{suffix}"
            model.save(path)
            files[suffix] = path
        out[conv.name] = (conv, model, files)
    return out


def _known_face(conv: Convention, model, demo) -> tuple[np.ndarray, str]:
    """A demo test face of a class the two label orders disagree on, that the model gets right."""
    test = demo.splits["test"]
    pred = model_predictions(model, conv, test.images)
    for i in np.flatnonzero(pred == test.labels):
        name = FER_LABELS[int(test.labels[i])]
        if name in MOVED:
            return test.images[i], name
    pytest.fail(f"the {conv.name} model gets no sad/surprise/neutral test face right")


@pytest.mark.parametrize("conv_name", ["notebook", "fer_package"])
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_import_stores_conventions_and_predicts_known_face(foreign, demo, conv_name: str, suffix: str) -> None:
    conv, model, files = foreign[conv_name]
    store = ModelStore()
    run = import_model(files[suffix], labels=conv.order, scale=conv.scale, name=f"{conv_name} import", store=store)
    meta = run.meta
    assert run.status == "finished" and run.usable
    assert meta["architecture"] == "imported" and meta["name"] == f"{conv_name} import"
    assert meta["input_shape"] == list(conv.input_shape)  # read from the model itself
    assert meta["preprocessing"] == conv.preprocessing
    assert meta["labels"] == list(conv.labels) and meta["label_order"] == conv.order
    assert meta["imported"]["format"] == suffix.strip(".") and meta["imported"]["file"] == files[suffix].name
    assert len(meta["imported"]["sha256"]) == 64 and meta["num_params"] == model.count_params()
    assert conv_name.split("_")[0] in run.run_id

    face, truth = _known_face(conv, model, demo)
    clf = EmotionClassifier.from_store(store, run.run_id, warm_up_to=0)
    assert clf.predict([face])[0].label == truth
    # The same file imported with the other label order mislabels that face: the order matters.
    other = "csv" if conv.order == "alphabetical" else "alphabetical"
    wrong = import_model(files[suffix], labels=other, scale=conv.scale, store=store)
    assert EmotionClassifier.from_store(store, wrong.run_id, warm_up_to=0).predict([face])[0].label != truth


@pytest.mark.parametrize("conv_name", ["notebook", "fer_package"])
def test_label_order_check_picks_the_right_order_on_demo_set(foreign, demo, conv_name: str) -> None:
    conv, _, files = foreign[conv_name]
    store = ModelStore()
    wrong_order = "csv" if conv.order == "alphabetical" else "alphabetical"
    run = import_model(files[".h5"], labels=wrong_order, scale="0-255", store=store)
    report = check_run_conventions(store, run.run_id, demo)
    assert report["split"] == "test" and report["n"] == len(demo.splits["test"].labels) and report["synthetic"]
    best = report["best"]
    assert (best["order"], best["scale"]) == (conv.order, conv.scale)
    assert best["labels"] == list(conv.labels)
    assert not report["matches"]  # the stored (wrong) conventions are flagged
    assert report["current"]["accuracy"] < best["accuracy"] - 0.2
    runner_up = next(s for s in report["scores"] if s["scale"] == conv.scale and s["order"] == wrong_order)
    assert best["accuracy"] - runner_up["accuracy"] > 0.1

    apply_conventions(store, run.run_id, best["labels"], best["scale"])
    again = check_run_conventions(store, run.run_id, demo)
    assert again["matches"] and again["current"] == again["best"]


def test_apply_conventions_drops_stale_evaluations(foreign, demo) -> None:
    from fer_core.inference.evaluation import evaluate_run

    conv, _, files = foreign["notebook"]
    store = ModelStore()
    run = import_model(files[".keras"], labels="csv", scale=conv.scale, store=store)
    wrong = evaluate_run(store, run.run_id, demo)
    assert [e.key.split for e in store.list_evaluations(run.run_id)] == ["test"]
    apply_conventions(store, run.run_id, "alphabetical", conv.scale)
    assert store.list_evaluations(run.run_id) == []
    right = evaluate_run(store, run.run_id, demo)
    assert right["accuracy"] > wrong["accuracy"] + 0.1
    meta = store.read_meta(run.run_id)
    assert meta["labels"] == list(ALPHABETICAL_LABELS) and meta["label_order"] == "alphabetical"


def test_shipped_model_conventions_are_not_changed(tmp_path: Path) -> None:
    import shutil

    from model_helpers import SHIPPED, SHIPPED_ROOT

    store = ModelStore(tmp_path / "store")
    shutil.copytree(SHIPPED_ROOT / SHIPPED[0], store.root / SHIPPED[0])
    before = store.read_meta(SHIPPED[0])
    with pytest.raises(ModelFileError, match="ships with fer-studio"):
        apply_conventions(store, SHIPPED[0], "alphabetical", "0-1")
    assert store.read_meta(SHIPPED[0]) == before


# --------------------------------------------------------------------------- labels


def test_resolve_labels_named_custom_and_bad() -> None:
    assert resolve_labels("csv") == (FER_LABELS, "csv")
    assert resolve_labels(" Alphabetical ") == (ALPHABETICAL_LABELS, "alphabetical")
    assert resolve_labels("angry,disgust,fear,happy,neutral,sad,surprise") == (ALPHABETICAL_LABELS, "alphabetical")
    custom = "Happiness, sadness, anger, disgusted, scared, surprised, neutral"
    labels, kind = resolve_labels(custom)
    assert kind == "custom" and labels == ("happy", "sad", "angry", "disgust", "fear", "surprise", "neutral")
    with pytest.raises(ModelFileError, match="exactly once"):
        resolve_labels("happy,sad,angry,disgust,fear,surprise,happy")
    with pytest.raises(ModelFileError, match="exactly once"):
        resolve_labels("happy,sad")
    with pytest.raises(ModelFileError, match="Unknown class"):
        resolve_labels("happy,sad,angry,disgust,fear,surprise,contempt")


# --------------------------------------------------------------------------- safety and bad files


def _lambda_model(marker: Path):
    """A model whose Lambda layer writes `marker` whenever its code runs."""
    import keras

    def touch(x, path=str(marker)):
        open(path, "w").close()  # noqa: SIM115 - the side effect the test looks for
        return x * 1.0

    inp = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(touch, name="scale_pixels")(inp)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x))


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_lambda_model_is_refused_without_running_or_deserializing(tmp_path: Path, monkeypatch, suffix: str) -> None:
    import keras

    marker = tmp_path / "code-ran"
    path = tmp_path / f"fer_cnn_model{suffix}"
    _lambda_model(marker).save(path)
    marker.unlink()
    with pytest.raises(ModelFileError, match="Lambda layer .*scale_pixels"):
        inspect_model_file(path)

    def must_not_load(*args, **kwargs):
        raise AssertionError("keras deserialized a file that holds a Lambda layer")

    monkeypatch.setattr(keras.saving, "load_model", must_not_load)
    store = ModelStore()
    with pytest.raises(ModelFileError, match="Lambda layer"):
        import_model(path, labels="csv", scale="0-1", store=store)
    with pytest.raises(ModelFileError, match="never loaded"):
        load_model_file(path)
    assert not marker.exists()
    assert store.list_runs() == []


def test_not_a_model_files_get_clear_errors(tmp_path: Path) -> None:
    import keras

    cases = {}
    jpg = tmp_path / "photo.h5"
    jpg.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    cases[jpg] = "not a Keras model file"
    text = tmp_path / "notes.keras"
    text.write_text("just some text")
    cases[text] = "not a Keras model file"
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    cases[empty] = "empty"
    zipped = tmp_path / "data.keras"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("train/happy/1.jpg", b"x" * 10)
    cases[zipped] = "not a Keras model archive"
    truncated = tmp_path / "cut.keras"
    good = tmp_path / "good.keras"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]).save(good)
    truncated.write_bytes(good.read_bytes()[:300])
    cases[truncated] = "damaged"
    weights = tmp_path / "only.weights.h5"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]).save_weights(weights)
    cases[weights] = "only weights"
    bad_json = tmp_path / "badjson.keras"
    with zipfile.ZipFile(bad_json, "w") as zf:
        zf.writestr("config.json", "{not json")
    cases[bad_json] = "damaged"
    store = ModelStore()
    for path, message in cases.items():
        with pytest.raises(ModelFileError, match=message):
            import_model(path, labels="csv", scale="0-1", store=store)
    assert store.list_runs() == []


def test_wrong_output_size_and_input_kind_are_refused(tmp_path: Path) -> None:
    import keras

    five = tmp_path / "five.keras"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(5)]).save(five)
    with pytest.raises(ModelFileError, match="outputs 5 class scores; FER-2013 has 7"):
        summarize_model_file(five)
    vector = tmp_path / "vector.h5"
    keras.Sequential([keras.Input((2304,)), keras.layers.Dense(7)]).save(vector)
    with pytest.raises(ModelFileError, match="must take images"):
        summarize_model_file(vector)
    store = ModelStore()
    with pytest.raises(ModelFileError):
        import_model(five, labels="csv", scale="0-1", store=store)
    assert store.list_runs() == []


def test_size_limit(tmp_path: Path, monkeypatch) -> None:
    import keras

    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)]).save(path)
    assert path.stat().st_size > 20_000
    monkeypatch.setenv("FER_MAX_MODEL_MB", "0.01")
    with pytest.raises(ModelFileError, match="limited to"):
        import_model(path, labels="csv", scale="0-1")
    monkeypatch.setenv("FER_MAX_MODEL_MB", "5")
    assert import_model(path, labels="csv", scale="0-1").usable


def test_h5_named_keras_is_recognised_by_content(foreign) -> None:
    conv, _, files = foreign["fer_package"]
    renamed = files[".h5"].with_name("renamed.keras")
    renamed.write_bytes(files[".h5"].read_bytes())
    run = import_model(renamed, labels="csv", scale="-1-1")
    assert run.meta["imported"]["format"] == "h5" and run.meta["input_shape"] == [64, 64, 1]


def test_keras_archive_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        zf.writestr("model.weights.h5", b"\0" * (40 * 1024 * 1024))
    assert bomb.stat().st_size < 1024 * 1024
    with pytest.raises(ModelFileError, match="refused"):
        inspect_model_file(bomb)


# --------------------------------------------------------------------------- CLI


def test_cli_import_with_auto_conventions(foreign, tmp_path: Path) -> None:
    conv, _, files = foreign["notebook"]
    res = run_cli("import", str(files[".h5"]), "--labels", "auto", "--scale", "auto", "--check", "demo",
                  "--name", "notebook model", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "best fit, stored" in res.stdout
    (run,) = ModelStore().list_runs()
    assert run.meta["labels"] == list(ALPHABETICAL_LABELS) and run.meta["preprocessing"]["scale"] == "0-1"
    assert run.meta["preprocessing"]["color"] == "rgb" and run.meta["name"] == "notebook model"

    res = run_cli("import", str(tmp_path / "missing.h5"), "--labels", "csv", "--scale", "0-1")
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("import", str(files[".h5"]), "--labels", "auto", "--scale", "0-1")
    assert res.returncode == 2 and "--check" in res.stderr
    assert len(ModelStore().list_runs()) == 1
