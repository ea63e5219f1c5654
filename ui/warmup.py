"""The app's background preload of the default model, and its status in the sidebar.

`streamlit_app.py` calls `start_default_preload()` after the page of the run has been drawn
(so the Home page's first render never waits for TensorFlow): it loads the default model's
classifier and warms the face detector in a daemon thread, into the same cache the Predict and
Webcam pages read (`ui.classifiers.CLASSIFIERS`). `model_status()` shows "Loading the model…" and
then "Model ready" in the sidebar. `FER_PRELOAD=0` turns the preload off (the test suite does,
except where a test checks the preload).
"""

from __future__ import annotations

import streamlit as st

from fer_core.inference.warmup import FAILED, LOADING, READY
from fer_core.inference.warmup import classifier_key, load_classifier, preload_enabled
from ui.classifiers import CLASSIFIERS
from ui.runs import get_store, usable_runs
from ui.webcam import preload_webrtc_native

#: How often the sidebar looks again while the model loads.
STATUS_REFRESH_S = 1.0


def _default():
    """(store, default run, cache key), or None when the store has no usable model."""
    try:
        runs = usable_runs()
    except Exception:  # noqa: BLE001 - the pages report store problems themselves
        return None
    if not runs:
        return None
    store = get_store()
    return store, runs[0], classifier_key(store.root, runs[0])


def start_default_preload() -> bool:
    """Start loading the default model in the background (once per model and server process)."""
    if not preload_enabled():
        return False
    found = _default()
    if found is None:
        return False
    store, run, key = found
    preload_webrtc_native()  # libsrtp must be loaded before TensorFlow (see ui/webcam.py)
    return CLASSIFIERS.submit(key, lambda: load_classifier(store, run.run_id), thread_name="fer-preload")


def _name(run) -> str:
    return run.name or run.run_id


def _show(state, run) -> None:
    if state.state == READY:
        secs = f" (loaded in {state.seconds:.1f} s)" if state.seconds is not None else ""
        st.caption(f":green-badge[:material/check_circle: Model ready] **{_name(run)}**{secs}",
                   help="The default model and the face detector are loaded: predictions start at once.")
    elif state.state == FAILED:
        st.caption(f":red-badge[:material/error: Model not loaded] **{_name(run)}**: {state.error}")
    else:
        st.caption(f":blue-badge[:material/hourglass_top: Loading the model…] **{_name(run)}**",
                   help="The default model and the face detector load in the background; "
                        "every page works meanwhile.")


@st.fragment(run_every=STATUS_REFRESH_S)
def _status_while_loading(key, run) -> None:
    state = CLASSIFIERS.state(key)
    if state.state in (READY, FAILED):
        st.rerun()  # the whole app: draws the final status, with no refresh timer left behind
    _show(state, run)


def model_status() -> None:
    """The default model's load status (call inside `with st.sidebar`)."""
    if not preload_enabled():
        return
    found = _default()
    if found is None:
        return
    _, run, key = found
    state = CLASSIFIERS.state(key)
    if state.state in (READY, FAILED):
        _show(state, run)
    else:
        _status_while_loading(key, run)


__all__ = ["LOADING", "model_status", "start_default_preload"]
