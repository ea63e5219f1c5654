"""Test-side wrapper of `python -m fer_core train ...` that fails on purpose (tests/test_interrupted.py).

    python -m tests.interrupt_runner <mode> <marker-dir> <fer_core train args...>

Modes:
  pause-second-save  the second time model.keras is saved, stop right after the new model has
                     been written to its temp file (before fsync + os.replace), write
                     <marker-dir>/paused (holding the temp file's path) and sleep: the test
                     then kills the process with SIGKILL, deterministically "mid-save".
  disk-full          after the first model.keras is saved, write <marker-dir>/first-save; once
                     epoch 1's resume checkpoint is saved too, cap the size of any file this
                     process writes (RLIMIT_FSIZE, SIGXFSZ ignored) below the model's size: the next checkpoint save fails the way
                     it does on a full disk (EFBIG here; ENOSPC there), small files still work.
  pause-in-epoch-N   at the third batch of epoch N, write <marker-dir>/paused and sleep: the test kills
                     the process there, deterministically mid-epoch (no guess of how long an epoch takes).
  plain              no fault (a normal training).
"""

from __future__ import annotations

import contextlib
import resource
import signal
import sys
import time
from pathlib import Path


def pause_second_save(marker_dir: Path) -> None:
    import fer_core.store.model_files as files_mod
    from fer_core.store.layout import MODEL_FILE

    original = files_mod.atomic_replace
    saves = {"n": 0}

    @contextlib.contextmanager
    def paused_replace(path, suffix=".tmp"):
        with original(path, suffix) as tmp:
            yield tmp  # the caller writes the new file here
            if Path(path).name == MODEL_FILE:
                saves["n"] += 1
                if saves["n"] == 2:
                    (marker_dir / "paused").write_text(str(tmp))
                    while True:  # killed here by the test
                        time.sleep(1)

    files_mod.atomic_replace = paused_replace


def disk_full_after_first_save(marker_dir: Path) -> None:
    import fer_core.store.runs as store_mod
    import fer_core.training.callbacks as training_mod

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over-limit writes fail with EFBIG instead of killing us
    original = store_mod.ModelStore.save_model
    original_last = training_mod.save_last
    state: dict[str, int] = {}

    def save_model(self, run_id, model, **kwargs):
        path = original(self, run_id, model, **kwargs)
        if not state:
            state["first"] = path.stat().st_size
            (marker_dir / "first-save").write_text(str(state["first"]))
        return path

    def save_last(*args, **kwargs):
        # Epoch 1's saves (model.keras, then the resume checkpoint) complete; then the disk is "full".
        path = original_last(*args, **kwargs)
        if "first" in state and "capped" not in state:
            state["capped"] = 1
            _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (state["first"] // 2, hard))
        return path

    store_mod.ModelStore.save_model = save_model
    training_mod.save_last = save_last


def pause_in_epoch(epoch: int, marker_dir: Path) -> None:
    import fer_core.training.callbacks as callbacks_mod

    cls = callbacks_mod.StopCheck
    original_begin, original_batch = cls.on_epoch_begin, cls.on_train_batch_end

    def on_epoch_begin(self, index, logs=None):
        self.paused_epoch = index + 1
        return original_begin(self, index, logs)

    def on_train_batch_end(self, batch, logs=None):
        original_batch(self, batch, logs)
        if getattr(self, "paused_epoch", 0) == epoch and batch == 2:
            (marker_dir / "paused").write_text(f"epoch {epoch} batch {batch + 1}")
            while True:  # killed here by the test
                time.sleep(1)

    cls.on_epoch_begin, cls.on_train_batch_end = on_epoch_begin, on_train_batch_end


MODES = {"pause-second-save": pause_second_save, "disk-full": disk_full_after_first_save, "plain": lambda d: None}


def apply_mode(mode: str, marker_dir: Path) -> None:
    if mode.startswith("pause-in-epoch-"):
        pause_in_epoch(int(mode.rsplit("-", 1)[1]), marker_dir)
    else:
        MODES[mode](marker_dir)


def main(argv: list[str]) -> int:
    mode, marker_dir, rest = argv[0], Path(argv[1]), argv[2:]
    marker_dir.mkdir(parents=True, exist_ok=True)
    apply_mode(mode, marker_dir)
    from fer_core.cli.main import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
