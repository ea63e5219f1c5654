"""The model store and model files.

    runs           ModelStore: run folders (create, list, delete) and their models
    records        what a run folder records: meta.json, events.jsonl, STOP, evaluations
    lock           the store's one training lock
    layout         file names of a run folder, RunInfo
    atomic         atomic file writes; processes: is a run's process alive
    model_files    save / load .keras files (float32, optimizer-free, safe_mode)
    checkpoints    the resume checkpoint of a run (weights + optimizer state)
    safety         model files read as data before Keras sees them
    importing, conventions, export   models made elsewhere: import, label order / scaling, export
    prediction     the one engine: a model with its conventions, faces -> probabilities (ModelRunner)
    default_model  which run the app and CLI use by default

May import fer_core's foundation (errors, labels, paths, preprocess) and fer_core.data; never
training, inference, cli, charts or Streamlit (tests/test_layout.py).
"""

from __future__ import annotations

from fer_core.lazy import lazy_getattr

# public name -> the module of this package that defines it (imported on first use, so importing
# the package costs nothing and pulls in no TensorFlow)
_API = {
    "ModelStore": "runs",
    "RunInfo": "layout",
    "MODEL_FILE": "layout",
    "META_FILE": "layout",
    "EVENTS_FILE": "layout",
    "STATUSES": "layout",
    "ACTIVE_STATUSES": "layout",
    "atomic_replace": "atomic",
    "atomic_write_bytes": "atomic",
    "atomic_write_json": "atomic",
    "now_iso": "atomic",
    "process_alive": "processes",
    "load_model_file": "model_files",
    "save_model_file": "model_files",
    "read_last": "checkpoints",
    "save_last": "checkpoints",
    "remove_last": "checkpoints",
    "inspect_model_file": "safety",
    "import_model": "importing",
    "summarize_model_file": "importing",
    "resolve_labels": "importing",
    "check_conventions": "conventions",
    "check_run_conventions": "conventions",
    "apply_conventions": "conventions",
    "export_run": "export",
    "verify_export": "export",
    "ModelRunner": "prediction",
    "make_predict_fn": "prediction",
    "default_run": "default_model",
    "resolve_run": "default_model",
    "usable_runs": "default_model",
}
__all__ = sorted(_API)
__getattr__ = lazy_getattr(__name__, _API)
