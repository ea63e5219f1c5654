"""The model store: one folder per training run under `models_dir()`.

    root/<run-id>/model.keras              best model so far (written atomically)
    root/<run-id>/meta.json                run description (DESIGN.md fields), written atomically
    root/<run-id>/events.jsonl             one JSON object per line: start / epoch / end
    root/.evaluations/<run-id>/            evaluations, one per (dataset, split, TTA): store.evaluations
    root/<run-id>/STOP                     stop request (the training polls for it)
    root/.training.lock                    held (flock) by the one running training

Every file is written through store.atomic, so a killed process never leaves a half-written
model or meta. Listing runs never raises and never imports TensorFlow: keras is imported
lazily only to save and load models. ModelStore keeps run folders (create, list, delete)
and models; meta/events/stop are in store.records, evaluations in store.evaluations, the lock
in store.lock. A shipped model (meta "shipped") is read-only: its files are never rewritten
or deleted by the store.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_core.errors import ModelFileError, StoreError, TrainingBusyError
from fer_core.paths import models_dir

if TYPE_CHECKING:  # pragma: no cover
    import keras


from fer_core.store.atomic import atomic_write_json, now_iso
from fer_core.store.evaluations import EvaluationsMixin
from fer_core.store.layout import ACTIVE_STATUSES, EVENTS_FILE, META_FILE, MODEL_FILE, RUN_ID_RE, STATUSES, RunInfo
from fer_core.store.lock import TrainingLockMixin
from fer_core.store.model_files import load_model_file, save_model_file
from fer_core.store.processes import process_alive, process_identity
from fer_core.store.records import RunRecordsMixin


class ModelStore(RunRecordsMixin, EvaluationsMixin, TrainingLockMixin):
    """Runs on disk under `root` (default `fer_core.paths.models_dir()`)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else models_dir()

    # ----------------------------------------------------------------- paths

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def run_dir(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id) or run_id in (".", ".."):
            raise StoreError(f"Invalid run id {run_id!r}.")
        return self.root / run_id

    def _existing_dir(self, run_id: str) -> Path:
        d = self.run_dir(run_id)
        if not d.is_dir():
            raise StoreError(f"No run {run_id!r} in the model store ({self.root}).")
        return d

    def model_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / MODEL_FILE

    def meta_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / META_FILE

    def events_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / EVENTS_FILE

    # ----------------------------------------------------------------- runs

    def new_run_id(self, architecture: str | None = None, when: datetime | None = None) -> str:
        """`YYYYmmdd-HHMMSS-<architecture>` (not reserved; create_run reserves it)."""
        stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
        arch = re.sub(r"[^A-Za-z0-9_-]+", "_", architecture or "model").strip("_") or "model"
        return f"{stamp}-{arch[:60]}"

    def create_run(self, meta: dict[str, Any], run_id: str | None = None) -> RunInfo:
        """Reserve a new run folder and write its meta.json.

        The id is `YYYYmmdd-HHMMSS-<architecture>` with a short random suffix when taken.
        Fields run_id, created, updated are filled in; status defaults to "running" and
        pid/host to this process.
        """
        self._ensure_root()
        base = run_id or self.new_run_id(meta.get("architecture"))
        self.run_dir(base)  # validates the id
        candidate = base
        for _ in range(50):
            try:
                (self.root / candidate).mkdir()
                break
            except FileExistsError:
                if run_id is not None:
                    raise StoreError(f"Run {run_id!r} already exists.") from None
                candidate = f"{base}-{secrets.token_hex(2)}"
        else:  # pragma: no cover - 50 collisions of 16-bit suffixes
            raise StoreError(f"Could not reserve a run folder for {base!r}.")
        stamp = now_iso()
        full = {
            "run_id": candidate,
            "name": meta.get("name") or candidate,
            "status": "running",
            "created": stamp,
            "updated": stamp,
            "error": None,
            **{k: v for k, v in meta.items() if k not in ("run_id", "created", "updated")},
        }
        full["run_id"] = candidate
        if not full.get("name"):
            full["name"] = candidate
        if "pid" not in meta:
            full.update(process_identity())
        atomic_write_json(self.root / candidate / META_FILE, full)
        return self.get(candidate)

    def _info(self, d: Path) -> RunInfo:
        run_id = d.name
        has_model = (d / MODEL_FILE).is_file()
        try:
            raw = (d / META_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return RunInfo(run_id, d, "corrupt", {}, "meta.json is missing", has_model)
        except OSError as exc:
            return RunInfo(run_id, d, "corrupt", {}, f"meta.json cannot be read: {exc}", has_model)
        try:
            meta = json.loads(raw)
        except ValueError as exc:
            return RunInfo(run_id, d, "corrupt", {}, f"meta.json is not valid JSON: {exc}", has_model)
        if not isinstance(meta, dict):
            return RunInfo(run_id, d, "corrupt", {}, "meta.json does not hold a JSON object", has_model)
        status = meta.get("status")
        error = meta.get("error")
        if status not in STATUSES:
            return RunInfo(run_id, d, "corrupt", meta, f"meta.json has an unknown status {status!r}", has_model)
        if status in ACTIVE_STATUSES and self._is_dead(meta):
            status, error = "failed", "interrupted"
        return RunInfo(run_id, d, status, meta, error, has_model)

    @staticmethod
    def _is_dead(meta: dict[str, Any]) -> bool:
        """A "starting" or "running" run whose process is gone (same host only; other hosts: cannot tell)."""
        host = meta.get("host")
        if host and host != socket.gethostname():
            return False
        return not process_alive(meta.get("pid"), meta.get("pid_start"))

    def list_runs(self) -> list[RunInfo]:
        """All runs, newest first. Never raises: unreadable runs are listed as "corrupt"."""
        try:
            entries = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            return []
        runs: list[RunInfo] = []
        for d in entries:
            try:
                runs.append(self._info(d))
            except Exception as exc:  # noqa: BLE001 - listing must never fail
                runs.append(RunInfo(d.name, d, "corrupt", {}, f"unreadable run: {exc}", False))

        def key(r: RunInfo) -> str:
            created = r.meta.get("created") if isinstance(r.meta.get("created"), str) else None
            if created:
                with contextlib.suppress(ValueError):
                    return datetime.fromisoformat(created).astimezone().isoformat()
            with contextlib.suppress(OSError):
                return datetime.fromtimestamp(r.path.stat().st_mtime).astimezone().isoformat()
            return ""

        runs.sort(key=lambda r: (key(r), r.run_id), reverse=True)
        return runs

    def get(self, run_id: str) -> RunInfo:
        """One run (StoreError if there is no such run folder)."""
        return self._info(self._existing_dir(run_id))

    def delete(self, run_id: str) -> None:
        """Remove a run folder and its evaluations (refused while it trains, and for shipped models)."""
        d = self._existing_dir(run_id)
        self.refuse_shipped(run_id, "deleted")
        holder = self.training_lock_holder()
        if holder and holder.get("run_id") == run_id:
            raise TrainingBusyError(f"Run {run_id} is training right now: stop it before deleting it.")
        shutil.rmtree(d)
        self.remove_evaluations(run_id)

    # ----------------------------------------------------------------- models

    def save_model(self, run_id: str, model: keras.Model, include_optimizer: bool = False) -> Path:
        """Save `model` as the run's model.keras atomically (never half-written).

        By default the optimizer state is left out (files 3x smaller; enough for inference).
        """
        d = self._existing_dir(run_id)
        self.refuse_shipped(run_id, "overwritten")
        target = d / MODEL_FILE
        save_model_file(model, target, include_optimizer=include_optimizer)
        return target

    def load_model(self, run_id: str, compile: bool = False) -> keras.Model:
        """The run's model (safe_mode on); ModelFileError with a clear message on any failure."""
        path = self.model_path(run_id)
        if not path.is_file():
            if not self.run_dir(run_id).is_dir():
                raise ModelFileError(f"No run {run_id!r} in the model store.")
            raise ModelFileError(f"Run {run_id} has no saved model yet (no epoch finished).")
        return load_model_file(path, compile=compile)
