"""What a run folder records besides its model: meta.json, events.jsonl, STOP.

A mixin of ModelStore (it needs the store's run_dir / _existing_dir). Evaluations: store.evaluations.
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
from fer_core.store.atomic import atomic_write_bytes, atomic_write_json, json_safe, now_iso
from fer_core.store.layout import EVENTS_FILE, META_FILE, META_LOCK_FILE, STOP_FILE


class RunRecordsMixin:
    """meta.json (locked read-modify-write), events.jsonl and the per-epoch history, stop requests."""

    def run_dir(self, run_id: str) -> Path:  # pragma: no cover - provided by ModelStore
        raise NotImplementedError

    def _existing_dir(self, run_id: str) -> Path:  # pragma: no cover - provided by ModelStore
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
        self.refuse_shipped(run_id, "changed")
        with self._meta_lock(run_id):
            meta = self.read_meta(run_id)
            meta.update(fields)
            meta["updated"] = now_iso()
            self.write_meta(run_id, meta)
        return meta

    def refuse_shipped(self, run_id: str, what: str) -> None:
        """StoreError when `run_id` is a shipped model (its files are part of fer-studio)."""
        try:
            meta = self.read_meta(run_id)
        except StoreError:
            return
        if meta.get("shipped"):
            raise StoreError(_shipped_message(meta, run_id, what))

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
        line = json.dumps(json_safe(event), ensure_ascii=False, allow_nan=False) + "\n"
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

    def history(self, run_id: str) -> list[dict[str, Any]]:
        """The run's per-epoch records, one per epoch number, in order, across resumes (see epochs_of);
        meta.json's "history" for a run without epoch events (an imported or shipped model)."""
        epochs = epochs_of(self.read_events(run_id))
        if epochs:
            return epochs
        try:
            history = self.read_meta(run_id).get("history")
        except StoreError:
            return []
        return [e for e in history if isinstance(e, dict)] if isinstance(history, list) else []

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


def _shipped_message(meta: dict[str, Any], run_id: str, what: str) -> str:
    return (f"{meta.get('name') or run_id} ships with fer-studio: its files are not {what}. "
            "Import a copy of its model.keras on the Models page to work on your own version.")


def epochs_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The "epoch" events, one per epoch number, in order, across resumes.

    A "resume" event (from_epoch N) drops the epochs after N logged before it (a partial epoch
    cut short by a stop, or one whose checkpoint was not complete when the process died): the
    resumed run trains them again.
    """
    by_epoch: dict[int, dict[str, Any]] = {}
    for e in events:
        kind = e.get("event")
        if kind == "resume" and isinstance(e.get("from_epoch"), int):
            by_epoch = {n: ev for n, ev in by_epoch.items() if n <= e["from_epoch"]}
        elif kind == "epoch" and isinstance(e.get("epoch"), int):
            by_epoch[e["epoch"]] = e
    return [by_epoch[n] for n in sorted(by_epoch)]
