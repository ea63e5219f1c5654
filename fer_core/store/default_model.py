"""Which model the app and CLI use when the user names none."""

from __future__ import annotations

import contextlib

from fer_core.store.evaluations import SavedEvaluation
from fer_core.store.layout import RunInfo
from fer_core.store.runs import ModelStore

# Order of preference among usable runs: the shipped default model, other shipped
# models, then the user's own runs (finished before stopped), newest first.
_STATUS_RANK = {"finished": 0, "stopped": 1, "failed": 2}


def usable_runs(store: ModelStore) -> list[RunInfo]:
    """Runs with a loadable-looking model (not running, not corrupt), best candidates first."""
    runs = [r for r in store.list_runs() if r.usable and r.status != "running"]

    def rank(r: RunInfo) -> tuple[int, int, int]:
        shipped = r.meta.get("shipped") or {}
        return (
            0 if shipped.get("default") else 1,
            0 if shipped else 1,
            _STATUS_RANK.get(r.status, 3),
        )

    # list_runs is newest first and sort() is stable: ties keep that order.
    return sorted(runs, key=rank)


def default_run(store: ModelStore | None = None) -> RunInfo | None:
    """The model to use when none is named, or None when the store has none."""
    runs = usable_runs(store or ModelStore())
    return runs[0] if runs else None


def resolve_run(store: ModelStore, run_id: str | None) -> RunInfo:
    """The run `run_id` names (its id, or a unique run name), else the default.

    StoreError with what to do when there is none, or when a name fits several runs.
    """
    from fer_core.errors import StoreError

    if run_id:
        with contextlib.suppress(StoreError):  # not a valid run id: it may still be a name
            if store.run_dir(run_id).is_dir():
                return store.get(run_id)
        runs = store.list_runs()
        named = [r for r in runs if r.meta.get("name") == run_id] or [
            r for r in runs if str(r.meta.get("name") or "").casefold() == run_id.casefold()]
        if len(named) == 1:
            return named[0]
        if named:
            raise StoreError(f"{len(named)} runs are named {run_id!r}: "
                             f"use one of their run ids ({', '.join(r.run_id for r in named)}).")
        raise StoreError(f"No run {run_id!r} (neither a run id nor a run name) in the model store ({store.root}). "
                         "`python -m fer_core runs` lists them.")
    run = default_run(store)
    if run is None:
        raise StoreError(
            f"No trained model in the model store ({store.root}). "
            "Train one first: python -m fer_core train --data demo"
        )
    return run


def shipped_evaluations(store: ModelStore, architecture: str) -> list[SavedEvaluation]:
    """The real-data test-split evaluations of the shipped models of `architecture` (what the Train page
    quotes for it, read from their files rather than written by hand)."""
    out = []
    for run in store.list_runs():
        if run.meta.get("shipped") and run.architecture == architecture:
            out += [e for e in store.list_evaluations(run.run_id) if e.key.split == "test" and not e.synthetic]
    return out
