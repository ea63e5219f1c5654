"""The model store as the pages see it: runs, their labels and badges, the model picker, and the
one-click demo training offered when there is no model yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from fer_core.paths import models_dir
from fer_core.training.architectures import DEFAULT_ARCHITECTURE
from ui.datasets import DEMO_SOURCE
from ui.page import friendly_errors

if TYPE_CHECKING:  # pragma: no cover
    from fer_core.store.layout import RunInfo
    from fer_core.store.runs import ModelStore

STATUS_BADGE = {
    "starting": ":blue-badge[:material/hourglass_top: starting]",
    "running": ":blue-badge[:material/sync: running]",
    "finished": ":green-badge[:material/check: finished]",
    "stopped": ":orange-badge[:material/stop: stopped]",
    "failed": ":red-badge[:material/error: failed]",
    "corrupt": ":red-badge[:material/broken_image: corrupt]",
}


def get_store() -> ModelStore:
    from fer_core.store.runs import ModelStore

    return ModelStore(models_dir())


def list_runs_ui(store: ModelStore | None = None) -> list[RunInfo]:
    store = store or get_store()
    return store.list_runs()


def report_corrupt_runs(runs: list[RunInfo]) -> None:
    bad = [r for r in runs if r.status == "corrupt"]
    if bad:
        with st.expander(f":material/warning: {len(bad)} run(s) in the model store cannot be read", expanded=False):
            for r in bad:
                st.markdown(f"- `{r.run_id}`: {r.error or 'unreadable'}")
            st.caption(f"Model store: `{get_store().root}`. Delete or repair these folders; the other runs work normally.")


def run_label(run: RunInfo) -> str:
    """"vgg_fer on FER-2013 (shipped) · 69.3%", "my run — mini_xception · 61.2% [finished]": each fact once."""
    meta = run.meta or {}
    acc = (run.metrics or {}).get("test_accuracy") or (run.metrics or {}).get("val_accuracy")
    ds = meta.get("dataset") or {}
    name = run.name or run.run_id
    shipped = is_shipped(run)
    arch = run.architecture or "?"
    head = name if arch in name else f"{name} — {arch}"
    if shipped and "shipped" not in name.lower():
        head += " (shipped)"
    acc_txt = f" · {acc:.1%}" if isinstance(acc, (int, float)) else ""
    syn = " (synthetic data)" if ds.get("synthetic") else ""
    # A shipped model's training story (a run stopped by its time budget, say) is in its details, not its name.
    status = "" if shipped else f" [{run.status}]"
    return f"{head}{acc_txt}{syn}{status}"


def usable_runs() -> list[RunInfo]:
    """Usable runs, best candidates first (shipped default model, then newest finished)."""
    from fer_core.store.default_model import usable_runs as _usable

    return _usable(get_store())


def default_run() -> RunInfo | None:
    """The model used when none is picked (the shipped default, while it is there)."""
    usable = usable_runs()
    return usable[0] if usable else None


def is_shipped(run: RunInfo) -> bool:
    return bool((run.meta or {}).get("shipped"))


def model_picker(label: str = "Model", key: str = "model_run", help: str | None = None) -> RunInfo | None:
    """Selectbox of usable runs (default model first); None (with a prompt) when there is none."""
    runs = list_runs_ui()
    report_corrupt_runs(runs)
    usable = usable_runs()
    if not usable:
        no_model_prompt(key=f"{key}_quick_train")
        return None
    default = usable[0]
    ids = [r.run_id for r in usable]
    by_id = {r.run_id: r for r in usable}
    if st.session_state.get(key) not in by_id:
        st.session_state[key] = default.run_id if default else ids[0]
    chosen = st.selectbox(label, ids, key=key, format_func=lambda rid: run_label(by_id[rid]),
                          help=help or "Trained runs in the model store. The default is the shipped model, else the newest run.")
    return by_id.get(chosen)


def no_model_prompt(key: str = "quick_train") -> None:
    """No trained model yet: offer to train one on the demo set in one click."""
    st.info(
        "**No trained model yet.** Train a small model on the built-in demo set (synthetic faces, "
        "about a minute on a CPU) to try the app, or train on real FER-2013 on the Train page.",
        icon=":material/model_training:",
    )
    if st.button("Train a quick demo model", key=key, icon=":material/play_arrow:", type="primary"):
        start_quick_training()


def start_quick_training() -> None:
    from fer_core.training import jobs

    with friendly_errors("Could not start the training"):
        with st.spinner("Starting the training process…"):
            run_id = jobs.start_training(DEMO_SOURCE, dict(QUICK_CONFIG), store=get_store())
        st.session_state["train_last_run"] = run_id
        st.switch_page("app_pages/train.py")


QUICK_CONFIG = {"architecture": DEFAULT_ARCHITECTURE, "epochs": 8, "batch_size": 64, "learning_rate": 1e-3,
                "name": "quick demo model"}
