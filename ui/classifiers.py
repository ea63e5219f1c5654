"""Loaded classifiers (process-wide, filled ahead of need by ui/warmup.py) and the model and
face-detector pickers of the Predict and Webcam pages. No TensorFlow import at module level."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from fer_core.inference.warmup import LoadCache
from ui.runs import get_store, model_picker

if TYPE_CHECKING:  # pragma: no cover
    from fer_core.store.layout import RunInfo


# Loaded classifiers, shared by every session of this server process and filled ahead of need
# by the background preload of the default model (ui/warmup.py). A page asking for a model that
# is still loading joins that load instead of starting a second one.
CLASSIFIERS = LoadCache(max_entries=3)


def load_classifier(run: RunInfo):
    """The EmotionClassifier for a run (cached; reloaded when its model file or meta.json changes)."""
    from fer_core.inference.warmup import classifier_key
    from fer_core.inference.warmup import load_classifier as _load

    store = get_store()
    key = classifier_key(store.root, run)
    if CLASSIFIERS.is_ready(key):
        return CLASSIFIERS.get(key, lambda: _load(store, run.run_id))
    with st.spinner("Loading the model…"):
        return CLASSIFIERS.get(key, lambda: _load(store, run.run_id))


def model_and_detector(model_key: str, detector_key: str) -> tuple[RunInfo | None, str]:
    """The model picker beside a face-detector selectbox (Predict and Webcam pages)."""
    from fer_core.inference.faces import available_detectors, describe_detector

    c1, c2 = st.columns([3, 2])
    with c1:
        run = model_picker("Model", key=model_key)
    with c2:
        detector_name = st.selectbox("Face detector", available_detectors() or ["haar"], key=detector_key,
                                     format_func=describe_detector,
                                     help="YuNet finds small and turned faces; Haar is the classic fallback.")
    return run, detector_name
