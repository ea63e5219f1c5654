"""Training as a detached subprocess: start, follow, stop, one at a time per store."""

from __future__ import annotations

import time

import pytest

from fer_core.training import jobs
from fer_core.errors import FerError, TrainingBusyError
from fer_core.store.runs import ModelStore

pytestmark = pytest.mark.slow

QUICK = {"architecture": "mini_xception", "batch_size": 32, "max_train_images": 560, "augment": False}


def _wait_for_epochs(store: ModelStore, run_id: str, n: int, timeout: float = 240) -> jobs.JobProgress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = jobs.progress(store, run_id)
        if snap.epochs_done >= n or snap.status != "running":
            return snap
        time.sleep(0.3)
    raise AssertionError(f"no {n} epochs within {timeout} s; log:\n{jobs.read_log_tail(store, run_id)}")


def test_job_trains_reports_epochs_and_finishes() -> None:
    store = ModelStore()
    run_id = jobs.start_training("demo", {**QUICK, "epochs": 2, "name": "two epochs"}, store)
    assert jobs.running_job(store) is not None or store.get(run_id).status == "finished"
    meta = store.read_meta(run_id)  # the worker trained the run it was given, with its settings
    assert meta["name"] == "two epochs" and meta["params"]["max_train_images"] == QUICK["max_train_images"]
    assert meta["dataset"]["source"] == "demo" and meta["dataset"]["fingerprint"]
    assert [e["event"] for e in store.read_events(run_id)][0] == "start"
    snap = jobs.wait(store, run_id, timeout_s=300)
    assert snap.status == "finished", jobs.read_log_tail(store, run_id)
    assert snap.epochs_done == snap.epochs_total == 2
    assert [e["epoch"] for e in snap.epochs] == [1, 2] or [e["epoch"] for e in snap.epochs] == [0, 1]
    assert snap.elapsed_s > 0 and snap.remaining_s is None and snap.fraction == 1.0
    assert store.get(run_id).usable
    assert jobs.running_job(store) is None


def test_a_distilled_job_says_its_teachers_are_labelling_then_trains(demo_run) -> None:
    import shutil

    teacher_store, teacher_id, _ = demo_run
    store = ModelStore()
    shutil.copytree(teacher_store.run_dir(teacher_id), store.root / teacher_id)
    run_id = jobs.start_training("demo", {**QUICK, "epochs": 1, "teachers": [teacher_id]}, store)
    seen = set()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        snap = jobs.progress(store, run_id)
        seen.add(snap.labelling)
        if snap.status not in ("starting", "running"):
            break
        time.sleep(0.1)
    assert snap.status == "finished", jobs.read_log_tail(store, run_id)
    assert True in seen, "the job never said its teachers were labelling"
    assert not snap.labelling and snap.epochs_done == 1
    events = [e["event"] for e in store.read_events(run_id)]
    assert events.index("teachers") < events.index("epoch")
    assert store.read_meta(run_id)["teachers"]["runs"] == [teacher_id]


def test_stop_keeps_best_model_and_second_job_is_refused() -> None:
    store = ModelStore()
    run_id = jobs.start_training("demo", {**QUICK, "epochs": 50}, store)
    first = _wait_for_epochs(store, run_id, 1)
    assert first.status == "running" and first.remaining_s is not None and first.remaining_s > 0
    assert jobs.running_job(store).run_id == run_id

    with pytest.raises(TrainingBusyError, match="already running"):
        jobs.start_training("demo", {**QUICK, "epochs": 1}, store)

    jobs.stop_training(store, run_id)
    snap = jobs.wait(store, run_id, timeout_s=120)
    assert snap.status == "stopped", jobs.read_log_tail(store, run_id)
    assert 1 <= snap.epochs_done < 50
    info = store.get(run_id)
    assert info.usable
    store.load_model(run_id)  # the kept model loads
    assert [r.run_id for r in store.list_runs()] == [run_id]  # the refused job left no run


def test_bad_settings_are_refused_before_anything_starts() -> None:
    store = ModelStore()
    with pytest.raises(FerError, match="epochs"):
        jobs.start_training("demo", {**QUICK, "epochs": 0}, store)
    with pytest.raises(FerError, match="bad training settings"):
        jobs.start_training("demo", {**QUICK, "no_such_setting": 1}, store)
    assert store.list_runs() == [] and not (store.root / jobs.JOB_LOG_DIR).exists()  # no process was started


def test_failure_before_start_reports_the_subprocess_message(tmp_path) -> None:
    store = ModelStore()
    with pytest.raises(FerError) as err:
        jobs.start_training(str(tmp_path / "nowhere.zip"), {**QUICK, "epochs": 1}, store)
    assert "nowhere.zip" in str(err.value)
    assert store.list_runs() == []
