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

Import names from the module that defines them (`from fer_core.store.<module> import ...`): this
package declares no API of its own (tests/test_layout.py).
"""
