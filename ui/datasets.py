"""The dataset the pages work on (chosen per browser session) and its loading, shared by the
sessions of this server process."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import streamlit as st

from fer_core.errors import FerError
from fer_core.paths import shared_fer2013_zip

DEMO_SOURCE = "demo"
DATASET_KEY = "dataset_source"  # session_state: the dataset the pages work on ("demo" or a path)
DATASET_LABEL_KEY = "dataset_label"  # session_state: how to name it (e.g. the uploaded file's name)


def dataset_source() -> str:
    """The dataset the pages work on: "demo" until the user picks another one."""
    return st.session_state.get(DATASET_KEY) or DEMO_SOURCE


def dataset_label() -> str:
    src = dataset_source()
    if src == DEMO_SOURCE:
        return "built-in demo set (synthetic)"
    return st.session_state.get(DATASET_LABEL_KEY) or Path(src).name


def set_dataset(source: str, label: str | None = None) -> None:
    st.session_state[DATASET_KEY] = source
    st.session_state[DATASET_LABEL_KEY] = label or (Path(source).name if source != DEMO_SOURCE else None)


def _source_stamp(source: str) -> str:
    """Changes when the file/folder behind a source changes (so the cache reloads)."""
    if source == DEMO_SOURCE:
        return "demo"
    try:
        st_ = os.stat(source)
        return f"{st_.st_mtime_ns}-{st_.st_size}"
    except OSError:
        return "missing"


# Loaded datasets, shared by every session of this server process (load_dataset also keeps a
# decoded copy on disk). Not st.cache_resource: Streamlit replays the elements a cached function
# drew, so the decoding progress bar would come back on every rerun.
_DATASETS: dict[tuple[str, str], Any] = {}
_DATASETS_LOCK = threading.Lock()
_MAX_DATASETS = 3


def load_dataset_ui(source: str | None = None, show_progress: bool = True):
    """The Dataset for `source` (default: the chosen one), loading it with a progress bar.

    Raises FerError (e.g. DatasetError) for the caller's friendly_errors to show.
    """
    from fer_core.data import load_dataset

    source = source or dataset_source()
    key = (source, _source_stamp(source))
    with _DATASETS_LOCK:
        if key in _DATASETS:
            return _DATASETS[key]
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not show_progress:
            return
        if bar is None:
            bar = st.progress(0.0, text="Decoding images…")
        frac = done / total if total else 0.0
        bar.progress(min(max(frac, 0.0), 1.0), text=f"Decoding images… {done:,}/{total:,}" if total else "Decoding images…")

    try:
        ds = load_dataset(source, progress=progress)
    finally:
        if bar is not None:
            bar.empty()
    with _DATASETS_LOCK:
        while len(_DATASETS) >= _MAX_DATASETS:
            _DATASETS.pop(next(iter(_DATASETS)))
        _DATASETS[key] = ds
    return ds


def dataset_caption(ds: Any) -> str:
    synthetic = " · :orange-badge[synthetic]" if getattr(ds, "synthetic", False) else ""
    sizes = ", ".join(f"{k}: {len(v.labels):,}" for k, v in ds.splits.items())
    return f"Dataset **{ds.name}**{synthetic} ({sizes})"


def current_dataset(show_errors: bool = True):
    """Load the chosen dataset; on failure show why, fall back to the demo set and say so."""
    src = dataset_source()
    try:
        return load_dataset_ui(src)
    except FerError as exc:
        if not show_errors:
            raise
        st.error(f"The chosen dataset ({dataset_label()}) cannot be loaded: {exc}\n\n"
                 "Falling back to the built-in demo set; pick another source on the Dataset explorer page.")
        set_dataset(DEMO_SOURCE)
        return load_dataset_ui(DEMO_SOURCE)


def shared_dataset_path() -> Path | None:
    return shared_fer2013_zip()
