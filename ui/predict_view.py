"""Shared by the Predict and Webcam (snapshot) pages: classify photos (or zips of photos) and show the results."""

from __future__ import annotations

import hashlib

import streamlit as st

from fer_core.charts import probability_figure
from fer_core.colors import emotion_hex
from fer_core.errors import FerError
from fer_core.labels import FER_LABELS

#: Photos shown one by one (annotated image, crops, probabilities); all of them are in the table.
MAX_CARDS = 12


def _detector(name: str):
    """One detector per session and name (detectors keep native state: not shared across sessions)."""
    from fer_core.inference.batch_predict import STILL_IMAGE_DETECT_WIDTH
    from fer_core.inference.faces import make_detector

    cache = st.session_state.setdefault("_still_detectors", {})
    if name not in cache:
        cache[name] = make_detector(name, max_width=STILL_IMAGE_DETECT_WIDTH)
    return cache[name]


def badge(label: str, confidence: float, uncertain_below: float = 0.0) -> str:
    """'happy 87%' in the emotion's colour; under `uncertain_below`, 'uncertain: happy? 38%' in grey."""
    uncertain = confidence < uncertain_below
    colour = "#969696" if uncertain else emotion_hex(label)
    text = f"uncertain: {label}? {confidence:.0%}" if uncertain else f"{label} {confidence:.0%}"
    return (f"<span style='display:inline-block;padding:.1em .6em;border-radius:.6em;background:{colour};"
            f"color:white;font-weight:600'>{text}</span>")


def uncertain_slider(key: str, container=st) -> float:
    """The confidence under which a face is shown as "uncertain" (0: never), as a fraction."""
    pct = container.slider("Say \"uncertain\" below confidence (%)", 0, 90, 0, 5, key=key,
                           help="A face whose top emotion is less likely than this is shown as uncertain, in grey. "
                                "The shipped models' probabilities are calibrated (temperature fitted on their "
                                "validation split): of the faces shown at 60%, about 60% are right.")
    return pct / 100.0


def _predicted(files: list[tuple[str, bytes]], classifier, detector_name: str, whole_image: bool,
               key_prefix: str) -> tuple[list, dict[int, object], str]:
    """(results, decoded images of the first MAX_CARDS photos, digest): computed once per set of uploads
    and settings (kept in the session, so toggling Grad-CAM or a rerun does not classify again)."""
    from fer_core.inference.sources import predict_sources, upload_sources

    h = hashlib.sha1()
    for name, data in files:
        h.update(name.encode() + b"\0" + hashlib.sha1(data).digest())
    digest = h.hexdigest()[:12]
    key = (digest, id(classifier), detector_name, bool(whole_image))
    cached = st.session_state.get(f"_{key_prefix}_results")
    if cached and cached[0] == key:
        return cached[1], cached[2], digest
    sources = upload_sources(files)
    results, images = [], {}
    bar = st.progress(0.0, text=f"Finding and classifying faces in {len(sources):,} photo(s)…")
    for i, (res, img) in enumerate(predict_sources(sources, _detector(detector_name), classifier, whole_image)):
        results.append(res)
        if img is not None and i < MAX_CARDS:
            images[i] = img
        bar.progress((i + 1) / len(sources), text=f"{i + 1:,} of {len(sources):,} photo(s)")
    bar.empty()
    st.session_state[f"_{key_prefix}_results"] = (key, results, images)
    return results, images, digest


def _summary_table(results: list, key: str) -> None:
    """Many photos: faces per emotion, and every face in a sortable table."""
    import pandas as pd

    from fer_core.charts import class_distribution_figure
    from fer_core.inference.batch_predict import results_table

    counts = {lab: 0 for lab in FER_LABELS}
    for r in results:
        for f in r.faces:
            counts[f.label] += 1
    st.plotly_chart(class_distribution_figure({"faces": counts}, title="Faces per emotion"), key=f"{key}_counts")
    table = pd.DataFrame(results_table(results)).convert_dtypes()
    st.dataframe(table, hide_index=True, key=f"{key}_table", column_config={
        "confidence": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1),
    })
    st.caption("Click a column header to sort.")


def predict_and_show(files: list[tuple[str, bytes]], classifier, detector_name: str, *, whole_image: bool,
                     gradcam: bool, key_prefix: str, uncertain_below: float = 0.0) -> list[dict]:
    """Decode, detect, classify and display photos and zips of photos; returns the CSV rows."""
    from fer_core.inference.batch_predict import annotate, results_csv, results_table
    from fer_core.inference.images import to_rgb
    from fer_core.inference.crops import DEFAULT_MARGIN, crop_face

    results, images, digest = _predicted(files, classifier, detector_name, whole_image, key_prefix)
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
    st.download_button("Download results (CSV)", results_csv(rows).encode(),
                       file_name="fer_predictions.csv", mime="text/csv", icon=":material/download:",
                       key=f"{key_prefix}_csv_{digest}")
    if len(results) > 1:
        _summary_table(results, f"{key_prefix}_{digest}")
    if len(results) > MAX_CARDS:
        st.caption(f"The first {MAX_CARDS} of {len(results):,} photos are shown below; all are in the table and the CSV.")

    for i, res in enumerate(results[:MAX_CARDS]):
        name, img = res.name, images.get(i)
        with st.container(border=True):
            if res.error:
                st.error(f"**{name}**: {res.reason}\n\nUse a JPEG, PNG or WebP photo, or a zip of them.",
                         icon=":material/broken_image:")
                continue
            left, right = st.columns([3, 2], gap="large")
            with left:
                st.image(to_rgb(annotate(img, res, uncertain_below)), caption=res.summary(), width="stretch")
            with right:
                if not res.faces:
                    st.warning(
                        f"**No face found** in {name}. If it is already a tight face crop (as FER-2013 images are), "
                        "turn on *classify the whole image*; otherwise try another face detector or a larger photo.",
                        icon=":material/face_retouching_off:")
                    continue
                for f in res.faces:
                    title = "whole image" if f.whole_image else f"face {f.index + 1}"
                    st.html(f"<b>{title}</b> &nbsp; {badge(f.label, f.confidence, uncertain_below)}")
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
