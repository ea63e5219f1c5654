"""fer-studio: train, evaluate and use facial-emotion-recognition models (FER-2013).

Run with `streamlit run streamlit_app.py`. This file only sets up the navigation; each page
lives in pages/ and the logic in fer_core. Nothing here imports TensorFlow.
"""

import streamlit as st

st.set_page_config(page_title="fer-studio", page_icon="🙂", layout="wide", initial_sidebar_state="expanded")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Dataset explorer", icon=":material/photo_library:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("pages/predict.py", title="Predict", icon=":material/image_search:"),
    st.Page("pages/webcam.py", title="Webcam", icon=":material/videocam:"),
]

nav = st.navigation(PAGES)
with st.sidebar:
    st.caption("fer-studio · facial emotion recognition on FER-2013 (48×48 grayscale, 7 emotions)")
nav.run()
