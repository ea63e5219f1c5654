"""Model store: run folders, atomic writes, corrupt runs, safe model loading, training lock."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from fer_core.errors import ModelFileError, StoreError, TrainingBusyError
from fer_core.paths import PROJECT_ROOT
from fer_core.store.atomic import now_iso
from fer_core.store.runs import ModelStore
from fer_core.store.model_files import load_model_file


def _tiny_model(seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(2, 3, strides=4)(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(7, activation="softmax")(x)
    return keras.Model(inp, out)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def test_default_root_is_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert ModelStore().root == tmp_path / "elsewhere"
    assert ModelStore().list_runs() == []  # a missing root is just empty


def test_create_list_update_roundtrip(store: ModelStore) -> None:
    a = store.create_run({"architecture": "mini_xception", "created": "ignored"})
    assert re.fullmatch(r"\d{8}-\d{6}-mini_xception", a.run_id)
    b = store.create_run({"architecture": "mini_xception"})  # same second: suffixed
    assert b.run_id != a.run_id and b.run_id.startswith(a.run_id[:15])
    assert a.status == "running" and a.meta["pid"] == os.getpid() and not a.has_model
    store.update_meta(a.run_id, created="2020-01-01T00:00:00+00:00", status="finished", metrics={"val_accuracy": 0.5})
    runs = store.list_runs()
    assert [r.run_id for r in runs] == [b.run_id, a.run_id]  # newest first
    info = store.get(a.run_id)
    assert info.status == "finished" and info.metrics == {"val_accuracy": 0.5}
    assert store.read_meta(a.run_id)["architecture"] == "mini_xception"
    with pytest.raises(StoreError):
        store.get("no-such-run")
    with pytest.raises(StoreError):
        store.get("../escape")
    with pytest.raises(StoreError):
        store.create_run({}, run_id=a.run_id)
    store.delete(a.run_id)
    assert [r.run_id for r in store.list_runs()] == [b.run_id]


def test_events_and_truncated_last_line(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x"})
    store.append_event(run.run_id, {"event": "start"})
    store.append_event(run.run_id, {"event": "epoch", "epoch": 1, "loss": float("nan")})
    with open(store.events_path(run.run_id), "ab") as f:
        f.write(b'{"event": "epoch", "epo')  # a writer killed mid-line
    events = store.read_events(run.run_id)
    assert [e["event"] for e in events] == ["start", "epoch"]
    assert events[1]["loss"] is None  # NaN stored as valid JSON
    store.append_event(run.run_id, {"event": "end"})
    assert [e["event"] for e in store.read_events(run.run_id)] == ["start", "epoch", "end"]


def test_corrupt_and_missing_meta_are_listed_not_raised(store: ModelStore) -> None:
    good = store.create_run({"architecture": "x"})
    store.update_meta(good.run_id, status="finished")
    bad = store.root / "20200101-000000-bad"
    bad.mkdir()
    (bad / "meta.json").write_text('{"status": "finished", "labels": [')
    empty = store.root / "20200101-000001-empty"
    empty.mkdir()
    weird = store.root / "20200101-000002-weird"
    weird.mkdir()
    (weird / "meta.json").write_text('["not", "an", "object"]')
    runs = {r.run_id: r for r in store.list_runs()}
    assert runs[good.run_id].status == "finished"
    assert runs[bad.name].status == "corrupt" and "not valid JSON" in runs[bad.name].error
    assert runs[empty.name].status == "corrupt" and "missing" in runs[empty.name].error
    assert runs[weird.name].status == "corrupt"
    assert not runs[bad.name].usable
    with pytest.raises(StoreError, match="corrupt"):
        store.read_meta(bad.name)


def test_running_run_of_dead_process_is_failed_interrupted(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x"})
    store.save_model(run.run_id, _tiny_model())
    assert store.get(run.run_id).status == "running"  # this process is alive
    store.update_meta(run.run_id, pid=_dead_pid(), pid_start=None)
    info = store.get(run.run_id)
    assert info.status == "failed" and info.error == "interrupted"
    assert info.usable
    assert store.load_model(run.run_id).output_shape == (None, 7)
    # A reused pid (same number, other start time) is not mistaken for the training.
    store.update_meta(run.run_id, pid=os.getpid(), pid_start="1")
    assert store.get(run.run_id).status == "failed"


def test_save_and_load_model(store: ModelStore) -> None:
    import h5py
    import keras
    import numpy as np

    run = store.create_run({"architecture": "x"})
    model = _tiny_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.train_on_batch(np.zeros((4, 48, 48, 1), np.float32), np.eye(7, dtype=np.float32)[:4])  # optimizer slots
    path = store.save_model(run.run_id, model)
    assert path == store.model_path(run.run_id) and store.get(run.run_id).has_model
    assert not [p.name for p in path.parent.iterdir() if ".tmp" in p.name]  # no tmp left
    loaded = store.load_model(run.run_id)
    x = np.random.default_rng(0).random((3, 48, 48, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5)
    assert getattr(loaded, "optimizer", None) is None  # saved without optimizer state by default
    with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5"))) as weights:
        assert "optimizer" not in weights  # no optimizer slots in the file either
    assert isinstance(load_model_file(path), keras.Model)
    other = store.create_run({"architecture": "x"})
    with pytest.raises(ModelFileError, match="no saved model"):
        store.load_model(other.run_id)


def test_crash_during_model_save_keeps_previous_model(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    run = store.create_run({"architecture": "x"})
    first = _tiny_model(seed=1)
    store.save_model(run.run_id, first)
    fresh = store.create_run({"architecture": "x"})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed during save")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save_model(run.run_id, _tiny_model(seed=2))
    with pytest.raises(KeyboardInterrupt):
        store.save_model(fresh.run_id, _tiny_model(seed=2))
    with pytest.raises(KeyboardInterrupt):
        store.update_meta(run.run_id, status="finished")
    monkeypatch.undo()
    x = np.ones((1, 48, 48, 1), np.float32)
    np.testing.assert_allclose(store.load_model(run.run_id)(x), first(x), rtol=1e-5)
    assert store.get(run.run_id).status == "running"  # meta unchanged, still valid
    assert not store.get(fresh.run_id).has_model


def test_process_killed_mid_save_leaves_no_partial_model(store: ModelStore) -> None:
    """A process dying (os._exit) between writing the tmp file and os.replace."""
    run = store.create_run({"architecture": "x"})
    store.update_meta(run.run_id, status="finished")
    store.save_model(run.run_id, _tiny_model(seed=1))
    before = store.model_path(run.run_id).read_bytes()
    code = textwrap.dedent(f"""
        import os, sys
        import keras
        from fer_core.store.runs import ModelStore
        store = ModelStore({str(store.root)!r})
        new = store.create_run({{"architecture": "x"}})
        print(new.run_id, flush=True)
        os.replace = lambda *a, **k: os._exit(9)
        inp = keras.Input((48, 48, 1)); out = keras.layers.Dense(7)(keras.layers.Flatten()(inp))
        m = keras.Model(inp, out)
        store.save_model(new.run_id, m)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=120)
    assert proc.returncode == 9, proc.stderr
    new_id = proc.stdout.split()[0]
    runs = {r.run_id: r for r in store.list_runs()}
    assert runs[run.run_id].status == "finished" and runs[run.run_id].usable
    assert store.model_path(run.run_id).read_bytes() == before
    assert runs[new_id].status == "failed" and runs[new_id].error == "interrupted"
    assert not runs[new_id].has_model and not runs[new_id].usable
    assert any(p.name.endswith(".tmp.keras") for p in (store.root / new_id).iterdir())  # the leftover tmp


def test_load_model_file_refuses_non_models(tmp_path: Path) -> None:
    text = tmp_path / "notes.keras"
    text.write_text("this is not a model")
    with pytest.raises(ModelFileError, match="notes.keras"):
        load_model_file(text)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model_file(tmp_path / "missing.keras")
    other = tmp_path / "image.png"
    other.write_bytes(b"\x89PNG....")
    with pytest.raises(ModelFileError, match="not a Keras model file"):
        load_model_file(other)
    import zipfile

    fake = tmp_path / "fake.keras"
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(ModelFileError):
        load_model_file(fake)


def test_lambda_model_refused_in_safe_mode(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    out = keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(ModelFileError, match="Lambda"):
        load_model_file(path)


def test_wrong_output_size_refused(tmp_path: Path) -> None:
    import keras

    inp = keras.Input((48, 48, 1))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    path = tmp_path / "three.keras"
    keras.Model(inp, out).save(path)
    assert load_model_file(path).output_shape == (None, 3)
    with pytest.raises(ModelFileError, match="expected"):
        load_model_file(path, num_classes=7)


def test_training_lock_is_exclusive(store: ModelStore) -> None:
    assert store.training_lock_holder() is None
    with store.acquire_training_lock("run-a") as lock:
        assert lock.run_id == "run-a"
        holder = store.training_lock_holder()
        assert holder is not None and holder["run_id"] == "run-a" and holder["pid"] == os.getpid()
        with pytest.raises(TrainingBusyError, match=r"A training is already running: run-a \(started .+\)\. Stop it"):
            with store.acquire_training_lock("run-b", timeout=0.1):
                pass
    assert store.training_lock_holder() is None
    with store.acquire_training_lock("run-b"):
        pass


def test_stale_lock_of_dead_process_is_taken_over(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    store.lock_path.write_text(json.dumps({"run_id": "old", "pid": _dead_pid(), "started": "yesterday"}))
    assert store.training_lock_holder() is None
    with store.acquire_training_lock("new") as lock:
        assert json.loads(store.lock_path.read_text())["run_id"] == "new"
        lock.set_run_id("new-2")
        assert store.training_lock_holder()["run_id"] == "new-2"


def test_stop_request_and_delete_guard(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x"})
    assert not store.stop_requested(run.run_id)
    store.request_stop(run.run_id)
    assert store.stop_requested(run.run_id)
    store.clear_stop(run.run_id)
    assert not store.stop_requested(run.run_id)
    with store.acquire_training_lock(run.run_id):
        with pytest.raises(TrainingBusyError):
            store.delete(run.run_id)
    store.delete(run.run_id)
    assert store.list_runs() == []


def _evaluation(split: str, fingerprint: str, tta: bool, accuracy: float, synthetic: bool = False) -> dict:
    return {"split": split, "tta": tta, "accuracy": accuracy, "n": 2, "timestamp": now_iso(),
            "dataset": {"name": f"data-{fingerprint}", "fingerprint": fingerprint, "synthetic": synthetic}}


def test_evaluation_files(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x"})
    assert store.load_evaluation(run.run_id, "test") is None and store.list_evaluations(run.run_id) == []
    first = _evaluation("test", "fp-a", False, 0.5)
    store.save_evaluation(run.run_id, first)
    assert store.load_evaluation(run.run_id, "test") == first
    (listed,) = store.list_evaluations(run.run_id)
    assert (listed.key.split, listed.key.fingerprint, listed.key.tta, listed.accuracy) == ("test", "fp-a", False, 0.5)
    with pytest.raises(StoreError):
        store.save_evaluation(run.run_id, {**first, "split": "../x"})


def test_evaluations_are_kept_per_dataset_split_and_tta(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x"})
    a = _evaluation("test", "fp-a", False, 0.7)
    store.save_evaluation(run.run_id, a)
    store.save_evaluation(run.run_id, _evaluation("test", "fp-demo", False, 0.3, synthetic=True))
    store.save_evaluation(run.run_id, _evaluation("test", "fp-a", True, 0.72))
    store.save_evaluation(run.run_id, _evaluation("train", "fp-a", False, 0.9))
    assert len(store.list_evaluations(run.run_id)) == 4
    assert store.load_evaluation(run.run_id, "test", "fp-a", tta=False) == a
    assert store.load_evaluation(run.run_id, "test", "fp-a", tta=True)["accuracy"] == 0.72
    demo = store.find_evaluation(run.run_id, "test", "fp-demo")
    assert demo.synthetic and "synthetic" in demo.label and demo.accuracy == 0.3
    # The same (dataset, split, TTA) again replaces only that one.
    store.save_evaluation(run.run_id, _evaluation("test", "fp-a", False, 0.71))
    assert len(store.list_evaluations(run.run_id)) == 4
    assert store.load_evaluation(run.run_id, "test", "fp-a", tta=False)["accuracy"] == 0.71
    # The run folder holds none of them; deleting the run forgets them.
    assert not list(run.path.glob("evaluation*"))
    store.delete(run.run_id)
    assert not store.evaluations_dir(run.run_id).exists()


def test_shipped_runs_are_read_only(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x", "status": "finished", "shipped": {"default": True}})
    store_files = {p.name: p.read_bytes() for p in run.path.iterdir()}
    with pytest.raises(StoreError, match="ships with fer-studio"):
        store.update_meta(run.run_id, status="failed")
    with pytest.raises(StoreError, match="ships with fer-studio"):
        store.save_model(run.run_id, _tiny_model())
    with pytest.raises(StoreError, match="ships with fer-studio"):
        store.delete(run.run_id)
    store.save_evaluation(run.run_id, _evaluation("test", "fp-a", False, 0.5))  # into the store's own area
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == store_files
    assert store.find_evaluation(run.run_id, "test") is not None


def test_listing_does_not_import_tensorflow(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x"})
    code = (
        "import sys; from fer_core.store.runs import ModelStore; "
        f"runs = ModelStore({str(store.root)!r}).list_runs(); "
        f"assert runs[0].run_id == {run.run_id!r}; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, check=True, timeout=60)


def test_concurrent_meta_updates_lose_nothing(store: ModelStore) -> None:
    import threading

    run = store.create_run({"architecture": "x"})

    def writer(k: int) -> None:
        for i in range(15):
            store.update_meta(run.run_id, **{f"w{k}_{i}": i})

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = store.read_meta(run.run_id)
    assert all(f"w{k}_{i}" in meta for k in range(4) for i in range(15))


def test_written_files_are_world_readable(store: ModelStore) -> None:
    run = store.create_run({"architecture": "x"})
    store.save_model(run.run_id, _tiny_model())
    evaluation = store.save_evaluation(run.run_id, _evaluation("test", "fp", False, 0.0))
    for path in (run.path / "meta.json", run.path / "model.keras", evaluation):
        assert path.stat().st_mode & 0o644 == 0o644, path
