"""Training: architectures, settings, the tf.data pipeline, the run loop, resume, background jobs.

    architectures, networks   the model registry and its layer graphs
    config         TrainConfig (validated settings), the cosine schedule
    precision      float32 / bf16 (mixed precision where the hardware runs it)
    pipeline       tf.data input (autotune off), augmentation
    split          the arrays a run trains on: train / validation split, class weights
    run_state      RunState: what the loop and its callbacks share; disk-full guard; signals
    callbacks      the run's Keras callbacks: stop, best checkpoint, epoch events, resume checkpoint
    loop           train(): one run in the store, start to end
    resuming       resume(): continue a stopped / failed / killed run
    jobs           training as a subprocess of the app: start, follow, stop, resume
    worker         the subprocess's side of that contract (docs/DESIGN.md)

May import fer_core's foundation, fer_core.data and fer_core.store; never inference, cli, charts
or Streamlit (tests/test_layout.py).
"""

from __future__ import annotations

from fer_core.lazy import lazy_getattr

# public name -> the module of this package that defines it (imported on first use, so importing
# the package costs nothing and pulls in no TensorFlow)
_API = {
    "ARCHITECTURES": "architectures",
    "build_model": "architectures",
    "get_spec": "architectures",
    "TrainConfig": "config",
    "cosine_lr": "config",
    "PRECISIONS": "precision",
    "default_precision": "precision",
    "precision_scope": "precision",
    "make_dataset": "pipeline",
    "prepare_training_data": "split",
    "TrainingData": "split",
    "train": "loop",
    "build_run_meta": "loop",
    "resume": "resuming",
    "resume_check": "resuming",
    "start_training": "jobs",
    "start_resume": "jobs",
    "can_resume": "jobs",
    "stop_training": "jobs",
    "progress": "jobs",
    "running_job": "jobs",
}
__all__ = sorted(_API)
__getattr__ = lazy_getattr(__name__, _API)
