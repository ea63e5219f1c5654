"""Evaluate: headline metrics, per-class report, interactive confusion matrix, ROC, history.

Pick one run, or two to compare side by side. Evaluations are computed by
fer_core.inference.evaluation.evaluate_run and kept by the store, one per (dataset, split, TTA): a
run's FER-2013 evaluation stays when it is evaluated on the demo set, and either can be shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from fer_core.charts import confusion_matrix_figure, history_figure, probability_figure, reliability_figure, roc_figure
from fer_core.errors import FerError, StoreError
from fer_core.store.evaluations import EvaluationKey, SavedEvaluation
from ui.datasets import current_dataset, dataset_caption
from ui.page import friendly_errors, page_header
from ui.runs import get_store, no_model_prompt, report_corrupt_runs, run_label, usable_runs

MAX_IMAGES = 24

page_header(
    "Evaluate", ":material/analytics:",
    "How good is a model on a labelled split? Accuracy, per-class precision/recall/F1, a confusion "
    "matrix you can click into, ROC curves and the training history. Select two runs to compare.",
)

store = get_store()
runs = store.list_runs()
report_corrupt_runs(runs)
usable = usable_runs()
if not usable:
    no_model_prompt(key="eval_quick_train")
    st.stop()
by_id = {r.run_id: r for r in usable}

ds = None
with friendly_errors("Loading the dataset"):
    ds = current_dataset()  # falls back to the demo set (and says why) if the chosen one is gone
if ds is None:
    st.stop()

# --------------------------------------------------------------------------- choices

wanted = [r for r in st.session_state.get("eval_runs", []) if r in by_id]
if not wanted:
    wanted = [usable[0].run_id]
st.session_state["eval_runs"] = wanted
c1, c2, c3 = st.columns([4, 2, 1], vertical_alignment="bottom")
chosen = c1.multiselect("Run(s)", list(by_id), key="eval_runs", max_selections=2,
                        format_func=lambda rid: run_label(by_id[rid]),
                        help="One run, or two to compare side by side.")
splits = list(ds.splits)
default_split = "test" if "test" in splits else splits[-1]
split = c2.selectbox("Split", splits, index=splits.index(default_split), key="eval_split",
                     help="'test' is the Kaggle test folder (= CSV PublicTest).")
tta = c3.toggle("TTA", key="eval_tta", help="Test-time augmentation: average each face with its mirror image.")
st.markdown(dataset_caption(ds))
st.page_link("app_pages/models.py", label="Compare with a model trained elsewhere: import it on the Models page",
             icon=":material/upload:")
if not chosen:
    st.info("Choose at least one run.")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=16)
def read_saved(path: str, stamp: int, _saved: SavedEvaluation) -> dict:
    return get_store().read_evaluation(_saved)


def run_evaluation(run_id: str) -> None:
    from fer_core.inference.evaluation import evaluate_run

    with friendly_errors(f"Evaluating {run_id}", hint="Check that the run's model file is intact (Train page lists problems)."):
        with st.spinner(f"Evaluating {run_id} on {len(ds.splits[split].labels):,} {split} images…"):
            evaluate_run(store, run_id, ds, split=split, tta=bool(tta))
        st.rerun()


def pick_evaluation(run_id: str) -> dict | None:
    """The evaluation to show: the one on the chosen dataset, split and TTA, or another saved one the user picks."""
    saved = {e.key.slug: e for e in store.list_evaluations(run_id)}
    wanted = EvaluationKey(split, ds.fingerprint, bool(tta)).slug
    if wanted not in saved:
        st.info(f"No evaluation of this run on **{ds.name}** ({split}, {'with' if tta else 'no'} TTA) yet.",
                icon=":material/info:")
        if st.button("Evaluate", key=f"eval_{run_id}", type="primary", icon=":material/play_arrow:"):
            run_evaluation(run_id)
    if not saved:
        return None
    slugs = list(saved)
    # The key follows the chosen dataset/split/TTA and whether it has an evaluation: changing them, or
    # evaluating, shows that evaluation again.
    slug = st.selectbox("Saved evaluation", slugs, index=slugs.index(wanted) if wanted in saved else None,
                        format_func=lambda k: saved[k].label, key=f"eval_pick_{run_id}_{wanted}_{wanted in saved}",
                        placeholder=f"or show one of the {len(slugs)} saved evaluation(s)",
                        help="One evaluation is kept per dataset, split and TTA setting.")
    if slug is None:
        return None
    chosen_ev = saved[slug]
    return read_saved(str(chosen_ev.path), chosen_ev.path.stat().st_mtime_ns, chosen_ev)


# --------------------------------------------------------------------------- per-run rendering

cols = st.columns(len(chosen), gap="large")
ready: dict[str, dict] = {}
for col, rid in zip(cols, chosen):
    with col:
        run = by_id[rid]
        st.subheader(run.name)
        st.caption(f"`{rid}` · {run.architecture}")
        try:
            ev = pick_evaluation(rid)
        except (StoreError, FerError, OSError) as exc:
            st.error(f"The saved evaluation of {rid} cannot be read: {exc}. Evaluate again to replace it.")
            ev = None
        if ev is None:
            continue
        if (ev.get("dataset") or {}).get("fingerprint") != ds.fingerprint:
            other = (ev.get("dataset") or {}).get("name", "another dataset")
            st.warning(f"This evaluation is on **{other}**, not the chosen dataset. "
                       "Images behind the confusion matrix are not shown.", icon=":material/swap_horiz:")
        ready[rid] = ev
        if ev.get("warning"):
            st.warning(ev["warning"], icon=":material/warning:")
        if (ev.get("dataset") or {}).get("synthetic"):
            st.caption(":orange-badge[synthetic] evaluated on the synthetic demo set, not on real faces")
        m = st.columns(5)
        m[0].metric("accuracy", f"{ev['accuracy']:.1%}" if ev.get("accuracy") is not None else "—")
        m[1].metric("macro F1", f"{ev['macro_f1']:.3f}" if ev.get("macro_f1") is not None else "—")
        m[2].metric("top-2 accuracy", f"{ev['top2_accuracy']:.1%}" if ev.get("top2_accuracy") is not None else "—")
        m[3].metric("macro ROC AUC", f"{ev['macro_roc_auc']:.3f}" if ev.get("macro_roc_auc") is not None else "—")
        m[4].metric("ECE", f"{ev['ece']:.3f}" if ev.get("ece") is not None else "—",
                    help="Expected calibration error: how far the confidence shown is from the share of faces "
                         "labelled right at that confidence (0 = calibrated). "
                         + (f"Temperature {ev['temperature']:.2f} applied (fitted on the validation split)."
                            if (ev.get("temperature") or 1.0) != 1.0 else "No temperature recorded for this run."))
        st.caption(f"{ev.get('n', 0):,} {ev.get('split')} images of {(ev.get('dataset') or {}).get('name', '?')} · "
                   f"TTA {'on' if ev.get('tta') else 'off'} · {ev.get('images_per_second') or '?'} images/s · "
                   f"{ev.get('timestamp', '')}")

if not ready:
    st.stop()

if len(ready) == 2:
    a, b = list(ready)
    st.markdown("#### Comparison")
    rows = []
    for key, label in (("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("top2_accuracy", "top-2 accuracy"),
                       ("macro_roc_auc", "macro ROC AUC"), ("log_loss", "log loss"), ("ece", "ECE")):
        va, vb = ready[a].get(key), ready[b].get(key)
        rows.append({"metric": label, by_id[a].name: va, by_id[b].name: vb,
                     "difference (2nd − 1st)": (vb - va) if va is not None and vb is not None else None})
    st.dataframe(pd.DataFrame(rows), hide_index=True)

# --------------------------------------------------------------------------- report

st.markdown("#### Classification report")
cols = st.columns(len(ready), gap="large")
for col, (rid, ev) in zip(cols, ready.items()):
    with col:
        pc = ev.get("per_class") or {}
        df = pd.DataFrame([{"class": k, **v} for k, v in pc.items()])
        st.dataframe(df, hide_index=True, column_config={
            "precision": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1),
            "recall": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1),
            "f1": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1),
            "roc_auc": st.column_config.NumberColumn("ROC AUC", format="%.3f"),
        })

# --------------------------------------------------------------------------- confusion matrix

st.markdown("#### Confusion matrix")
normalize = st.toggle("Row-normalised (share of each true class)", key="cm_norm")
st.caption("Click a cell (or pick it below) to see the images behind it with their predicted probabilities.")
cols = st.columns(len(ready), gap="large")
for col, (rid, ev) in zip(cols, ready.items()):
    with col:
        labels = list(ev.get("labels") or ds.labels)
        cm = np.asarray(ev.get("confusion_matrix") or np.zeros((len(labels), len(labels))))
        event = st.plotly_chart(confusion_matrix_figure(cm, labels, normalize=normalize), key=f"cm_{rid}",
                                on_select="rerun", selection_mode="points")
        picked = None
        try:
            pts = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else event.selection.points
        except AttributeError:
            pts = []
        for p in pts or []:
            cd = p.get("customdata") if isinstance(p, dict) else None
            if cd and len(cd) >= 2:
                picked = (int(cd[0]), int(cd[1]))
                break
        t_key, p_key = f"cm_true_{rid}", f"cm_pred_{rid}"
        if picked is not None and st.session_state.get(f"cm_last_{rid}") != picked:
            st.session_state[f"cm_last_{rid}"] = picked
            st.session_state[t_key], st.session_state[p_key] = labels[picked[0]], labels[picked[1]]
        if t_key not in st.session_state:
            # Default: the largest off-diagonal cell (the most common confusion).
            off = cm.copy()
            np.fill_diagonal(off, -1)
            i, j = np.unravel_index(int(np.argmax(off)), off.shape) if off.size else (0, 0)
            st.session_state[t_key], st.session_state[p_key] = labels[i], labels[j]
        s1, s2 = st.columns(2)
        true_c = s1.selectbox("true class", labels, key=t_key)
        pred_c = s2.selectbox("predicted as", labels, key=p_key)
        preds = [p for p in (ev.get("predictions") or []) if p.get("true") == true_c and p.get("pred") == pred_c]
        preds.sort(key=lambda p: -float(p.get("confidence") or 0))
        st.markdown(f"**{len(preds):,}** image(s): true **{true_c}**, predicted **{pred_c}**"
                    + (" (most confident first)" if preds else ""))
        fp_match = (ev.get("dataset") or {}).get("fingerprint") == ds.fingerprint and ev.get("split") in ds.splits
        if preds and fp_match:
            images = ds.splits[ev["split"]].images
            grid = st.columns(6)
            for k, p in enumerate(preds[:MAX_IMAGES]):
                idx = int(p["index"])
                if 0 <= idx < len(images):
                    with grid[k % 6]:
                        st.image(images[idx], width="stretch", clamp=True)
                        st.caption(f"{p['pred']} {float(p['confidence']):.0%}")
            if len(preds) > MAX_IMAGES:
                st.caption(f"first {MAX_IMAGES} of {len(preds):,} shown; all are in the table below")
            chosen_img = st.selectbox("Probabilities of image", [int(p["index"]) for p in preds[:200]],
                                      format_func=lambda i: f"#{i}", key=f"cm_img_{rid}")
            sel = next(p for p in preds if int(p["index"]) == chosen_img)
            ci1, ci2 = st.columns([1, 3])
            ci1.image(images[chosen_img], width="stretch", clamp=True, caption=str(sel.get("source") or ""))
            ci2.plotly_chart(probability_figure(sel["probs"], labels), key=f"cm_prob_{rid}")
        if preds:
            table = pd.DataFrame([{"index": p["index"], "source": p.get("source"), "confidence": p.get("confidence"),
                                   **{lab: pr for lab, pr in zip(labels, p.get("probs") or [])}} for p in preds])
            with st.expander("Table of these images"):
                st.dataframe(table, hide_index=True)

# --------------------------------------------------------------------------- ROC & history

st.markdown("#### ROC curves")
cols = st.columns(len(ready), gap="large")
for col, (rid, ev) in zip(cols, ready.items()):
    with col:
        st.plotly_chart(roc_figure(ev.get("roc") or {}), key=f"roc_{rid}")

st.markdown("#### Calibration")
st.caption("Of the faces shown with a given confidence, how many are right. Bars under the diagonal: "
           "over-confident; `python -m fer_core calibrate RUN` fits a temperature on the validation split.")
cols = st.columns(len(ready), gap="large")
for col, (rid, ev) in zip(cols, ready.items()):
    with col:
        if ev.get("reliability"):
            st.plotly_chart(reliability_figure(ev["reliability"], ev.get("ece")), key=f"rel_{rid}")
        else:
            st.caption("This evaluation was saved before calibration was measured: evaluate again to see it.")

st.markdown("#### Training history")
cols = st.columns(len(chosen), gap="large")
for col, rid in zip(cols, chosen):
    with col:
        try:
            history = store.history(rid)  # one record per epoch across resumes
        except (StoreError, OSError) as exc:
            st.warning(f"History of {rid} unavailable: {exc}")
            continue
        params = by_id[rid].meta.get("params") or {}
        if history:
            st.plotly_chart(history_figure(history, params.get("epochs"), title=by_id[rid].name), key=f"history_{rid}")
        else:
            st.caption("No training history recorded (imported model?).")
