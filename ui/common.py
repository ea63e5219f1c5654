"""Small Streamlit helpers shared by the pages: errors, the chosen dataset, the model store.

Nothing here imports TensorFlow at module level; heavy imports happen inside functions
that need them (loaded classifiers are cached process-wide in CLASSIFIERS).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from fer_core.errors import FerError
from fer_core.paths import models_dir, shared_fer2013_zip
from fer_core.training.architectures import DEFAULT_ARCHITECTURE
from fer_core.inference.warmup import LoadCache

if TYPE_CHECKING:  # pragma: no cover
    from fer_core.store.runs import ModelStore
    from fer_core.store.layout import RunInfo

DEMO_SOURCE = "demo"
DATASET_KEY = "dataset_source"  # session_state: the dataset the pages work on ("demo" or a path)
DATASET_LABEL_KEY = "dataset_label"  # session_state: how to name it (e.g. the uploaded file's name)

STATUS_BADGE = {
    "starting": ":blue-badge[:material/hourglass_top: starting]",
    "running": ":blue-badge[:material/sync: running]",
    "finished": ":green-badge[:material/check: finished]",
    "stopped": ":orange-badge[:material/stop: stopped]",
    "failed": ":red-badge[:material/error: failed]",
    "corrupt": ":red-badge[:material/broken_image: corrupt]",
}


# --------------------------------------------------------------------------- errors


@contextlib.contextmanager
def friendly_errors(action: str = "", hint: str = "") -> Iterator[None]:
    """Show FerError (and anything unexpected) as st.error with what to do; never a traceback.

    Streamlit's own control-flow exceptions (st.rerun, st.stop, st.switch_page) pass through.
    """
    try:
        yield
    except FerError as exc:
        prefix = f"{action}: " if action else ""
        st.error(f"{prefix}{exc}" + (f"\n\n{hint}" if hint else ""), icon=":material/error:")
    except Exception as exc:  # noqa: BLE001
        if _is_streamlit_control_flow(exc):
            raise
        prefix = f"{action} failed" if action else "Something went wrong"
        st.error(
            f"{prefix}: {type(exc).__name__}: {str(exc)[:500]}"
            + (f"\n\n{hint}" if hint else "\n\nCheck the input and try again; if it keeps happening, report it with this message."),
            icon=":material/error:",
        )


def _is_streamlit_control_flow(exc: BaseException) -> bool:
    """st.rerun / st.stop / st.switch_page raise these; they must reach Streamlit."""
    try:
        from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException
    except ImportError:  # pragma: no cover - other Streamlit layouts
        return (type(exc).__module__ or "").startswith("streamlit.")
    return isinstance(exc, ScriptControlException)


# --------------------------------------------------------------------------- page chrome


def page_header(title: str, icon: str, intro: str) -> None:
    st.title(f"{icon} {title}" if icon else title)
    st.caption(intro)


# --------------------------------------------------------------------------- dataset


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


# --------------------------------------------------------------------------- model store


def get_store() -> ModelStore:
    from fer_core.store.runs import ModelStore

    return ModelStore(models_dir())


def list_runs_ui(store: ModelStore | None = None) -> list[RunInfo]:
    store = store or get_store()
    return store.list_runs()


def report_corrupt_runs(runs: list[RunInfo]) -> None:
    bad = [r for r in runs if r.status == "corrupt"]
    if bad:
        with st.expander(f":material/warning: {len(bad)} run(s) in the model store cannot be read", expanded=False):
            for r in bad:
                st.markdown(f"- `{r.run_id}`: {r.error or 'unreadable'}")
            st.caption(f"Model store: `{get_store().root}`. Delete or repair these folders; the other runs work normally.")


def run_label(run: RunInfo) -> str:
    meta = run.meta or {}
    acc = (run.metrics or {}).get("test_accuracy") or (run.metrics or {}).get("val_accuracy")
    acc_txt = f" · {acc:.1%}" if isinstance(acc, (int, float)) else ""
    ds = meta.get("dataset") or {}
    syn = " (synthetic data)" if ds.get("synthetic") else ""
    arch = run.architecture or "?"
    shipped = " ★ shipped" if is_shipped(run) else ""
    # A shipped model's training story (a run stopped by its time budget, say) is in its details, not its name.
    status = "" if shipped else f" [{run.status}]"
    return f"{run.name} — {arch}{acc_txt}{syn}{shipped}{status}"


def usable_runs() -> list[RunInfo]:
    """Usable runs, best candidates first (shipped default model, then newest finished)."""
    from fer_core.store.default_model import usable_runs as _usable

    return _usable(get_store())


def default_run() -> RunInfo | None:
    """The model used when none is picked (the shipped default, while it is there)."""
    usable = usable_runs()
    return usable[0] if usable else None


def is_shipped(run: RunInfo) -> bool:
    return bool((run.meta or {}).get("shipped"))


def model_picker(label: str = "Model", key: str = "model_run", help: str | None = None) -> RunInfo | None:
    """Selectbox of usable runs (default model first); None (with a prompt) when there is none."""
    runs = list_runs_ui()
    report_corrupt_runs(runs)
    usable = usable_runs()
    if not usable:
        no_model_prompt(key=f"{key}_quick_train")
        return None
    default = usable[0]
    ids = [r.run_id for r in usable]
    by_id = {r.run_id: r for r in usable}
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = default.run_id if default else ids[0]
    chosen = st.selectbox(label, ids, key=key, format_func=lambda rid: run_label(by_id[rid]),
                          help=help or "Trained runs in the model store. The default is the shipped model, else the newest run.")
    return by_id.get(chosen)


def no_model_prompt(key: str = "quick_train") -> None:
    """No trained model yet: offer to train one on the demo set in one click."""
    st.info(
        "**No trained model yet.** Train a small model on the built-in demo set (synthetic faces, "
        "about a minute on a CPU) to try the app, or train on real FER-2013 on the Train page.",
        icon=":material/model_training:",
    )
    if st.button("Train a quick demo model", key=key, icon=":material/play_arrow:", type="primary"):
        start_quick_training()


def start_quick_training() -> None:
    from fer_core.training import jobs

    with friendly_errors("Could not start the training"):
        with st.spinner("Starting the training process…"):
            run_id = jobs.start_training(DEMO_SOURCE, dict(QUICK_CONFIG), store=get_store())
        st.session_state["train_last_run"] = run_id
        st.switch_page("app_pages/train.py")


QUICK_CONFIG = {"architecture": DEFAULT_ARCHITECTURE, "epochs": 8, "batch_size": 64, "learning_rate": 1e-3,
                "name": "quick demo model"}


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
