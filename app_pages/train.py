"""Train: choose an architecture and hyper-parameters, start a training job, follow it live.

The training runs in a separate process (fer_core.training.jobs -> `python -m fer_core train`); this
page only reads the run's events.jsonl. The running job is found from the model store, so
leaving the page or reloading reattaches to it.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from fer_core.charts import history_figure
from fer_core.errors import StoreError
from fer_core.training import jobs
from fer_core.training.config import CONFIG_DEFAULTS, LR_SCHEDULES, OPTIMIZERS
from fer_core.training.precision import PRECISIONS, default_precision, default_precision_reason
from ui.datasets import current_dataset, dataset_caption, dataset_label, dataset_source
from ui.page import friendly_errors, page_header
from ui.runs import STATUS_BADGE, get_store, is_shipped, report_corrupt_runs, run_label, usable_runs

LIVE_REFRESH_S = 2.0

page_header(
    "Train", ":material/model_training:",
    "Train a model on the chosen dataset. Training runs in the background: you can leave this page, "
    "reload it or close the browser, and come back to follow it. One training at a time per model store.",
)


@st.cache_resource(show_spinner=False)
def architecture_specs() -> dict[str, dict]:
    from fer_core.training.architectures import ARCHITECTURES

    return {name: spec.to_dict() for name, spec in ARCHITECTURES.items()}


def fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {sec:02d}s" if m else f"{sec}s")


store = get_store()


# --------------------------------------------------------------------------- live view

def show_progress(run_id: str, live: bool) -> str | None:
    """Progress, curves and stop button of one run; returns its status (None if gone)."""
    try:
        snap = jobs.progress(store, run_id)
    except (StoreError, OSError) as exc:
        st.warning(f"Run `{run_id}` is no longer in the model store ({exc}). It may have been deleted.",
                   icon=":material/folder_off:")
        return None
    title = f"{STATUS_BADGE.get(snap.status, snap.status)} **{run_id}**"
    st.markdown(title)
    total = snap.epochs_total or max(snap.epochs_done, 1)
    text = f"Epoch {snap.epochs_done} of {total}"
    if snap.status == "running" and snap.epochs_done == 0:
        text += (" — the teachers are labelling the training faces…" if snap.labelling
                 else " — preparing data and building the model…")
    st.progress(min(snap.fraction, 1.0), text=text)
    last = snap.epochs[-1] if snap.epochs else {}
    best = snap.best
    c = st.columns(5)
    c[0].metric("elapsed", fmt_seconds(snap.elapsed_s))
    c[1].metric("remaining (estimate)", fmt_seconds(snap.remaining_s) if snap.status == "running" else "—")
    c[2].metric("val accuracy (last)", f"{last['val_accuracy']:.1%}" if isinstance(last.get("val_accuracy"), (int, float)) else "—")
    c[3].metric("best val accuracy", f"{best['val_accuracy']:.1%}" if best else "—",
                help=f"epoch {best.get('epoch')}" if best else None)
    c[4].metric("learning rate", f"{last['lr']:.1e}" if isinstance(last.get("lr"), (int, float)) else "—")
    st.plotly_chart(history_figure(snap.epochs, snap.epochs_total), key=f"hist_{run_id}_{'live' if live else 'final'}")
    if snap.status == "running":
        stop_pending = store.stop_requested(run_id) if hasattr(store, "stop_requested") else False
        if stop_pending:
            st.info("Stop requested: the training stops after the current batch and keeps the best model so far.",
                    icon=":material/hourglass_top:")
        elif st.button("Stop training", icon=":material/stop_circle:", key=f"stop_{run_id}", type="secondary"):
            with friendly_errors("Could not stop the training"):
                jobs.stop_training(store, run_id)
                st.toast("Stop requested", icon=":material/stop_circle:")
    elif snap.status == "failed":
        st.error(f"The training failed: {snap.error or 'see the log below'}", icon=":material/error:")
        log = jobs.read_log_tail(store, run_id)
        if log:
            with st.expander("Training log (last lines)"):
                st.code(log[-3000:], language=None)
    if snap.status in ("stopped", "failed") and not live:
        resume_button(run_id, key=f"resume_{run_id}")
    return snap.status


def resume_button(run_id: str, key: str) -> None:
    """Resume a stopped, failed or killed run from its last complete epoch (disabled, with the reason, when it cannot)."""
    why_not = jobs.can_resume(store, run_id)
    busy_now = jobs.running_job(store) is not None
    help_text = (f"Cannot resume: {why_not}." if why_not else
                 "Continue from the last complete epoch with the same settings, optimizer state and "
                 "learning-rate schedule; the curves carry on where they stopped.")
    if st.button("Resume training", icon=":material/replay:", key=key, disabled=bool(why_not) or busy_now,
                 help=help_text):
        with friendly_errors("Could not resume the training"):
            source = jobs.resume_source(store, run_id, dataset_source())
            with st.spinner(f"Resuming {run_id}…"):
                jobs.start_resume(source, run_id, store=store)
            st.session_state["train_last_run"] = run_id
            st.rerun()


@st.fragment(run_every=LIVE_REFRESH_S)
def live_panel(run_id: str) -> None:
    status = show_progress(run_id, live=True)
    if status != "running":
        # The job ended: rerun the whole page so the form comes back.
        st.session_state["train_last_run"] = run_id
        st.rerun()


# --------------------------------------------------------------------------- page

runs = store.list_runs()
report_corrupt_runs(runs)
running = jobs.running_job(store)
holder = None if running else store.training_lock_holder()

if running is not None:
    st.subheader(":material/monitoring: Training now")
    ds_meta = (running.meta or {}).get("dataset") or {}
    params = (running.meta or {}).get("params") or {}
    st.caption(f"{running.architecture} on {ds_meta.get('name', '?')}"
               + (" (synthetic)" if ds_meta.get("synthetic") else "")
               + f" · batch {params.get('batch_size', '?')} · lr {params.get('learning_rate', '?')}")
    live_panel(running.run_id)
elif holder:
    st.warning(f"The model store is locked by another training ({holder.get('run_id', '?')}, started "
               f"{holder.get('started', '?')}). Wait for it to finish.", icon=":material/lock:")
else:
    last = st.session_state.get("train_last_run")
    if last:
        with st.container(border=True):
            status = show_progress(last, live=False)
            if status in ("finished", "stopped"):
                c1, c2 = st.columns(2)
                if c1.button("Evaluate this model", icon=":material/analytics:", key="goto_eval"):
                    st.session_state["eval_runs"] = [last]
                    st.switch_page("app_pages/evaluate.py")
                if c2.button("Try it on photos", icon=":material/image_search:", key="goto_predict"):
                    st.session_state["model_run"] = last
                    st.switch_page("app_pages/predict.py")
            if status is None:
                st.session_state.pop("train_last_run", None)

# --------------------------------------------------------------------------- new training form

st.subheader(":material/tune: New training")
busy = running is not None or bool(holder)
ds = None
with friendly_errors("Loading the dataset"):
    ds = current_dataset()  # falls back to the demo set (and says why) if the chosen one is gone
    st.markdown(dataset_caption(ds) + " — change it on the Dataset explorer page.")
if ds is None:
    st.stop()

specs = architecture_specs()
names = list(specs)
if "tr_arch" not in st.session_state:
    from fer_core.training.architectures import CLICK_TO_TRAIN_ARCHITECTURE

    st.session_state["tr_arch"] = CLICK_TO_TRAIN_ARCHITECTURE


def apply_recommended() -> None:
    spec = specs[st.session_state["tr_arch"]]
    synthetic = dataset_source() == "demo"
    st.session_state["tr_epochs"] = min(int(spec["epochs"]), 10) if synthetic else int(spec["epochs"])
    st.session_state["tr_batch"] = int(spec["batch_size"])
    st.session_state["tr_lr"] = float(spec["learning_rate"])
    st.session_state["tr_opt"] = spec.get("optimizer", "adam")
    st.session_state["tr_sched"] = spec.get("lr_schedule", "plateau")
    st.session_state["tr_ls"] = float(spec.get("label_smoothing", 0.0))
    st.session_state["tr_erase"] = bool(spec.get("random_erasing", False))


if "tr_epochs" not in st.session_state:
    apply_recommended()

LRS = [1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 0.1]
if st.session_state.get("tr_lr") not in LRS:
    LRS = sorted(set(LRS + [st.session_state["tr_lr"]]))

c1, c2 = st.columns([1, 2], gap="large")
with c1:
    arch = st.selectbox("Architecture", names, key="tr_arch", format_func=lambda n: specs[n].get("title", n),
                        on_change=apply_recommended, disabled=busy,
                        help="Changing it loads its recommended recipe: epochs, batch size, learning rate, "
                             "optimizer, schedule, label smoothing and random erasing.")
with c2:
    st.caption(specs[arch]["description"])
    from fer_core.store.default_model import shipped_evaluations

    for ev in shipped_evaluations(store, arch):  # measured figures, from the shipped models' evaluation files
        f1 = f", macro F1 {ev.macro_f1:.3f}" if ev.macro_f1 is not None else ""
        st.caption(f"Shipped `{ev.run_id}`: {ev.accuracy or 0:.1%} on {ev.dataset_name} {ev.key.split} "
                   f"({ev.n:,} images{', flip TTA' if ev.key.tta else ''}){f1}")
    sp = specs[arch]
    extras = [f"{sp['lr_schedule']} schedule"] + (["random erasing"] if sp["random_erasing"] else []) + (
        [f"label smoothing {sp['label_smoothing']:g}"] if sp["label_smoothing"] else [])
    st.caption(f"Recommended: {sp['epochs']} epochs, batch {sp['batch_size']}, learning rate "
               f"{sp['learning_rate']:g}, {sp['optimizer']}, {', '.join(extras)}.")

c = st.columns(4)
epochs = c[0].number_input("Epochs", 1, 1000, key="tr_epochs", disabled=busy,
                           help="Full passes over the training images. Early stopping may end sooner.")
batch = c[1].selectbox("Batch size", [16, 32, 64, 128, 256], key="tr_batch", disabled=busy)
lr = c[2].select_slider("Learning rate", LRS, key="tr_lr", format_func=lambda v: f"{v:g}", disabled=busy)
opt = c[3].selectbox("Optimizer", list(OPTIMIZERS), key="tr_opt", disabled=busy,
                     help="sgd uses Nesterov momentum 0.9.")

c = st.columns(4)
augment = c[0].toggle("Augmentation", value=True, key="tr_aug", disabled=busy,
                      help="Random flips, shifts, rotations and zoom of the training faces.")
erasing = c[1].toggle("Random erasing", key="tr_erase", disabled=busy,
                      help="Blank out a random patch of each face (occlusion robustness).")
weights = c[2].toggle("Class weights", value=False, key="tr_cw", disabled=busy,
                      help="Weigh rare classes (e.g. disgust) up so the loss does not ignore them.")
splits_other = [s for s in ds.splits if s != "train"] if ds is not None else []
val_mode = c[3].radio("Validation on", ["part of train"] + splits_other, key="tr_valmode", disabled=busy, horizontal=True,
                      help="Hold out a stratified fraction of train, or validate on another split.")
c = st.columns(4)
val_frac = c[0].slider("Validation fraction", 0.05, 0.5, 0.1, 0.05, key="tr_valfrac",
                       disabled=busy or val_mode != "part of train")
patience = c[1].number_input("Early-stopping patience", 0, 1000, 8, key="tr_pat", disabled=busy,
                             help="Stop after this many epochs without a better validation accuracy (0: never).")
smoothing = c[2].number_input("Label smoothing", 0.0, 0.5, step=0.05, key="tr_ls", disabled=busy)
cap = c[3].number_input("Max training images (0 = all)", 0, 1_000_000, 0, 1000, key="tr_cap", disabled=busy,
                        help="Train on a stratified subset for a quick try.")
c = st.columns([1, 1, 2])
schedule = c[0].selectbox("Learning-rate schedule", list(LR_SCHEDULES), key="tr_sched", disabled=busy,
                          help="plateau: halve the rate when the validation loss stalls; "
                               "cosine: decay it smoothly to 1/100 over the epochs.")
precisions = list(PRECISIONS)
precision = c[1].selectbox(
    "Precision", precisions, index=precisions.index(default_precision()), key="tr_precision", disabled=busy,
    help="bf16: bfloat16 arithmetic with float32 weights, faster on CPUs with AMX / AVX512-BF16 and on recent "
         "GPUs (the default where this machine has them); the saved model is float32 either way.")
if precision == default_precision():
    c[1].caption(f"Chosen for this machine: {default_precision_reason()}.")
name = c[2].text_input("Run name (optional)", key="tr_name", disabled=busy, placeholder="e.g. mini-xception baseline")
with st.expander("More settings", icon=":material/tune:"):
    c = st.columns(4)
    plateau_patience = c[0].number_input(
        "Plateau patience", 0, 1000, CONFIG_DEFAULTS["reduce_lr_patience"], key="tr_plateau",
        disabled=busy or schedule != "plateau",
        help="plateau schedule: halve the learning rate after this many epochs without a better validation loss "
             "(0: never).")
    seed = c[1].number_input("Seed", 0, 2**31 - 1, CONFIG_DEFAULTS["seed"], key="tr_seed", disabled=busy,
                             help="Initial weights, validation split and shuffles: the same seed repeats a run.")
    camera = c[2].toggle("Camera augmentation", value=False, key="tr_camera", disabled=busy,
                         help="Half of the training faces get one webcam-like shift: blur, JPEG, noise, "
                              "brightness or contrast, low resolution, or a band over the eyes or mouth "
                              "(benchmarks/robustness.py measures models under these).")
    c = st.columns(4)
    mixup = c[0].number_input(
        "Mixup alpha", 0.0, 10.0, CONFIG_DEFAULTS["mixup"], 0.1, key="tr_mixup", disabled=busy,
        help="Blend pairs of training faces and their labels (0: off; 0.2 is usual).")
    cutmix = c[1].number_input(
        "CutMix alpha", 0.0, 10.0, CONFIG_DEFAULTS["cutmix"], 0.5, key="tr_cutmix", disabled=busy,
        help="Paste a patch of another face, labels weighed by its area (0: off; 1.0 is usual). With mixup "
             "too, each batch gets one of the two.")
    teacher_runs = {r.run_id: r for r in usable_runs()}
    teachers = c[2].multiselect(
        "Distil from (teachers)", list(teacher_runs), key="tr_teachers", disabled=busy,
        format_func=lambda rid: run_label(teacher_runs[rid]),
        help="Train this model to match these models' averaged probabilities (an ensemble in one network).")
    distill_weight = c[3].number_input(
        "Teachers' share", 0.0, 1.0, CONFIG_DEFAULTS["distill_weight"], 0.1, key="tr_distill", disabled=busy or not teachers,
        help="Of each training target: the teachers' probabilities, the rest the true label.")

config = {
    "architecture": arch,
    "epochs": int(epochs),
    "batch_size": int(batch),
    "learning_rate": float(lr),
    "optimizer": opt,
    "augment": bool(augment),
    "random_erasing": bool(erasing),
    "camera_augment": bool(camera),
    "mixup": float(mixup),
    "cutmix": float(cutmix),
    "teachers": list(teachers) or None,
    "distill_weight": float(distill_weight),
    "class_weights": bool(weights),
    "validation": f"{val_frac:g}" if val_mode == "part of train" else val_mode,
    "early_stopping_patience": int(patience),
    "label_smoothing": float(smoothing),
    "lr_schedule": schedule,
    "reduce_lr_patience": int(plateau_patience),
    "precision": precision,
    "seed": int(seed),
    "name": name.strip() or None,
}
recipe = specs[arch]  # its weight decay and warm-up, where the recipe's optimizer and schedule are kept
if opt == recipe.get("optimizer"):
    config["weight_decay"] = recipe.get("weight_decay")
if schedule == "cosine" and 0 < int(recipe.get("warmup_epochs") or 0) < int(epochs):
    config["warmup_epochs"] = int(recipe["warmup_epochs"])
if int(cap) > 0:
    config["max_train_images"] = max(int(cap), 14)

if busy:
    st.info("A training is already running on this model store. Stop it (above) or wait for it to finish before starting another.",
            icon=":material/lock:")
if st.button("Train", type="primary", icon=":material/play_arrow:", disabled=busy, key="tr_start"):
    with friendly_errors("Could not start the training"):
        with st.spinner(f"Starting the training process on {dataset_label()}…"):
            run_id = jobs.start_training(dataset_source(), config, store=store)
        st.session_state["train_last_run"] = run_id
        st.rerun()

# --------------------------------------------------------------------------- past runs

st.subheader(":material/history: Runs in the model store")
if not runs:
    st.caption(f"No runs yet in `{store.root}`.")
else:
    rows = []
    for r in runs:
        m = r.metrics
        ds_meta = (r.meta or {}).get("dataset") or {}
        rows.append({
            "run": r.run_id, "name": r.name, "status": r.status, "architecture": r.architecture,
            "dataset": (ds_meta.get("name") or "?") + (" (synthetic)" if ds_meta.get("synthetic") else ""),
            "best val accuracy": m.get("best_val_accuracy"), "epochs": m.get("epochs_run"),
            "created": r.created, "problem": r.error,
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True,
                 column_config={"best val accuracy": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
    resumable = [r.run_id for r in runs if r.status in ("stopped", "failed") and jobs.can_resume(store, r.run_id) is None]
    with st.expander(f"Resume a run ({len(resumable)})"):
        st.caption("A stopped, failed or killed run continues from its last complete epoch, on the dataset it was "
                   "trained on.")
        pick = st.selectbox("Run", resumable, key="resume_pick", index=None, placeholder="choose a run")
        if pick:
            resume_button(pick, key="resume_from_list")
    with st.expander("Delete a run"):
        deletable = [r.run_id for r in runs if r.status not in ("starting", "running") and not is_shipped(r)]
        st.caption("Models that ship with fer-studio cannot be deleted.")
        victim = st.selectbox("Run", deletable, key="del_run", index=None, placeholder="choose a run")
        if st.button("Delete", icon=":material/delete:", disabled=victim is None, key="del_btn"):
            with friendly_errors("Could not delete the run"):
                store.delete(victim)
                if st.session_state.get("train_last_run") == victim:
                    st.session_state.pop("train_last_run", None)
                st.toast(f"Deleted {victim}")
                st.rerun()
