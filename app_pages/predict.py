"""Predict: drop photos or a zip of photos; every face is found, boxed and labelled, with its probabilities."""

from __future__ import annotations

import streamlit as st

from ui.classifiers import load_classifier, model_and_detector
from ui.examples import EXAMPLES, available_examples, example_upload
from ui.page import friendly_errors, page_header
from ui.predict_view import predict_and_show, uncertain_slider

page_header(
    "Predict", ":material/image_search:",
    "Drop one or many photos (JPEG, PNG, WebP), or a zip of them. Every face found is boxed and labelled with "
    "its emotion, with a probability chart per face; many photos also get a sortable table and a count per "
    "emotion. Results can be downloaded as CSV.",
)

run, detector_name = model_and_detector("model_run", "pred_detector")
st.page_link("app_pages/models.py", label="Use your own model: import a .keras or .h5 file", icon=":material/upload:")
c1, c2, c3 = st.columns(3)
whole = c1.toggle("No face found → classify the whole image as a face", key="pred_whole",
                  help="FER-2013 images are already tight face crops: a detector often finds nothing in them.")
gradcam = c2.toggle("Grad-CAM saliency", key="pred_gradcam",
                    help="Show which parts of each face drove the prediction (slower).")
uncertain_below = uncertain_slider("pred_uncertain", c3)

files = st.file_uploader("Drop images or a zip of images here", type=["jpg", "jpeg", "png", "webp", "zip"],
                         accept_multiple_files=True, key="pred_upload",
                         help="Up to 50 MB and 50 megapixels per image. A zip is read in memory, never extracted, "
                              "within the same safety limits as dataset zips.")
example = None
if not files and available_examples():
    example = st.pills("No photo at hand? Try one of these", available_examples(), format_func=EXAMPLES.get,
                       key="pred_example", help="Photos from scikit-image's free data set, analysed like an upload.")
if run is None:
    st.stop()
if not files and not example:
    st.info("Drop one or more photos, or a zip of photos, above to start, or pick an example.",
            icon=":material/add_photo_alternate:")
    st.stop()
uploads = [(f.name, f.getvalue()) for f in files] if files else [example_upload(example)]

classifier = None
with friendly_errors("Loading the model", hint="Pick another model, or retrain this one on the Train page."):
    classifier = load_classifier(run)
if classifier is None:
    st.stop()

with friendly_errors("Predicting", hint="Check the images (JPEG, PNG or WebP photos, or a zip of them) and try again."):
    predict_and_show(uploads, classifier, detector_name,
                     whole_image=whole, gradcam=gradcam, key_prefix="pred", uncertain_below=uncertain_below)
