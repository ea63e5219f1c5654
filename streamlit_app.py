"""fer-studio: train, evaluate and use facial-emotion-recognition models (FER-2013).

Run with `streamlit run streamlit_app.py`. This file only sets up the navigation; each page
lives in app_pages/ and the logic in fer_core. Nothing here imports TensorFlow (the default model is
preloaded in a background thread once the first page is drawn: ui/warmup.py).

The folder is deliberately not called `pages/`: with a `pages/` folder next to this script,
Streamlit 1.67 serves a deep link or reload of /predict as a stand-alone v1 page (its own
sidebar, no set_page_config from here) instead of going through st.navigation.
"""

from pathlib import Path

import streamlit as st

from ui.runner import keep_keras_session
from ui.warmup import model_status, start_default_preload
from ui.webcam import preload_webrtc_native

# Must run before anything imports TensorFlow (see ui/webcam.py: TF then libsrtp segfaults).
preload_webrtc_native()
# Streamlit would otherwise reset Keras (and TensorFlow's kernel cache) after every run (ui/runner.py).
keep_keras_session()

ROOT = Path(__file__).resolve().parent

# The icon ships with the app (a Material icon here would be fetched from Google's font CDN: none
# offline). "auto": the sidebar starts open on a wide screen and closed on a phone, where it would
# cover the page (Predict's uploader) on every load.
st.set_page_config(page_title="fer-studio", page_icon=ROOT / "assets" / "icon.png", layout="wide",
                   initial_sidebar_state="auto")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/dataset.py", title="Dataset explorer", icon=":material/photo_library:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("app_pages/predict.py", title="Predict", icon=":material/image_search:"),
    st.Page("app_pages/webcam.py", title="Webcam", icon=":material/videocam:"),
    st.Page("app_pages/video.py", title="Video", icon=":material/movie:"),
    st.Page("app_pages/batch.py", title="Batch", icon=":material/dataset:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/deployed_code:"),
]

nav = st.navigation(PAGES)
with st.sidebar:
    model_status()  # "Loading the model…" until the background preload is done, then "Model ready"
    st.caption("fer-studio · facial emotion recognition on FER-2013 (48×48 grayscale, 7 emotions)")
try:
    nav.run()
finally:
    # After the page is drawn (also when it ended with st.stop / st.rerun): load the default model
    # and the face detector in a background thread, once per server process, so the first
    # prediction does not wait for TensorFlow. The page's first render never does.
    start_default_preload()
