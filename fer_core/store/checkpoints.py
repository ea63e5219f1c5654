"""The "last" checkpoint of a run: what a resumed training continues from.

    root/<run-id>/last-e0012.weights.h5   weights + optimizer state after epoch 12
    root/<run-id>/last.json               {"epoch": 12, "weights": "last-e0012.weights.h5", ...state}

The best model (model.keras) stays optimizer-free and float32 for inference and shipping;
this checkpoint keeps what training needs: the weights, the optimizer's slots, step counter
and learning rate (Keras weights files hold the compiled optimizer's variables), plus the
loop's own state in last.json (history, best-so-far, early-stopping and plateau counters).

last.json is the commit point: the weights file of epoch N is written first (atomically),
then last.json is replaced, then older weights files are removed. A process killed in
between leaves last.json naming the previous, complete checkpoint.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

from fer_core.errors import StoreError
from fer_core.store.atomic import atomic_write_bytes, atomic_write_json
from fer_core.store.runs import ModelStore

LAST_STATE_FILE = "last.json"
_WEIGHTS_RE = re.compile(r"^last-e(\d{4,})\.weights\.h5$")


def weights_name(epoch: int) -> str:
    return f"last-e{epoch:04d}.weights.h5"


def save_last(store: ModelStore, run_id: str, model: Any, epoch: int, state: dict[str, Any]) -> Path:
    """Write the last checkpoint of `epoch` (weights + optimizer, then last.json); returns the weights path."""
    d = store.run_dir(run_id)
    target = d / weights_name(epoch)
    atomic_write_bytes(target, weights_bytes(model))
    atomic_write_json(d / LAST_STATE_FILE, {**state, "epoch": int(epoch), "weights": target.name})
    for old in d.glob("last-e*.weights.h5"):
        if old.name != target.name:
            with contextlib.suppress(OSError):
                old.unlink()
    return target


def weights_bytes(model: Any) -> bytes:
    """The model's `.weights.h5` file (weights + compiled optimizer state), built in memory.

    Same content as `model.save_weights(path)`. Serialising to memory first means a full disk
    fails in a plain Python write (OSError, caught by the training loop) rather than inside
    HDF5's C writer, which can crash the process when a write is refused half-way.
    """
    try:
        from keras.src.saving import saving_lib
    except ImportError:  # pragma: no cover - a Keras without this layout: write through a temp file
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "w.weights.h5"
            model.save_weights(path)
            return path.read_bytes()
    buf = io.BytesIO()
    weights_store = saving_lib.H5IOStore(buf, mode="w")
    try:
        saving_lib._save_state(model, weights_store=weights_store, assets_store=None,
                               inner_path="", visited_saveables=set())
    finally:
        weights_store.close()
    return buf.getvalue()


def read_last(store: ModelStore, run_id: str) -> dict[str, Any] | None:
    """last.json with "path" (the weights file) added; None when the run has no last checkpoint.

    StoreError when last.json is unreadable or names a weights file that is missing or damaged.
    """
    d = store.run_dir(run_id)
    path = d / LAST_STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"The last checkpoint of run {run_id} is damaged ({LAST_STATE_FILE}: {exc}).") from None
    name = state.get("weights") if isinstance(state, dict) else None
    epoch = state.get("epoch") if isinstance(state, dict) else None
    if not isinstance(name, str) or not _WEIGHTS_RE.match(name) or not isinstance(epoch, int) or epoch < 1:
        raise StoreError(f"The last checkpoint of run {run_id} is damaged ({LAST_STATE_FILE} is not a checkpoint).")
    weights = d / name
    if not weights.is_file():
        raise StoreError(f"The last checkpoint of run {run_id} is damaged: {name} is missing.")
    _check_weights_file(weights, run_id)
    return {**state, "path": weights}


def _check_weights_file(path: Path, run_id: str) -> None:
    """Open the HDF5 weights file and list its groups: a damaged file is refused before training starts."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if not list(f.keys()):
                raise ValueError("it holds no weights")
    except Exception as exc:  # noqa: BLE001 - any failure means the file cannot be resumed from
        raise StoreError(
            f"The last checkpoint of run {run_id} is damaged ({path.name}: {str(exc).splitlines()[0][:200]})."
        ) from None


def remove_last(store: ModelStore, run_id: str) -> None:
    """Remove the last checkpoint (weights and last.json), e.g. to free disk once a run is final."""
    d = store.run_dir(run_id)
    for p in [*d.glob("last-e*.weights.h5"), d / LAST_STATE_FILE]:
        with contextlib.suppress(OSError):
            p.unlink()
