"""The store's one training lock: an flock on root/.training.lock recording who holds it.

A killed training releases it (the kernel drops the flock); the file also records run id,
pid and start time for the "already running" message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fer_core.errors import TrainingBusyError
from fer_core.store.atomic import now_iso
from fer_core.store.processes import process_alive

LOCK_FILE = ".training.lock"


@contextlib.contextmanager
def exclusive_flock(path: Path, busy: Callable[[int], Exception]) -> Iterator[int]:
    """An exclusive flock on `path` (created with its folder) for the block, yielding its descriptor;
    where another process holds it, `busy(fd)` is raised at once (it may read what the holder wrote).
    The kernel drops the flock when a process dies, so a killed holder never blocks the next one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(fd) from None
        yield fd
    finally:
        os.close(fd)  # releases the flock


class TrainingLock:
    """The held training lock: what it records (run id, pid, start time)."""

    def __init__(self, fd: int, info: dict[str, Any]) -> None:
        self._fd = fd
        self.info = info

    @property
    def run_id(self) -> str:
        return str(self.info["run_id"])

    def write(self) -> None:
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, json.dumps(self.info).encode("utf-8"))
        os.fsync(self._fd)

    def set_run_id(self, run_id: str) -> None:
        self.info["run_id"] = run_id
        self.write()


def _busy_error(info: dict[str, Any] | None) -> TrainingBusyError:
    info = info or {}
    return TrainingBusyError(
        f"A training is already running: {info.get('run_id', '?')} (started {info.get('started', '?')}). "
        "Stop it or wait for it to finish."
    )


class TrainingLockMixin:
    """ModelStore's training lock (needs `self.root` and `self._ensure_root()`)."""

    root: Path

    def _ensure_root(self) -> None:  # pragma: no cover - provided by ModelStore
        raise NotImplementedError

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    def check_not_training(self) -> None:
        """Raise TrainingBusyError (who, since when) if a training holds this store's lock."""
        holder = self.training_lock_holder()
        if holder:
            raise _busy_error(holder)

    def training_lock_holder(self) -> dict[str, Any] | None:
        """{"run_id", "pid", "started"} of the training holding the lock, or None."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR)
        except OSError:
            return None
        try:
            # A killed training's main thread turns zombie before its other threads are gone and
            # its files (this lock) are closed: wait that moment out instead of reporting it busy.
            deadline = time.monotonic() + 3.0
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    info = self._read_lock_info(fd)
                    pid = info.get("pid") if info else None
                    if isinstance(pid, int) and not process_alive(pid) and time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    return info or {"run_id": "?", "pid": None, "started": "?"}
                fcntl.flock(fd, fcntl.LOCK_UN)
                return None
        finally:
            os.close(fd)

    @staticmethod
    def _read_lock_info(fd: int) -> dict[str, Any] | None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            data = os.read(fd, 4096)
            info = json.loads(data.decode("utf-8")) if data.strip() else None
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        return info if isinstance(info, dict) else None

    @contextlib.contextmanager
    def acquire_training_lock(self, run_id: str, timeout: float = 1.0) -> Iterator[TrainingLock]:
        """Hold the store's one training lock for `run_id` (TrainingBusyError if held).

        The lock is an flock on root/.training.lock, so a killed training releases it; the
        file also records run id, pid and start time for the busy message. A lock file left
        by a dead process is simply taken over. Waits up to `timeout` s for a brief holder.
        Yields a TrainingLock (`.info`; `.set_run_id(new_id)` once the run id is final).
        """
        self._ensure_root()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + max(timeout, 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    info = self._read_lock_info(fd)
                    # training_lock_holder() probes briefly with the lock: retry a moment.
                    if time.monotonic() >= deadline:
                        raise _busy_error(info) from None
                    time.sleep(0.05)
            handle = TrainingLock(fd, {"run_id": run_id, "pid": os.getpid(), "started": now_iso()})
            handle.write()
            try:
                yield handle
            finally:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
