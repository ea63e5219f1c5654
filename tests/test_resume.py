"""Resuming a training (issue 12): kill -9 / stop, resume, and the run ends as if never cut.

What must carry on: the epoch counter, the optimizer state (step count, slots, learning rate),
the schedule position, the best-so-far checkpoint and the events the live curves read. What
must be refused with a clear message: a finished run, a damaged checkpoint, other data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from model_helpers import stop_after_epoch, tiny_dataset

from fer_core.training import jobs
from fer_core.store.checkpoints import LAST_STATE_FILE, read_last
from fer_core.errors import StoreError
from fer_core.store.runs import ModelStore
from fer_core.training.config import TrainConfig, cosine_lr
from fer_core.training.resuming import resume, resume_check
from fer_core.training.loop import train
from tests.app_helpers import ROOT
from tests.cli_helpers import run_cli

pytestmark = pytest.mark.slow

QUICK = dict(architecture="mini_xception", batch_size=16, early_stopping_patience=0, augment=False, seed=5,
             precision="float32")


class _Probe(keras.callbacks.Callback):
    """Records the optimizer's step counter and learning rate when training (re)starts."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, float] = {}

    def on_train_begin(self, logs=None) -> None:
        self.seen = {"iterations": int(self.model.optimizer.iterations.numpy()),
                     "lr": float(self.model.optimizer.learning_rate.numpy())}


def _epochs(store: ModelStore, run_id: str) -> list[int]:
    return [e["epoch"] for e in store.history(run_id)]


def _stopped_run(tmp_path: Path, **overrides) -> tuple[ModelStore, str, object, TrainConfig]:
    store = ModelStore()  # the test's own store (conftest), which the CLI subprocesses see too
    # 272 train images / 8 = 34 steps an epoch: the stop requested after epoch 2 is seen at
    # epoch 3's batch-20 check, so epoch 3 is cut short (partial) and is trained again on resume.
    ds = tiny_dataset(340, 70)
    config = TrainConfig(**{**QUICK, "epochs": 5, "batch_size": 8, **overrides})
    stopper = stop_after_epoch(store, 2)
    run_id = train(ds, config, store=store, callbacks=[stopper], on_start=lambda rid: setattr(stopper, "run_id", rid))
    assert store.get(run_id).status == "stopped"
    assert [(h["epoch"], h.get("partial", False)) for h in store.read_meta(run_id)["history"]] == [
        (1, False), (2, False), (3, True)]
    return store, run_id, ds, config


def test_stop_then_resume_carries_optimizer_schedule_and_history(tmp_path: Path) -> None:
    store, run_id, ds, config = _stopped_run(tmp_path, lr_schedule="cosine", warmup_epochs=1, learning_rate=0.004)
    last = read_last(store, run_id)
    assert last is not None and last["epoch"] == 2 and last["path"].name == "last-e0002.weights.h5"
    assert [h["epoch"] for h in last["history"]] == [1, 2]
    best_before = store.read_meta(run_id)["best_epoch"]

    probe = _Probe()
    assert resume(ds, run_id, store=store, callbacks=[probe]) == run_id
    info = store.get(run_id)
    assert info.status == "finished" and info.error is None
    steps = 272 // 8
    assert probe.seen["iterations"] == 2 * steps  # the optimizer's step counter carried on
    assert probe.seen["lr"] == pytest.approx(cosine_lr(1, base=0.004, epochs=5, warmup=1), rel=1e-5)
    history = info.meta["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5] == _epochs(store, run_id)
    for h in history:  # every epoch ran at its place in the warm-up + cosine schedule
        assert h["lr"] == pytest.approx(cosine_lr(h["epoch"] - 1, base=0.004, epochs=5, warmup=1), rel=1e-5)
    scored = {h["epoch"]: h["val_accuracy"] for h in history}
    assert info.meta["best_epoch"] == max(scored, key=lambda e: (scored[e], -e))
    assert info.meta["best_epoch"] >= best_before
    assert info.meta["resumed"] == [2]
    assert [e["event"] for e in store.read_events(run_id)].count("resume") == 1
    assert read_last(store, run_id) is None  # finished: the optimizer-state checkpoint is freed
    assert store.load_model(run_id).output_shape == (None, 7)

    with pytest.raises(StoreError, match="finished all its epochs"):
        resume(ds, run_id, store=store)


def test_resume_refuses_damaged_checkpoint_and_other_data(tmp_path: Path) -> None:
    store, run_id, ds, _ = _stopped_run(tmp_path)
    meta_before = store.meta_path(run_id).read_bytes()
    events_before = store.events_path(run_id).read_bytes()

    other = tiny_dataset(340, 70, seed=9)  # same shape, other images: another fingerprint
    with pytest.raises(StoreError, match="another dataset"):
        resume(other, run_id, store=store)

    weights = read_last(store, run_id)["path"]
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 3])  # truncated, as a crash of the disk would leave it
    with pytest.raises(StoreError, match="damaged"):
        resume(ds, run_id, store=store)
    weights.write_bytes(good)
    (weights.parent / LAST_STATE_FILE).write_text("{not json")
    with pytest.raises(StoreError, match="damaged"):
        resume(ds, run_id, store=store)
    # Refusals change nothing: the run is still stopped with its files as they were.
    assert store.meta_path(run_id).read_bytes() == meta_before
    assert store.events_path(run_id).read_bytes() == events_before
    assert store.get(run_id).status == "stopped" and store.training_lock_holder() is None


def test_run_without_checkpoint_is_refused(tmp_path: Path) -> None:
    store = ModelStore()
    run = store.create_run({"architecture": "mini_xception", "params": TrainConfig(**QUICK).to_dict(),
                            "status": "stopped", "pid": 1})
    with pytest.raises(StoreError, match="no resume checkpoint"):
        resume_check(store, run.run_id)
    assert jobs.can_resume(store, run.run_id) is not None


def test_history_drops_epochs_redone_after_resume(tmp_path: Path) -> None:
    events = [{"event": "start"}, *({"event": "epoch", "epoch": n, "v": "a"} for n in (1, 2, 3)),
              {"event": "resume", "from_epoch": 2}, {"event": "epoch", "epoch": 3, "v": "b"},
              {"event": "epoch", "epoch": 4, "v": "b"}]
    store = ModelStore(tmp_path)
    run = store.create_run({"architecture": "x", "history": [{"epoch": 1, "v": "meta"}]})
    assert [(e["epoch"], e["v"]) for e in store.history(run.run_id)] == [(1, "meta")]  # no events: meta's history
    for event in events:
        store.append_event(run.run_id, event)
    assert [(e["epoch"], e["v"]) for e in store.history(run.run_id)] == [(1, "a"), (2, "a"), (3, "b"), (4, "b")]


def test_kill9_mid_epoch_then_resume_ends_with_planned_epochs(tmp_path: Path) -> None:
    """A real `fer_core train` subprocess killed with SIGKILL in epoch 3, resumed as the app does."""
    store = ModelStore()
    run_id, markers = "killed-in-epoch-3", tmp_path / "markers"
    args = ["train", "--data", "demo", "--arch", "mini_xception", "--batch-size", "32", "--lr", "0.003",
            "--no-augment", "--epochs", "6", "--patience", "0", "--lr-schedule", "cosine", "--precision", "bf16",
            "--run-id", run_id, "--no-progress"]
    # The runner pauses at the third batch of epoch 3: killed there, mid-epoch, on any machine.
    with open(tmp_path / "train.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.interrupt_runner", "pause-in-epoch-3", str(markers), *args],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 300
    while not (markers / "paused").is_file():
        assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "train.log").read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    assert jobs.progress(store, run_id).epochs_done == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    info = store.get(run_id)
    assert info.status == "failed" and info.error == "interrupted"
    done = read_last(store, run_id)["epoch"]
    assert done == 2  # the last complete epoch
    assert jobs.can_resume(store, run_id) is None

    assert jobs.start_resume("demo", run_id, store) == run_id
    snap = jobs.wait(store, run_id, timeout_s=600)
    assert snap.status == "finished", jobs.read_log_tail(store, run_id)
    assert [e["epoch"] for e in snap.epochs] == [1, 2, 3, 4, 5, 6]
    meta = store.read_meta(run_id)
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3, 4, 5, 6]
    assert meta["resumed"] == [done] and meta["precision"] == "bf16"
    for h in meta["history"]:
        assert h["lr"] == pytest.approx(cosine_lr(h["epoch"] - 1, base=0.003, epochs=6), rel=1e-5)
    model = store.load_model(run_id)  # trained in bf16, stored and predicting in float32
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert model(np.zeros((1, 48, 48, 1), np.float32)).dtype == "float32"


def test_cli_resume_messages(tmp_path: Path) -> None:
    store, run_id, _, _ = _stopped_run(tmp_path)
    res = run_cli("train", "--resume", run_id, "--epochs", "9")
    assert res.returncode == 2 and "drop --epochs" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("train", "--resume", "no-such-run")
    assert res.returncode == 2 and "No run 'no-such-run'" in res.stderr and "Traceback" not in res.stderr
    meta = json.loads(store.meta_path(run_id).read_text())
    meta["status"] = "finished"
    store.write_meta(run_id, meta)
    res = run_cli("train", "--resume", run_id)
    assert res.returncode == 2 and "nothing to resume" in res.stderr and "Traceback" not in res.stderr
