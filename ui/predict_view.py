"""Shared by the Predict and Webcam (snapshot) pages: classify images and show the results."""

from __future__ import annotations

import hashlib

import streamlit as st

from fer_core.charts import probability_figure
from fer_core.colors import emotion_hex
from fer_core.errors import FerError, ImageError
from fer_core.labels import FER_LABELS


def _detector(name: str):
    """One detector per session and name (detectors keep native state: not shared across sessions)."""
    from fer_core.inference.batch_predict import STILL_IMAGE_DETECT_WIDTH
    from fer_core.inference.faces import make_detector

    cache = st.session_state.setdefault("_still_detectors", {})
    if name not in cache:
        cache[name] = make_detector(name, max_width=STILL_IMAGE_DETECT_WIDTH)
    return cache[name]


def badge(label: str, confidence: float) -> str:
    return (f"<span style='display:inline-block;padding:.1em .6em;border-radius:.6em;background:{emotion_hex(label)};"
            f"color:white;font-weight:600'>{label} {confidence:.0%}</span>")


def predict_and_show(files: list[tuple[str, bytes]], classifier, detector_name: str, *, whole_image: bool,
                     gradcam: bool, key_prefix: str) -> list[dict]:
    """Decode, detect, classify and display; returns the CSV rows."""
    from fer_core.inference.batch_predict import annotate, predict_images, results_csv, results_table
    from fer_core.inference.images import load_image_bytes, to_rgb
    from fer_core.inference.overlay import DEFAULT_MARGIN
    from fer_core.inference.overlay import crop_face

    decoded: list[tuple[str, object]] = []
    decode_errors: dict[int, str] = {}
    for i, (name, data) in enumerate(files):
        try:
            decoded.append((name, load_image_bytes(data, name=name)))
        except ImageError as exc:
            decoded.append((name, None))
            decode_errors[i] = str(exc)
    ok = [i for i, (_, img) in enumerate(decoded) if img is not None]
    detector = _detector(detector_name)
    with st.spinner(f"Finding and classifying faces in {len(ok)} image(s)…"):
        predicted = predict_images([decoded[i] for i in ok], detector, classifier, whole_image)
    from fer_core.inference.batch_predict import ImageResult

    results = [ImageResult(name, error=decode_errors.get(i)) for i, (name, _) in enumerate(decoded)]
    for i, r in zip(ok, predicted):
        results[i] = r

    n_faces = sum(len(r.faces) for r in results if r.faces and not r.faces[0].whole_image)
    n_none = sum(1 for r in results if not r.error and not r.faces)
    n_whole = sum(1 for r in results if r.faces and r.faces[0].whole_image)
    n_bad = sum(1 for r in results if r.error)
    head = f"**{n_faces} face{'s' if n_faces != 1 else ''}** found in {len(results)} image{'s' if len(results) != 1 else ''}"
    if n_none:
        head += f" · no face in {n_none}"
    if n_whole:
        head += f" · {n_whole} classified as a whole image (no face found)"
    if n_bad:
        head += f" · {n_bad} unreadable"
    st.markdown(head)
    rows = results_table(results)
    digest = hashlib.sha1("|".join(n for n, _ in files).encode()).hexdigest()[:8]
    st.download_button("Download results (CSV)", results_csv(rows).encode(),
                       file_name="fer_predictions.csv", mime="text/csv", icon=":material/download:",
                       key=f"{key_prefix}_csv_{digest}")

    for i, (res, (name, img)) in enumerate(zip(results, decoded)):
        with st.container(border=True):
            if res.error:
                st.error(f"**{name}**: {res.error}\n\nUse a JPEG, PNG or WebP photo.", icon=":material/broken_image:")
                continue
            left, right = st.columns([3, 2], gap="large")
            with left:
                st.image(to_rgb(annotate(img, res)), caption=res.summary(), width="stretch")
            with right:
                if not res.faces:
                    st.warning(
                        f"**No face found** in {name}. If it is already a tight face crop (as FER-2013 images are), "
                        "turn on *classify the whole image*; otherwise try another face detector or a larger photo.",
                        icon=":material/face_retouching_off:")
                    continue
                for f in res.faces:
                    title = "whole image" if f.whole_image else f"face {f.index + 1}"
                    st.html(f"<b>{title}</b> &nbsp; {badge(f.label, f.confidence)}")
                    c1, c2 = st.columns([1, 2], vertical_alignment="center")
                    crop = crop_face(img, f.box, 0.0 if f.whole_image else DEFAULT_MARGIN, not f.whole_image)
                    with c1:
                        if gradcam:
                            try:
                                from fer_core.inference.saliency import overlay

                                cam = classifier.saliency(crop)
                                st.image(overlay(crop, cam), caption="Grad-CAM", width="stretch")
                            except (FerError, ValueError) as exc:
                                st.image(to_rgb(crop), width="stretch")
                                st.caption(f"Grad-CAM unavailable: {exc}")
                        else:
                            st.image(to_rgb(crop), width="stretch")
                    with c2:
                        st.plotly_chart(probability_figure(f.probabilities, list(FER_LABELS), height=210),
                                        key=f"{key_prefix}_{digest}_{i}_{f.index}")
    return rows
