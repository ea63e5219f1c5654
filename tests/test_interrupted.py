"""Interrupted work (issue 6): SIGKILL mid-epoch and mid-save, a full disk while saving.

Each case runs a real `python -m fer_core train` subprocess (through tests/interrupt_runner.py
where a fault has to be injected at an exact point) next to an earlier, finished run, then
checks what a user would see: the earlier run still listed as good with its model unchanged,
the killed run listed as failed with the best checkpoint it had saved (or none), the store
lock free, and a new training that starts and finishes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_core.training import jobs
from fer_core.errors import StoreError
from fer_core.store.runs import ModelStore
from fer_core.store.processes import process_alive
from tests.app_helpers import ROOT, install_tiny_run

pytestmark = pytest.mark.slow

# A short, learnable job: epoch 2 reliably beats epoch 1 on the demo set, so a second checkpoint is saved.
QUICK = {"architecture": "mini_xception", "batch_size": 32, "learning_rate": 0.003, "max_train_images": 700,
         "augment": False}
TRAIN_ARGS = ["train", "--data", "demo", "--arch", "mini_xception", "--epochs", "8", "--batch-size", "32",
              "--lr", "0.003", "--max-train-images", "700", "--no-augment", "--no-progress"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wait(predicate, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")


def _kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: not process_alive(pid), 30, f"pid {pid} to die")


@pytest.fixture
def store_with_earlier_run(tiny_store) -> tuple[ModelStore, str, str]:
    """The test's store holding one finished run (a real tiny model); (store, run id, model digest)."""
    store = ModelStore()
    run_id = install_tiny_run(tiny_store, store.root)
    info = store.get(run_id)
    assert info.status == "finished" and info.usable
    return store, run_id, _digest(info.model_path)


def _assert_earlier_run_intact(store: ModelStore, run_id: str, digest: str) -> None:
    info = {r.run_id: r for r in store.list_runs()}[run_id]
    assert info.status == "finished" and info.usable and info.error is None
    assert _digest(info.model_path) == digest


def _assert_new_training_runs(store: ModelStore) -> str:
    assert store.training_lock_holder() is None and jobs.running_job(store) is None
    run_id = jobs.start_training("demo", {**QUICK, "epochs": 1, "max_train_images": 140}, store)
    snap = jobs.wait(store, run_id, timeout_s=300)
    assert snap.status == "finished", jobs.read_log_tail(store, run_id)
    assert store.get(run_id).usable
    return run_id


def _load(store: ModelStore, run_id: str) -> None:
    """The run's model.keras is a complete model (loaded with safe_mode on)."""
    assert store.load_model(run_id).output_shape == (None, 7)


def test_kill9_mid_epoch(store_with_earlier_run, tmp_path: Path) -> None:
    store, earlier, digest = store_with_earlier_run
    # The runner pauses at the third batch of epoch 2 (after epoch 1's checkpoint, far from epoch 2's).
    run_id, log = "killed-mid-epoch", tmp_path / "train.log"
    proc = _runner("pause-in-epoch-2", tmp_path / "markers", run_id, log)
    try:
        _wait(lambda: (tmp_path / "markers" / "paused").is_file(), 300, "the pause in epoch 2", log)
        assert jobs.progress(store, run_id).epochs_done == 1
        checkpoint = _digest(store.model_path(run_id))  # epoch 1's best model
        pid = store.read_meta(run_id)["pid"]
        assert pid == proc.pid
        _kill9(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    runs = {r.run_id: r for r in store.list_runs()}
    assert set(runs) == {earlier, run_id}
    killed = runs[run_id]
    assert killed.status == "failed" and killed.error == "interrupted"
    assert killed.usable and _digest(killed.model_path) == checkpoint  # its best checkpoint, as saved
    assert not [p.name for p in killed.path.iterdir() if ".tmp" in p.name]
    assert "end" not in [e.get("event") for e in store.read_events(run_id)]
    assert jobs.progress(store, run_id).status == "failed"
    _assert_earlier_run_intact(store, earlier, digest)
    _load(store, run_id)
    _assert_new_training_runs(store)
    _assert_earlier_run_intact(store, earlier, digest)


def _runner(mode: str, marker_dir: Path, run_id: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.interrupt_runner", mode, str(marker_dir),
                                 *TRAIN_ARGS, "--run-id", run_id],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_kill9_mid_save(store_with_earlier_run, tmp_path: Path) -> None:
    """SIGKILL while the second checkpoint is half-way (written to its temp file, not yet in place)."""
    store, earlier, digest = store_with_earlier_run
    run_id, log = "killed-mid-save", tmp_path / "train.log"
    proc = _runner("pause-second-save", tmp_path / "markers", run_id, log)
    try:
        paused = _wait(lambda: (tmp_path / "markers" / "paused").is_file(), 300, "the paused save", log)
        assert paused
        tmp_model = Path((tmp_path / "markers" / "paused").read_text())
        assert tmp_model.parent == store.run_dir(run_id) and tmp_model.stat().st_size > 0  # the new model, half-saved
        previous = _digest(store.model_path(run_id))  # the first checkpoint
        assert store.get(run_id).status == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    runs = {r.run_id: r for r in store.list_runs()}
    assert set(runs) == {earlier, run_id}
    killed = runs[run_id]
    assert killed.status == "failed" and killed.error == "interrupted"
    assert killed.usable and _digest(killed.model_path) == previous  # the previous checkpoint, untouched
    assert tmp_model.exists()  # the half-saved file is left behind, never taken for the model
    _assert_earlier_run_intact(store, earlier, digest)
    _load(store, run_id)
    _assert_new_training_runs(store)


def test_disk_full_while_saving_keeps_the_previous_model(store_with_earlier_run, tmp_path: Path) -> None:
    """The second checkpoint's write fails (file-size limit = a full disk): the run fails with a clear
    message, model.keras is still the first checkpoint, no temp file is left, the next training runs."""
    store, earlier, digest = store_with_earlier_run
    run_id, log = "disk-full", tmp_path / "train.log"
    proc = _runner("disk-full", tmp_path / "markers", run_id, log)
    try:
        rc = proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    text = log.read_text(errors="replace")
    assert (tmp_path / "markers" / "first-save").is_file(), text[-3000:]
    assert rc == 2, text[-3000:]  # a FerError, printed as "error: ...", no traceback
    # epoch 2 fails at its first save: model.keras if it improved, else the resume checkpoint
    assert "Traceback" not in text, text[-3000:]
    assert re.search(r"error: Could not save the (model|resume checkpoint) of epoch 2", text), text[-3000:]

    info = store.get(run_id)
    assert info.status == "failed"
    assert "is the disk full?" in info.error and "best model so far (epoch 1)" in info.error, info.error
    assert info.usable and info.meta["best_epoch"] == 1
    assert info.model_path.stat().st_size == int((tmp_path / "markers" / "first-save").read_text())
    assert not [p.name for p in info.path.iterdir() if ".tmp" in p.name]
    assert json.loads((info.path / "meta.json").read_text())["status"] == "failed"
    _assert_earlier_run_intact(store, earlier, digest)
    _load(store, run_id)
    assert store.training_lock_holder() is None and jobs.running_job(store) is None  # free for the next one


def test_enospc_mid_write_keeps_model_and_meta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process variant with the real errno: the write itself fails with ENOSPC half-way through."""
    import keras
    import numpy as np

    from fer_core.training.run_state import save_checkpoint

    store = ModelStore(tmp_path / "models")
    run = store.create_run({"architecture": "x"})
    keras.utils.set_random_seed(1)
    inp = keras.Input((48, 48, 1))
    first = keras.Model(inp, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inp)))
    store.save_model(run.run_id, first)
    model_before, meta_before = _digest(store.model_path(run.run_id)), store.meta_path(run.run_id).read_bytes()

    def full_disk_save(model, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04" + bytes(4096))  # part of the file made it to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk_write(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.saving, "save_model", full_disk_save)
    with pytest.raises(StoreError, match=r"epoch 3: No space left on device \(is the disk full\?\).*epoch 2"):
        save_checkpoint(store, run.run_id, first, 3, 2)
    monkeypatch.setattr(Path, "write_bytes", full_disk_write)
    with pytest.raises(OSError):
        store.update_meta(run.run_id, status="finished", history=[{"epoch": i} for i in range(100)])
    monkeypatch.undo()

    assert _digest(store.model_path(run.run_id)) == model_before
    assert store.meta_path(run.run_id).read_bytes() == meta_before
    assert not [p.name for p in run.path.iterdir() if ".tmp" in p.name]
    x = np.ones((1, 48, 48, 1), np.float32)
    np.testing.assert_allclose(store.load_model(run.run_id)(x), first(x), rtol=1e-5)
