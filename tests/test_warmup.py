"""The background preload of the default model (fer_core.inference.warmup, ui/warmup.py).

- LoadCache: one load per key even when the page asks while the preload is still loading,
  failures reported and retried, bounded size.
- The app (AppTest, in a fresh interpreter with FER_PRELOAD=1): Home is drawn before TensorFlow is
  imported, and TensorFlow is imported by the preload thread, never by the script; the sidebar
  goes from "Loading the model…" to "Model ready"; the first prediction then reuses the preloaded
  model (no second load).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fer_core.inference.warmup import ABSENT, FAILED, LOADING, READY
from fer_core.inference.warmup import LoadCache, preload_enabled

ROOT = Path(__file__).resolve().parents[1]


def test_get_joins_a_load_in_flight_instead_of_loading_twice():
    cache = LoadCache()
    release = threading.Event()
    calls = []

    def slow():
        calls.append(threading.current_thread().name)
        release.wait(10)
        return "model"

    assert cache.submit("k", slow, thread_name="bg") is True
    deadline = time.monotonic() + 5
    while cache.state("k").state != LOADING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.state("k").state == LOADING
    assert cache.submit("k", slow) is False  # already loading: no second thread
    got = []
    waiter = threading.Thread(target=lambda: got.append(cache.get("k", slow)))
    waiter.start()
    time.sleep(0.1)
    assert not got  # waits for the preload
    release.set()
    waiter.join(5)
    assert got == ["model"] and calls == ["bg"] and cache.loads == {"k": 1}
    st = cache.state("k")
    assert st.state == READY and st.thread == "bg" and st.seconds is not None
    assert cache.get("k", slow) == "model" and calls == ["bg"]


def test_a_failed_load_is_reported_then_retried():
    cache = LoadCache()
    attempts = []

    def broken():
        attempts.append(1)
        raise ValueError("bad model file")

    with pytest.raises(ValueError):
        cache.get("k", broken)
    st = cache.state("k")
    assert st.state == FAILED and "bad model file" in st.error
    assert cache.get("k", lambda: "fixed") == "fixed" and cache.state("k").state == READY
    assert len(attempts) == 1


def test_cache_keeps_the_most_recently_used_entries():
    cache = LoadCache(max_entries=2)
    for k in "abc":
        cache.get(k, lambda k=k: k.upper())
    assert cache.state("a").state == ABSENT
    assert cache.is_ready("b") and cache.is_ready("c")


def test_preload_switch(monkeypatch):
    monkeypatch.setenv("FER_PRELOAD", "0")
    assert not preload_enabled()
    monkeypatch.delenv("FER_PRELOAD")
    assert preload_enabled()


APP_PRELOAD_SCRIPT = r"""
import json, sys, threading, time
tf_importers = []

class Spy:  # records which thread imports TensorFlow first
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" and not tf_importers:
            tf_importers.append(threading.current_thread().name)
        return None

sys.meta_path.insert(0, Spy())
from streamlit.testing.v1 import AppTest
from tests.app_helpers import astronaut_bgr, jpeg_bytes

at = AppTest.from_file("streamlit_app.py", default_timeout=180).run()
assert not at.exception, [e.value for e in at.exception]
captions = [c.value for c in at.caption]
first_status = [c for c in captions if "Model ready" in c or "Loading the model" in c]
home_title = [t.value for t in at.title]

import ui.classifiers as common
from fer_core.inference.warmup import READY, FAILED
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    states = {k: common.CLASSIFIERS.state(k).state for k in list(common.CLASSIFIERS._states)}
    if states and all(s in (READY, FAILED) for s in states.values()):
        break
    time.sleep(0.2)
at.run()
ready_status = [c.value for c in at.caption if "Model ready" in c.value]
at.switch_page("app_pages/predict.py").run()
at.file_uploader(key="pred_upload").upload("astronaut.jpg", jpeg_bytes(astronaut_bgr()), "image/jpeg")
at.run()
assert not at.exception, [e.value for e in at.exception]
head = "\n".join(m.value for m in at.markdown)
print(json.dumps({
    "tf_importers": tf_importers, "first_status": first_status, "home_title": home_title,
    "states": {"|".join(k): common.CLASSIFIERS.state(k).state for k in common.CLASSIFIERS._states},
    "threads": [common.CLASSIFIERS.state(k).thread for k in common.CLASSIFIERS._states],
    "loads": list(common.CLASSIFIERS.loads.values()), "ready_status": ready_status,
    "predicted": "1 face" in head, "errors": [e.value for e in at.error],
}))
"""


@pytest.mark.slow
def test_app_preloads_the_default_model_off_the_first_page_path(tmp_path):
    store = tmp_path / "models"
    store.mkdir()
    shutil.copytree(ROOT / "models" / "mini_xception-fer2013", store / "mini_xception-fer2013",
                    ignore=shutil.ignore_patterns(".meta.lock"))
    env = {**os.environ, "FER_MODELS_DIR": str(store), "FER_PRELOAD": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", APP_PRELOAD_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["home_title"], res
    assert res["tf_importers"] == ["fer-preload"], res  # never the script thread drawing the page
    assert res["first_status"] and "Loading the model" in res["first_status"][0], res
    assert list(res["states"].values()) == ["ready"], res
    assert res["threads"] == ["fer-preload"], res
    assert any("on FER-2013" in s or "mini_xception" in s for s in res["ready_status"]), res
    assert res["predicted"] and not res["errors"], res
    assert res["loads"] == [1], res  # the Predict page used the preloaded model: no second load


def test_submit_does_not_retry_a_failed_key_in_a_loop():
    cache = LoadCache()
    with pytest.raises(ValueError):
        cache.get("k", lambda: (_ for _ in ()).throw(ValueError("broken")))
    assert cache.submit("k", lambda: "x") is False  # the app calls submit on every rerun
    assert cache.state("k").state == FAILED
