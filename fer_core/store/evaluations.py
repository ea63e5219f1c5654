"""Saved evaluations of a run: one per (dataset fingerprint, split, TTA), kept side by side.

    root/.evaluations/<run-id>/<split>--<dataset digest>--<plain|tta>.json   written by the store
    root/<run-id>/evaluation_<split>.json                                    bundled (read-only)

Every evaluation the app or the CLI makes is written into the store's own area, never into a
run folder: a shipped model's files (its PublicTest evaluation, its meta.json) stay as shipped,
and evaluating a model on the demo set does not replace its FER-2013 evaluation. Files bundled
in a run folder (shipped models, runs from older versions) are read as one more evaluation;
where both hold the same (dataset, split, TTA) the store's newer one is shown.

A mixin of ModelStore (it needs the store's root and run_dir / _existing_dir).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core.errors import StoreError
from fer_core.store.atomic import atomic_write_json
from fer_core.store.layout import SPLIT_RE

EVALUATIONS_DIR = ".evaluations"
BUNDLED_PREFIX = "evaluation_"


@dataclass(frozen=True)
class EvaluationKey:
    """What makes two evaluations the same one: dataset, split, test-time augmentation."""

    split: str
    fingerprint: str | None
    tta: bool

    @classmethod
    def of(cls, result: dict[str, Any]) -> EvaluationKey:
        split = str(result.get("split") or "")
        if not SPLIT_RE.match(split):
            raise StoreError(f"Invalid split name {split!r}.")
        fingerprint = (result.get("dataset") or {}).get("fingerprint")
        return cls(split, str(fingerprint) if fingerprint else None, bool(result.get("tta")))

    @property
    def slug(self) -> str:
        digest = hashlib.sha1((self.fingerprint or "unknown").encode()).hexdigest()[:16]
        return f"{self.split}--{digest}--{'tta' if self.tta else 'plain'}"


@dataclass(frozen=True)
class SavedEvaluation:
    """One saved evaluation as listed (the headline figures; `read_evaluation` loads the whole)."""

    run_id: str
    key: EvaluationKey
    path: Path
    bundled: bool  # shipped with the run folder (read-only), not written by this store
    dataset_name: str
    synthetic: bool
    n: int
    accuracy: float | None
    macro_f1: float | None
    timestamp: str

    @property
    def label(self) -> str:
        """A one-line description for pickers and listings (synthetic data always said)."""
        acc = "-" if self.accuracy is None else f"{100 * self.accuracy:.1f}%"
        said = "synthetic" in self.dataset_name.lower()
        parts = [self.dataset_name + (" (synthetic demo data)" if self.synthetic and not said else ""), self.key.split,
                 "TTA" if self.key.tta else "no TTA", f"{self.n:,} images", acc]
        if self.bundled:
            parts.append("shipped")
        elif self.timestamp:
            parts.append(self.timestamp[:16].replace("T", " "))
        return " · ".join(parts)


def _summary(run_id: str, path: Path, bundled: bool, result: dict[str, Any]) -> SavedEvaluation:
    ds = result.get("dataset") or {}
    accuracy, macro_f1 = result.get("accuracy"), result.get("macro_f1")
    return SavedEvaluation(
        run_id=run_id, key=EvaluationKey.of(result), path=path, bundled=bundled,
        dataset_name=str(ds.get("name") or "unknown dataset"), synthetic=bool(ds.get("synthetic")),
        n=int(result.get("n") or 0),
        accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None,
        macro_f1=float(macro_f1) if isinstance(macro_f1, (int, float)) else None,
        timestamp=str(result.get("timestamp") or ""),
    )


@functools.lru_cache(maxsize=512)
def _cached_summary(run_id: str, path: str, bundled: bool, mtime_ns: int, size: int) -> SavedEvaluation:
    """The summary of one file as it is now (a rewritten file has another mtime / size): listing a run's
    evaluations on every page redraw does not parse their per-image predictions again."""
    return _summary(run_id, Path(path), bundled, _read_json(Path(path)))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"Evaluation {path.name} is unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise StoreError(f"Evaluation {path.name} is unreadable: not a JSON object.")
    return data


class EvaluationsMixin:
    """save / list / find / load evaluations; see the module doc for where they live."""

    root: Path

    def run_dir(self, run_id: str) -> Path:  # pragma: no cover - provided by ModelStore
        raise NotImplementedError

    def _existing_dir(self, run_id: str) -> Path:  # pragma: no cover - provided by ModelStore
        raise NotImplementedError

    def evaluations_dir(self, run_id: str) -> Path:
        self.run_dir(run_id)  # validates the id
        return self.root / EVALUATIONS_DIR / run_id

    def save_evaluation(self, run_id: str, result: dict[str, Any]) -> Path:
        """Write `result` as the run's evaluation for its (dataset, split, TTA); replaces only that one."""
        self._existing_dir(run_id)
        path = self.evaluations_dir(run_id) / f"{EvaluationKey.of(result).slug}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, result)
        return path

    def list_evaluations(self, run_id: str) -> list[SavedEvaluation]:
        """The run's evaluations, newest first, one per (dataset, split, TTA); unreadable files are left out."""
        found: dict[EvaluationKey, SavedEvaluation] = {}
        sources = [(p, True) for p in sorted(self.run_dir(run_id).glob(f"{BUNDLED_PREFIX}*.json"))]
        sources += [(p, False) for p in sorted(self.evaluations_dir(run_id).glob("*.json"))]
        for path, bundled in sources:  # the store's own files come last and win a tie
            with contextlib.suppress(StoreError, OSError):
                stat = path.stat()
                saved = _cached_summary(run_id, str(path), bundled, stat.st_mtime_ns, stat.st_size)
                found[saved.key] = saved
        return sorted(found.values(), key=lambda e: e.timestamp, reverse=True)

    def find_evaluation(
        self, run_id: str, split: str | None = None, fingerprint: str | None = None, tta: bool | None = None
    ) -> SavedEvaluation | None:
        """The newest evaluation matching every criterion given (None: any), or None."""
        for saved in self.list_evaluations(run_id):
            if split is not None and saved.key.split != split:
                continue
            if fingerprint is not None and saved.key.fingerprint != fingerprint:
                continue
            if tta is not None and saved.key.tta != bool(tta):
                continue
            return saved
        return None

    def read_evaluation(self, saved: SavedEvaluation) -> dict[str, Any]:
        """The whole evaluation (StoreError if it became unreadable)."""
        return _read_json(saved.path)

    def load_evaluation(
        self, run_id: str, split: str, fingerprint: str | None = None, tta: bool | None = None
    ) -> dict[str, Any] | None:
        """The newest matching evaluation as a dict, or None (see find_evaluation)."""
        saved = self.find_evaluation(run_id, split, fingerprint, tta)
        return self.read_evaluation(saved) if saved else None

    def remove_evaluations(self, run_id: str, bundled: bool = False) -> None:
        """Forget the run's evaluations (the store's; with `bundled`, the run folder's too)."""
        shutil.rmtree(self.evaluations_dir(run_id), ignore_errors=True)
        if bundled:
            for path in self.run_dir(run_id).glob(f"{BUNDLED_PREFIX}*.json"):
                path.unlink(missing_ok=True)
