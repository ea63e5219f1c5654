"""What a run folder records besides its model: meta.json, events.jsonl, STOP, evaluations.

A mixin of ModelStore (it needs the store's run_dir / _existing_dir / evaluation_path).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_core.errors import StoreError
from fer_core.store.atomic import _json_safe, atomic_write_bytes, atomic_write_json, now_iso
from fer_core.store.layout import EVENTS_FILE, META_FILE, META_LOCK_FILE, STOP_FILE


class RunRecordsMixin:
    """meta.json (locked read-modify-write), events.jsonl, stop requests, evaluation files."""

    def run_dir(self, run_id: str) -> Path:  # pragma: no cover - provided by ModelStore
        raise NotImplementedError

    def _existing_dir(self, run_id: str) -> Path:  # pragma: no cover - provided by ModelStore
        raise NotImplementedError

    def evaluation_path(self, run_id: str, split: str) -> Path:  # pragma: no cover - provided by ModelStore
        raise NotImplementedError

    def read_meta(self, run_id: str) -> dict[str, Any]:
        """meta.json as stored (StoreError when missing or corrupt)."""
        path = self._existing_dir(run_id) / META_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"Run {run_id!r} has no meta.json.") from None
        except (OSError, ValueError) as exc:
            raise StoreError(f"Run {run_id!r} has a corrupt meta.json: {exc}") from None
        if not isinstance(meta, dict):
            raise StoreError(f"Run {run_id!r} has a corrupt meta.json (not a JSON object).")
        return meta

    def write_meta(self, run_id: str, meta: dict[str, Any]) -> None:
        atomic_write_json(self._existing_dir(run_id) / META_FILE, meta)

    def update_meta(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into meta.json atomically (and stamp `updated`); returns the new meta.

        The read-modify-write holds the run's .meta.lock (flock), so concurrent updaters
        (the training, the app, an evaluation) never lose each other's fields.
        """
        with self._meta_lock(run_id):
            meta = self.read_meta(run_id)
            meta.update(fields)
            meta["updated"] = now_iso()
            self.write_meta(run_id, meta)
        return meta

    @contextlib.contextmanager
    def _meta_lock(self, run_id: str) -> Iterator[None]:
        d = self._existing_dir(run_id)
        fd = os.open(d / META_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    # ----------------------------------------------------------------- events

    def append_event(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one JSON line to events.jsonl (flushed and fsync'ed)."""
        path = self._existing_dir(run_id) / EVENTS_FILE
        line = json.dumps(_json_safe(event), ensure_ascii=False, allow_nan=False) + "\n"
        with open(path, "ab") as f:
            # A previous writer killed mid-line leaves no newline: start on a fresh line.
            if f.tell() > 0:
                with open(path, "rb") as r:
                    r.seek(-1, os.SEEK_END)
                    if r.read(1) != b"\n":
                        line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def read_events(self, run_id: str) -> list[dict[str, Any]]:
        """All events; lines that do not parse (a truncated last line) are skipped."""
        path = self.run_dir(run_id) / EVENTS_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"Cannot read events of run {run_id!r}: {exc}") from None
        events = []
        for raw in data.splitlines():
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                events.append(obj)
        return events

    # ----------------------------------------------------------------- stop requests

    def request_stop(self, run_id: str) -> None:
        """Ask the training of `run_id` to stop (it polls for the STOP file)."""
        d = self._existing_dir(run_id)
        atomic_write_bytes(d / STOP_FILE, now_iso().encode())

    def stop_requested(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / STOP_FILE).exists()

    def clear_stop(self, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir(run_id) / STOP_FILE).unlink()

    # ----------------------------------------------------------------- evaluations

    def save_evaluation(self, run_id: str, split: str, result: dict[str, Any]) -> Path:
        self._existing_dir(run_id)
        path = self.evaluation_path(run_id, split)
        atomic_write_json(path, result)
        return path

    def load_evaluation(self, run_id: str, split: str) -> dict[str, Any] | None:
        """A saved evaluation, or None when there is none (StoreError if unreadable)."""
        path = self.evaluation_path(run_id, split)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"Evaluation {path.name} of run {run_id} is unreadable: {exc}") from None

    def list_evaluations(self, run_id: str) -> list[str]:
        """Split names that have a saved evaluation."""
        d = self.run_dir(run_id)
        return sorted(p.name[len("evaluation_") : -len(".json")] for p in d.glob("evaluation_*.json"))
