"""Home: what fer-studio does, the dataset and model in use, and where to go next.

Renders fast: no TensorFlow, no dataset decoding here.
"""

import streamlit as st

from ui.datasets import dataset_label, dataset_source
from ui.page import friendly_errors
from ui.runs import STATUS_BADGE, default_run, get_store, no_model_prompt, report_corrupt_runs, run_label

st.title(":material/mood: fer-studio")
st.markdown(
    "Train, evaluate and use **facial-emotion recognition** models on "
    "[FER-2013](https://www.kaggle.com/datasets/msambare/fer2013): 48×48 grayscale faces, "
    "seven emotions: angry, disgust, fear, happy, sad, surprise, neutral."
)

left, right = st.columns(2, gap="large")

with left:
    st.subheader(":material/photo_library: Dataset")
    src = dataset_source()
    if src == "demo":
        st.markdown("Working on the **built-in demo set** :orange-badge[synthetic]: generated cartoon faces, "
                    "good for trying the app, not for a real model.")
    else:
        st.markdown(f"Working on **{dataset_label()}**")
    st.page_link("app_pages/dataset.py", label="Explore or change the dataset", icon=":material/arrow_forward:")

with right:
    st.subheader(":material/neurology: Model")
    with friendly_errors("Reading the model store"):
        store = get_store()
        runs = store.list_runs()
        report_corrupt_runs(runs)
        running = [r for r in runs if r.status == "running"]
        if running:
            st.markdown(f"{STATUS_BADGE['running']} Training **{running[0].name}** right now.")
            st.page_link("app_pages/train.py", label="Follow the training", icon=":material/monitoring:")
        best = default_run()
        if best is None:
            if not running:
                no_model_prompt(key="home_quick_train")
        else:
            st.markdown(f"Default model: **{run_label(best)}**")  # the label says "shipped" where it is
            st.caption(f"{sum(1 for r in runs if r.usable)} usable run(s) in `{store.root}`")

st.divider()
st.subheader("Pages")
LINKS = [
    ("app_pages/dataset.py", "Dataset explorer", ":material/photo_library:", "Load FER-2013 (zip, folder, CSV) or the demo set; class balance, duplicates, sample faces."),
    ("app_pages/train.py", "Train", ":material/model_training:", "Pick an architecture and hyper-parameters; watch live loss and accuracy; stop any time."),
    ("app_pages/evaluate.py", "Evaluate", ":material/analytics:", "Accuracy, per-class report, interactive confusion matrix, ROC curves; compare two runs."),
    ("app_pages/predict.py", "Predict", ":material/image_search:", "Drop photos: every face boxed and labelled, probabilities per face, CSV export."),
    ("app_pages/webcam.py", "Webcam", ":material/videocam:", "Live emotion recognition on your camera, or a snapshot."),
    ("app_pages/video.py", "Video", ":material/movie:", "Emotions over time in a video file: annotated copy, chart per face, tables."),
    ("app_pages/models.py", "Models", ":material/deployed_code:", "Import a .keras / .h5 model trained elsewhere; export as .keras, .h5 or TFLite."),
]
cols = st.columns(len(LINKS))
for col, (path, label, icon, text) in zip(cols, LINKS):
    with col:
        st.page_link(path, label=label, icon=icon)
        st.caption(text)
