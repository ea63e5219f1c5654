"""The model store: one folder per training run under `models_dir()`.

    root/<run-id>/model.keras              best model so far (written atomically)
    root/<run-id>/meta.json                run description (DESIGN.md fields), written atomically
    root/<run-id>/events.jsonl             one JSON object per line: start / epoch / end
    root/<run-id>/evaluation_<split>.json  evaluation results
    root/<run-id>/STOP                     stop request (the training polls for it)
    root/.training.lock                    held (flock) by the one running training

Every file is written to a temporary file in the same folder, flushed, fsync'ed and moved
into place with os.replace, so a killed process never leaves a half-written model or meta.
Listing runs never raises and never imports TensorFlow: keras is imported lazily only to
save and load models.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_core.errors import ModelFileError, StoreError, TrainingBusyError
from fer_core.paths import models_dir

if TYPE_CHECKING:  # pragma: no cover
    import keras

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
EVENTS_FILE = "events.jsonl"
STOP_FILE = "STOP"
LOCK_FILE = ".training.lock"
META_LOCK_FILE = ".meta.lock"
FILE_MODE = 0o644  # files the store writes: readable by the app and CLI of other users
STATUSES = ("running", "finished", "stopped", "failed", "corrupt")

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def now_iso() -> str:
    """Local time, ISO 8601 with seconds and offset."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- atomic files


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_replace(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp path in `path`'s folder to write; on success it is made 0644, fsynced and
    moved over `path` with os.replace (readers see the old file or the new, never half);
    on any failure the temp file is removed and `path` is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes 0600 files
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_replace)."""
    with atomic_replace(Path(path)) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write `obj` as JSON atomically (NaN/inf become null so the file stays valid JSON)."""
    text = json.dumps(_json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_safe(obj: Any) -> Any:
    """Plain-JSON version of obj: numpy scalars/arrays to Python, NaN/inf to None, Paths to str."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _json_safe(tolist())
    return str(obj)


# --------------------------------------------------------------------------- processes


def _proc_start_time(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot, Linux /proc), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _proc_is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    rest = stat[stat.rfind(")") + 2 :].split()
    return bool(rest) and rest[0] in ("Z", "X")


def process_alive(pid: int | None, start_time: str | None = None) -> bool:
    """Whether process `pid` runs (and, when known, is the one that started at `start_time`)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    if _proc_is_zombie(pid):
        return False
    if start_time is not None:
        current = _proc_start_time(pid)
        if current is not None and current != start_time:
            return False  # the pid was reused by another process
    return True


def process_identity() -> dict[str, Any]:
    """pid, host and process start time: enough to tell later whether this process still runs."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _proc_start_time(os.getpid())}


# --------------------------------------------------------------------------- run info


@dataclass
class RunInfo:
    """What the store knows about one run (as listed: status may be derived, see list_runs)."""

    run_id: str
    path: Path
    status: str
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    has_model: bool = False

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.run_id)

    @property
    def architecture(self) -> str | None:
        return self.meta.get("architecture")

    @property
    def created(self) -> str | None:
        return self.meta.get("created")

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.meta.get("metrics") or {})

    @property
    def usable(self) -> bool:
        """A model file is there and the meta can be read: the run can be evaluated / used."""
        return self.has_model and self.status != "corrupt"


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


class ModelStore:
    """Runs on disk under `root` (default `fer_core.paths.models_dir()`)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else models_dir()

    # ----------------------------------------------------------------- paths

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def run_dir(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id) or run_id in (".", ".."):
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

    def evaluation_path(self, run_id: str, split: str) -> Path:
        if not _SPLIT_RE.match(split or ""):
            raise StoreError(f"Invalid split name {split!r}.")
        return self.run_dir(run_id) / f"evaluation_{split}.json"

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
        if status == "running" and self._is_dead(meta):
            status, error = "failed", "interrupted"
        return RunInfo(run_id, d, status, meta, error, has_model)

    @staticmethod
    def _is_dead(meta: dict[str, Any]) -> bool:
        """A "running" run whose process is gone (same host only; other hosts: cannot tell)."""
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

    def delete(self, run_id: str) -> None:
        """Remove a run folder (refused while that run is training in this store)."""
        d = self._existing_dir(run_id)
        holder = self.training_lock_holder()
        if holder and holder.get("run_id") == run_id:
            raise TrainingBusyError(f"Run {run_id} is training right now: stop it before deleting it.")
        shutil.rmtree(d)

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

    # ----------------------------------------------------------------- models

    def save_model(self, run_id: str, model: keras.Model, include_optimizer: bool = False) -> Path:
        """Save `model` as the run's model.keras atomically (never half-written).

        By default the optimizer state is left out (files 3x smaller; enough for inference).
        """
        d = self._existing_dir(run_id)
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

    # ----------------------------------------------------------------- training lock

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


# --------------------------------------------------------------------------- model files


def _inference_copy(model: keras.Model) -> keras.Model:
    """An uncompiled float32 copy of `model` with the same weights (what inference needs).

    Built from the model's layer config with every mixed-precision policy made float32 (a
    bf16-trained model keeps float32 weights, so they carry over as they are):
    `keras.models.clone_model` (Keras 3.15) also clones the compile state, and the
    optimizer's slots would be saved with the copy (3x the file).
    """
    from fer_core.precision import float32_config

    twin = type(model).from_config(float32_config(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin


def _is_mixed(model: keras.Model) -> bool:
    return any(str(getattr(getattr(layer, "dtype_policy", None), "name", "")).startswith("mixed_")
               for layer in getattr(model, "layers", []))


def save_model_file(model: keras.Model, path: Path, include_optimizer: bool = False) -> None:
    """Save a keras model to `path` (.keras) atomically: tmp file in the same folder + os.replace.

    Without `include_optimizer` the file holds an uncompiled float32 model (see _inference_copy).
    """
    import keras

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files must end in .keras; got {path.name}")
    if not include_optimizer and (getattr(model, "optimizer", None) is not None or _is_mixed(model)):
        model = _inference_copy(model)
    with atomic_replace(path, suffix=".tmp.keras") as tmp:
        keras.saving.save_model(model, tmp)


@contextlib.contextmanager
def _with_suffix(path: Path, suffix: str) -> Iterator[Path]:
    """`path` itself when its suffix already tells Keras the format, else a symlink that does."""
    if path.suffix.lower() == suffix or (suffix == ".h5" and path.suffix.lower() == ".hdf5"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="fer-model-") as tmp:
        link = Path(tmp) / f"model{suffix}"
        link.symlink_to(path.resolve())
        yield link


def load_model_file(path: Path | str, compile: bool = False, num_classes: int | None = None) -> keras.Model:
    """Load a stand-alone .keras (or legacy .h5) model with safe_mode=True.

    Any failure (missing file, not a model, unsafe content such as a Lambda layer, wrong
    number of outputs) raises ModelFileError with a message meant for the user.
    """
    from fer_core.model_safety import inspect_model_file

    path = Path(path)
    # Read the config as data first: refuses Lambda layers (code) without deserializing them,
    # non-model files, oversized files and archive bombs; tells .keras from .h5 by content.
    facts = inspect_model_file(path)
    # Models saved by Keras 2 name their input as a list; calling them with one tensor works
    # but Keras 3 warns on every call. Harmless: keep it out of the logs.
    warnings.filterwarnings("ignore", message=r"The structure of `inputs` doesn't match", category=UserWarning)
    try:
        import keras

        with _with_suffix(path, ".keras" if facts.format == "keras" else ".h5") as loadable:
            model = keras.saving.load_model(loadable, compile=compile, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a user-facing message
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "unsafe" in text.lower():
            raise ModelFileError(
                f"{path.name} was refused: it contains code that would run on loading (for example "
                "a Lambda layer), which is not allowed for safety. Re-save the model without "
                "Lambda layers or custom code."
            ) from exc
        short = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
        raise ModelFileError(f"{path.name} could not be loaded as a Keras model: {short}") from exc
    if not hasattr(model, "inputs") or not hasattr(model, "outputs") or not callable(model):
        raise ModelFileError(f"{path.name} does not contain a Keras model.")
    try:
        inputs, outputs = model.inputs, model.outputs
    except Exception:  # noqa: BLE001 - subclassed models without symbolic tensors
        inputs = outputs = None
    if inputs is not None and outputs is not None:
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{path.name} has {len(inputs)} inputs and {len(outputs)} outputs; "
                "an emotion model needs exactly one image input and one class output."
            )
        if num_classes is not None:
            out = tuple(outputs[0].shape)
            if len(out) != 2 or out[-1] != num_classes:
                raise ModelFileError(
                    f"{path.name} outputs shape {out}; expected (None, {num_classes}) class scores."
                )
    return model
