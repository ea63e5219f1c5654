"""Dataset explorer: choose the dataset every page works on, and look at it."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import streamlit as st

from fer_core.data import stats as stats
from fer_core.charts import class_distribution_figure, pixel_histogram_figure
from fer_core.colors import emotion_hex
from fer_core.data import cache
from fer_core.errors import FerError
from fer_core.paths import cache_dir
from ui.datasets import DEMO_SOURCE, dataset_caption, dataset_label, dataset_source, load_dataset_ui, set_dataset, shared_dataset_path
from ui.page import friendly_errors, page_header

page_header(
    "Dataset explorer", ":material/photo_library:",
    "Choose the dataset the Train and Evaluate pages use, check what was loaded (and what was "
    "skipped), and look at the faces. Accepted: the Kaggle FER-2013 zip or its extracted folder "
    "(train/ and test/ with one folder per emotion), or the original fer2013.csv.",
)

# --------------------------------------------------------------------------- source choice

SRC_DEMO, SRC_SHARED, SRC_PATH, SRC_UPLOAD = "Demo set (synthetic)", "FER-2013 (team copy)", "Path on this machine", "Upload a zip or CSV"
shared = shared_dataset_path()
options = [SRC_DEMO] + ([SRC_SHARED] if shared else []) + [SRC_PATH, SRC_UPLOAD]


def switch_to(source: str, label: str) -> bool:
    """Load `source` (progress shown); make it the current dataset if that worked."""
    with friendly_errors(f"Could not load {label}", hint="Check the path or file and try again; the previous dataset stays selected."):
        load_dataset_ui(source)
        set_dataset(source, label)
        st.toast(f"Now using {label}", icon=":material/check:")
        return True
    return False


def save_upload(upload) -> Path:
    """Write an uploaded file to the cache folder in chunks, with a progress bar; reuse it if already there."""
    digest = hashlib.sha1(f"{upload.name}|{upload.size}|{getattr(upload, 'file_id', '')}".encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(upload.name).name)[-80:] or "upload"
    folder = cache_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}-{safe}"
    if target.is_file() and target.stat().st_size == upload.size:
        os.utime(target)  # recently used: pruned last
        return target
    bar = st.progress(0.0, text=f"Saving {upload.name}…")
    tmp = target.with_suffix(target.suffix + ".part")
    upload.seek(0)
    done, total, chunk = 0, max(int(upload.size), 1), 4 << 20
    with open(tmp, "wb") as f:
        while block := upload.read(chunk):
            f.write(block)
            done += len(block)
            bar.progress(min(done / total, 1.0), text=f"Saving {upload.name}… {done / 1e6:.1f} / {total / 1e6:.1f} MB")
    tmp.replace(target)
    bar.empty()
    # A public app keeps only the most recent uploads (fer_core.data.cache limits; docs/LIMITS.md).
    cache.prune(folder, cache.MAX_KEPT_UPLOADS, cache.MAX_UPLOADS_BYTES, keep=[target])
    return target


current = dataset_source()
if current == DEMO_SOURCE:
    default_choice = SRC_DEMO
elif shared and current == str(shared):
    default_choice = SRC_SHARED
elif Path(current).parent == cache_dir() / "uploads":
    default_choice = SRC_UPLOAD
else:
    default_choice = SRC_PATH
if "ds_choice" not in st.session_state:
    st.session_state["ds_choice"] = default_choice
choice = st.segmented_control("Source", options, key="ds_choice", help="Where the images come from.") or default_choice

if choice == SRC_DEMO:
    if current != DEMO_SOURCE:
        switch_to(DEMO_SOURCE, "built-in demo set (synthetic)")
elif choice == SRC_SHARED and shared:
    st.caption(f"`{shared}`")
    if current != str(shared):
        switch_to(str(shared), "FER-2013")
elif choice == SRC_PATH:
    with st.form("path_form", border=False):
        c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
        path = c1.text_input("Folder, zip or CSV path", value="" if current == DEMO_SOURCE else current,
                             placeholder="/data/fer2013  ·  /data/fer2013.zip  ·  /data/fer2013.csv",
                             help="A folder with train/ and test/ subfolders (one folder per emotion inside), the Kaggle zip, or fer2013.csv.")
        submitted = c2.form_submit_button("Load", icon=":material/upload_file:", width="stretch")
    if submitted:
        if not path.strip():
            st.error("Type the path of a folder, a .zip or a .csv first.")
        elif not Path(path.strip()).expanduser().exists():
            st.error(f"`{path.strip()}` does not exist on this machine. Check the spelling, or upload the file instead.")
        else:
            p = str(Path(path.strip()).expanduser())
            switch_to(p, Path(p).name)
elif choice == SRC_UPLOAD:
    up = st.file_uploader("Drop the FER-2013 zip or fer2013.csv here", type=["zip", "csv"], key="ds_upload",
                          help="Up to 1 GB. The file is saved to the cache folder, then decoded (progress shown).")
    if up is not None and st.session_state.get("ds_upload_done") != getattr(up, "file_id", up.name):
        with friendly_errors(f"Could not save {up.name}"):
            target = save_upload(up)
            if switch_to(str(target), up.name):
                st.session_state["ds_upload_done"] = getattr(up, "file_id", up.name)

# --------------------------------------------------------------------------- the dataset

try:
    ds = load_dataset_ui()
except FerError as exc:
    st.error(f"The chosen dataset ({dataset_label()}) cannot be loaded: {exc}\n\nUsing the built-in demo set instead.")
    set_dataset(DEMO_SOURCE)
    ds = load_dataset_ui(DEMO_SOURCE)

st.markdown(dataset_caption(ds))
if ds.synthetic:
    st.warning("This is the **synthetic demo set**: generated faces for trying the app. Models trained on it "
               "do not recognise real emotions; use FER-2013 for that.", icon=":material/science:")

labels = list(ds.labels)
splits = list(ds.splits)


@st.cache_data(show_spinner=False, max_entries=8)
def _mean_faces(fp: str, split: str, _ds) -> dict:
    s = _ds.splits[split]
    return stats.mean_faces(s.images, s.labels, len(_ds.labels))


@st.cache_data(show_spinner=False, max_entries=8)
def _histograms(fp: str, _ds) -> dict:
    return {name: stats.pixel_histogram(s.images) for name, s in _ds.splits.items()}


def upscale(img: np.ndarray, factor: int = 2) -> np.ndarray:
    return cv2.resize(img, (img.shape[1] * factor, img.shape[0] * factor), interpolation=cv2.INTER_NEAREST)


def label_html(name: str) -> str:
    return (f"<span style='display:inline-block;padding:0 .5em;border-radius:.5em;"
            f"background:{emotion_hex(name)};color:white;font-weight:600'>{name}</span>")


tab_report, tab_dist, tab_samples, tab_mean, tab_hist = st.tabs(
    [":material/fact_check: Load report", ":material/bar_chart: Class balance", ":material/grid_view: Samples",
     ":material/face: Mean faces", ":material/insights: Pixel intensity"])

# --------------------------------------------------------------------------- report
with tab_report:
    rep = stats.report_rows(ds.report)
    fmt = getattr(ds.report, "format", "?")
    how = ("from the decoded cache" if getattr(ds.report, "from_cache", False)
           else f"decoded in {getattr(ds.report, 'seconds', 0.0):.1f} s")
    st.caption(f"Read as **{fmt}** from `{getattr(ds.report, 'source', '?')}` ({how})"
               + (f" · {ds.report.resized:,} image(s) were not 48×48 and were resized" if getattr(ds.report, "resized", 0) else ""))
    cols = st.columns(len(rep["totals"]) + 4)
    for col, (split, n) in zip(cols, rep["totals"].items()):
        col.metric(f"{split} images", f"{n:,}")
    n_skipped = sum(n for _, n in rep["skipped_by_reason"])
    n_blank = sum(n for _, n in rep["blank"])
    n_dup_within = sum(imgs for _, _, imgs in rep["duplicates_within"])
    n_dup_across = sum(n for _, _, n in rep["duplicates_across"])
    k = len(rep["totals"])
    cols[k].metric("skipped", f"{n_skipped:,}", help="Files or rows that could not be used (reasons below).")
    cols[k + 1].metric("blank", f"{n_blank:,}", help="Near-constant images (no face at all). They stay in the data.")
    cols[k + 2].metric("duplicates in a split", f"{n_dup_within:,}", help="Images whose pixels are identical to another image of the same split.")
    cols[k + 3].metric("duplicates across splits", f"{n_dup_across:,}",
                       help="Pixel-identical pairs in two splits, e.g. a test image that is also in train: it inflates test accuracy.")
    if n_skipped:
        st.markdown("**Skipped, by reason**")
        st.dataframe(pd.DataFrame(rep["skipped_by_reason"], columns=["reason", "count"]), hide_index=True)
        if rep["skipped_examples"]:
            with st.expander("Examples of skipped items"):
                st.dataframe(pd.DataFrame(rep["skipped_examples"], columns=["item", "reason"]), hide_index=True)
    else:
        st.success("Nothing was skipped.", icon=":material/check_circle:")
    if n_dup_across:
        st.warning(f"{n_dup_across:,} image pair(s) are identical across splits "
                   + ", ".join(f"({a} ↔ {b}: {n:,})" for a, b, n in rep["duplicates_across"])
                   + ". Test accuracy on those images measures memory, not generalisation.", icon=":material/content_copy:")
    if n_dup_within:
        st.info("Duplicates within a split: " + ", ".join(f"{s}: {g:,} group(s), {i:,} images" for s, g, i in rep["duplicates_within"]),
                icon=":material/content_copy:")
    blank = getattr(ds.report, "blank", {}) or {}
    if n_blank:
        with st.expander(f"{n_blank} blank image(s)"):
            for split, idx in blank.items():
                if idx and split in ds.splits:
                    imgs = [ds.splits[split].images[i] for i in list(idx)[:24]]
                    st.image(upscale(stats.montage(imgs, cols=12)), caption=f"{split}: {len(idx)} blank", clamp=True)
    across = getattr(ds.report, "duplicates_across", []) or []
    if across:
        with st.expander("Examples of duplicates across splits"):
            pairs = []
            for p in across[:12]:
                try:
                    a = ds.splits[p["split_a"]].images[int(p["index_a"])]
                    b = ds.splits[p["split_b"]].images[int(p["index_b"])]
                    pairs += [a, b]
                except (KeyError, IndexError, ValueError, TypeError):
                    continue
            if pairs:
                st.image(upscale(stats.montage(pairs, cols=8)), caption="pairs side by side (left: first split, right: second)")

# --------------------------------------------------------------------------- distribution
with tab_dist:
    counts = {name: stats.class_counts(s.labels, labels) for name, s in ds.splits.items()}
    cols = st.columns(len(counts))
    for col, (split, c) in zip(cols, counts.items()):
        ratio = stats.imbalance_ratio(c)
        missing = stats.missing_classes(c)
        col.metric(f"imbalance ratio ({split})", "—" if ratio is None else f"{ratio:.1f} : 1",
                   help="Largest class / smallest non-empty class. Above ~3 consider class weights (Train page).")
        if missing:
            col.caption(f"no images of: {', '.join(missing)}")
    st.plotly_chart(class_distribution_figure(counts, title="Images per class and split"), key="dist_chart")
    st.dataframe(pd.DataFrame(counts).rename_axis("class").reset_index(), hide_index=True)

# --------------------------------------------------------------------------- samples
with tab_samples:
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    sample_split = c1.selectbox("Split", splits, key="sample_split")
    per_class = c2.slider("Faces per class", 4, 24, 12, key="per_class")
    if c3.button("Reshuffle", icon=":material/shuffle:", width="stretch"):
        st.session_state["sample_seed"] = st.session_state.get("sample_seed", 0) + 1
    seed = st.session_state.get("sample_seed", 0)
    s = ds.splits[sample_split]
    picks = stats.sample_indices(s.labels, per_class, seed=seed, num_classes=len(labels))
    for ci, name in enumerate(labels):
        idx = picks.get(ci, np.array([], dtype=int))
        row = st.columns([1, 6], vertical_alignment="center")
        row[0].html(label_html(name) + f"<div style='font-size:.8em;opacity:.7'>{int((s.labels == ci).sum()):,} images</div>")
        if len(idx):
            row[1].image(upscale(stats.montage([s.images[i] for i in idx], cols=per_class)), clamp=True)
        else:
            row[1].caption("no images of this class")

# --------------------------------------------------------------------------- mean faces
with tab_mean:
    mean_split = st.selectbox("Split", splits, key="mean_split")
    means = _mean_faces(ds.fingerprint, mean_split, ds)
    cols = st.columns(len(labels))
    for ci, (col, name) in enumerate(zip(cols, labels)):
        with col:
            st.html(label_html(name))
            m = means.get(ci)
            if m is None:
                st.caption("no images")
            else:
                st.image(upscale(m, 3), width="stretch")
    st.caption("The average of every face of a class: shows what the class has in common (mouth shape, brow) and how well faces are aligned.")

# --------------------------------------------------------------------------- histogram
with tab_hist:
    hists = _histograms(ds.fingerprint, ds)
    st.plotly_chart(pixel_histogram_figure(hists), key="hist_chart")
    bstats = {name: stats.image_brightness_stats(s.images) for name, s in ds.splits.items()}
    st.caption(" · ".join(f"{k}: mean {v['mean']:.0f}, std {v['std']:.0f}" for k, v in bstats.items())
               + ". Very dark or bright peaks point to blank or badly exposed images.")
