"""A run folder's files and what the store knows about a run (RunInfo)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
EVENTS_FILE = "events.jsonl"
STOP_FILE = "STOP"
META_LOCK_FILE = ".meta.lock"
# "starting": created by training.jobs.start_training, its worker process not yet training it.
STATUSES = ("starting", "running", "finished", "stopped", "failed", "corrupt")
ACTIVE_STATUSES = ("starting", "running")  # a process owns the run (while it is alive)

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
