"""Concurrency (issue 6) without a browser: two sessions of one app server asking to train at
the same moment (threads, as Streamlit runs sessions), and a second server process doing the
same. Exactly one training starts; the other caller gets TrainingBusyError saying a training
is "already running", and leaves no run behind. The browser-level checks (one session
training while another predicts, the Train page's message, the webcam worker stopping when
its session leaves) are in tests/browser/test_concurrency_browser.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from fer_core.training import jobs
from fer_core.errors import TrainingBusyError
from fer_core.store.runs import ModelStore
from tests.app_helpers import ROOT

pytestmark = pytest.mark.slow

QUICK = {"architecture": "mini_xception", "batch_size": 32, "max_train_images": 140, "augment": False, "epochs": 1}


def _race(n: int, store: ModelStore) -> tuple[list[str], list[BaseException]]:
    """n callers of jobs.start_training released at the same instant."""
    barrier = threading.Barrier(n)
    started: list[str] = []
    errors: list[BaseException] = []

    def session() -> None:
        barrier.wait()
        try:
            started.append(jobs.start_training("demo", dict(QUICK), store))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertions
            errors.append(exc)

    threads = [threading.Thread(target=session) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return started, errors


def _finish(store: ModelStore, run_id: str) -> None:
    snap = jobs.wait(store, run_id, timeout_s=300)
    assert snap.status == "finished", jobs.read_log_tail(store, run_id)


def test_two_sessions_press_train_at_the_same_moment() -> None:
    store = ModelStore()
    started, errors = _race(2, store)
    assert len(started) == 1, (started, errors)
    assert len(errors) == 1 and isinstance(errors[0], TrainingBusyError), errors
    assert "already running" in str(errors[0])
    _finish(store, started[0])
    assert [r.run_id for r in store.list_runs()] == started  # the refused start left no run folder
    assert store.get(started[0]).usable


def test_a_second_server_process_is_refused_while_the_first_launches() -> None:
    """Another app server (or a script) on the same store, during the first job's start-up window."""
    store = ModelStore()
    code = ("import json, sys; from fer_core.training import jobs; from fer_core.store.runs import ModelStore;\n"
            "from fer_core.errors import TrainingBusyError\n"
            "try:\n"
            f"    print('STARTED', jobs.start_training('demo', {QUICK!r}, ModelStore({str(store.root)!r})))\n"
            "except TrainingBusyError as exc:\n"
            "    print('BUSY', exc)\n")
    first: list[str] = []
    t = threading.Thread(target=lambda: first.append(jobs.start_training("demo", dict(QUICK), store)))
    t.start()
    # The first start has created its run (inside the launch window, before its worker holds the lock).
    deadline = time.monotonic() + 60
    while not store.list_runs():
        assert time.monotonic() < deadline and t.is_alive()
        time.sleep(0.01)
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    t.join(300)
    assert len(first) == 1
    assert other.returncode == 0, other.stderr[-2000:]
    assert other.stdout.startswith("BUSY") and "already running" in other.stdout, other.stdout
    _finish(store, first[0])
    assert [r.run_id for r in store.list_runs()] == first
