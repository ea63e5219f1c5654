"""Plotly figure builders for the app (and notebooks). No Streamlit, no TensorFlow.

Every figure uses the per-emotion colours of fer_core.colors so an emotion looks the same
on every page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fer_core.colors import emotion_hex

SPLIT_PATTERNS = {"train": "", "test": "/", "private_test": "."}
_MARGIN = dict(l=10, r=10, t=40, b=10)


def class_distribution_figure(counts: Mapping[str, Mapping[str, int]], title: str = "Images per class") -> go.Figure:
    """Grouped bars: one group per class, one bar per split (split told apart by hatching)."""
    fig = go.Figure()
    for split, per_class in counts.items():
        names = list(per_class)
        values = [int(per_class[n]) for n in names]
        total = max(sum(values), 1)
        fig.add_bar(
            name=split,
            x=names,
            y=values,
            marker=dict(color=[emotion_hex(n) for n in names], pattern_shape=SPLIT_PATTERNS.get(split, "x"),
                        line=dict(color="rgba(0,0,0,0.35)", width=1)),
            customdata=[[split, v / total * 100] for v in values],
            hovertemplate="%{x} (%{customdata[0]}): %{y} images, %{customdata[1]:.1f}%<extra></extra>",
            text=values,
            textposition="outside",
        )
    fig.update_layout(barmode="group", title=title, margin=_MARGIN, legend_title_text="split",
                      yaxis_title="images", height=380)
    return fig


def pixel_histogram_figure(histograms: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> go.Figure:
    """Line per split of the fraction of pixels in each intensity bin."""
    fig = go.Figure()
    for split, (edges, frac) in histograms.items():
        fig.add_scatter(x=np.asarray(edges), y=np.asarray(frac) * 100, mode="lines", name=split, line_shape="hvh",
                        hovertemplate="intensity %{x}: %{y:.2f}% of pixels<extra>" + split + "</extra>")
    fig.update_layout(title="Pixel intensity", xaxis_title="intensity (0 = black, 255 = white)",
                      yaxis_title="% of pixels", margin=_MARGIN, height=320)
    return fig


def confusion_matrix_figure(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str],
    normalize: bool = False,
    title: str | None = None,
) -> go.Figure:
    """Heatmap (rows = true class, columns = predicted class) with a clickable marker per cell.

    The heatmap is for the eye; a scatter of square markers over the cell centres carries the
    selection (plotly selection events work on scatter traces): each point's customdata is
    [true_index, predicted_index, count].
    """
    counts = np.asarray(matrix, dtype=np.float64)
    n = len(labels)
    row_sums = counts.sum(axis=1, keepdims=True)
    shown = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0) if normalize else counts
    text = [[(f"{shown[i, j]:.0%}" if normalize else f"{int(counts[i, j])}") for j in range(n)] for i in range(n)]
    labels = list(labels)
    fig = go.Figure()
    fig.add_heatmap(
        z=shown, x=labels, y=labels, colorscale="Blues", text=text, texttemplate="%{text}",
        zmin=0, zmax=1 if normalize else None,
        hoverinfo="skip", showscale=True,
        colorbar=dict(title="share of row" if normalize else "images"),
    )
    xs, ys, custom, hover = [], [], [], []
    for i in range(n):
        for j in range(n):
            xs.append(labels[j])
            ys.append(labels[i])
            custom.append([i, j, int(counts[i, j])])
            share = shown[i, j] if normalize else (counts[i, j] / row_sums[i, 0] if row_sums[i, 0] else 0)
            hover.append(f"true {labels[i]}, predicted {labels[j]}: {int(counts[i, j])} images ({share:.0%} of {labels[i]})")
    fig.add_scatter(
        x=xs, y=ys, mode="markers", customdata=custom, hovertext=hover, hoverinfo="text",
        marker=dict(symbol="square", size=max(18, 300 // max(n, 1)), color="rgba(0,0,0,0.01)",
                    line=dict(width=0)),
        selected=dict(marker=dict(color="rgba(255,64,64,0.25)")),
        unselected=dict(marker=dict(opacity=1)),
        showlegend=False, name="cells",
    )
    fig.update_layout(
        title=title or ("Confusion matrix (row-normalised)" if normalize else "Confusion matrix (counts)"),
        xaxis=dict(title="predicted", side="bottom", type="category"),
        yaxis=dict(title="true", autorange="reversed", type="category"),
        margin=_MARGIN, height=520,
    )
    return fig


def roc_figure(curves: Mapping[str, Mapping[str, Any]], title: str = "ROC (one class vs rest)") -> go.Figure:
    """curves: class -> {"fpr": [...], "tpr": [...], "auc": float}."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance",
                    hoverinfo="skip")
    for name, c in curves.items():
        fpr, tpr = c.get("fpr") or [], c.get("tpr") or []
        if not len(fpr):
            continue
        auc = c.get("auc")
        label = f"{name} (AUC {auc:.3f})" if isinstance(auc, (int, float)) and np.isfinite(auc) else name
        fig.add_scatter(x=fpr, y=tpr, mode="lines", name=label, line=dict(color=emotion_hex(name), width=2),
                        hovertemplate="FPR %{x:.3f}, TPR %{y:.3f}<extra>" + name + "</extra>")
    fig.update_layout(title=title, xaxis=dict(title="false positive rate", range=[0, 1]),
                      yaxis=dict(title="true positive rate", range=[0, 1.02]), margin=_MARGIN, height=460)
    return fig


def reliability_figure(bins: Sequence[Mapping[str, Any]], ece: float | None = None,
                       title: str = "Reliability (confidence vs accuracy)") -> go.Figure:
    """bins: [{lo, hi, count, confidence, accuracy}] (fer_core.calibration.reliability_bins).
    Bars: accuracy per confidence bin; the diagonal is a calibrated model; the gap is over- or under-confidence."""
    full = [b for b in bins if b.get("count")]
    mids = [(b["lo"] + b["hi"]) / 2 for b in full]
    width = (full[0]["hi"] - full[0]["lo"]) if full else 0.1
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="calibrated",
                    hoverinfo="skip")
    fig.add_bar(x=mids, y=[b["accuracy"] for b in full], width=width * 0.9, name="accuracy", marker_color="#2E86DE",
                customdata=[[b["count"], b["confidence"]] for b in full],
                hovertemplate="confidence %{customdata[1]:.0%}: accuracy %{y:.0%} (%{customdata[0]:,} faces)<extra></extra>")
    fig.add_scatter(x=mids, y=[b["confidence"] for b in full], mode="markers", name="mean confidence",
                    marker=dict(color="#E67E22", size=7), hoverinfo="skip")
    if ece is not None and np.isfinite(ece):
        title = f"{title} · ECE {ece:.3f}"
    fig.update_layout(title=title, xaxis=dict(title="confidence of the top class", range=[0, 1]),
                      yaxis=dict(title="share right", range=[0, 1.02]), margin=_MARGIN, height=420,
                      bargap=0.05, legend=dict(orientation="h", y=-0.2))
    return fig


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for h in history:
        v = h.get(key)
        if v is None or not isinstance(v, (int, float)) or not np.isfinite(v):
            continue
        xs.append(h.get("epoch"))
        ys.append(v)
    return xs, ys


def history_figure(history: Sequence[Mapping[str, Any]], total_epochs: int | None = None, title: str = "Training history") -> go.Figure:
    """Loss, accuracy (train vs validation) and learning rate per epoch, in three panels."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "accuracy", "learning rate"), horizontal_spacing=0.07)
    styles = {"train": dict(color="#1f77b4"), "validation": dict(color="#ff7f0e", dash="dash")}
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for kind, key in (("train", metric), ("validation", f"val_{metric}")):
            xs, ys = _series(history, key)
            if xs:
                fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=kind, legendgroup=kind, showlegend=col == 1,
                                line=styles[kind], row=1, col=col,
                                hovertemplate=f"epoch %{{x}}: {kind} {metric} %{{y:.4f}}<extra></extra>")
    xs, ys = _series(history, "lr")
    if xs:
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name="learning rate", showlegend=False,
                        line=dict(color="#2ca02c"), row=1, col=3,
                        hovertemplate="epoch %{x}: lr %{y:.2e}<extra></extra>")
        fig.update_yaxes(type="log", exponentformat="e", row=1, col=3)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    if total_epochs:
        for col in (1, 2, 3):
            fig.update_xaxes(range=[0.5, total_epochs + 0.5], row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=max(1, (total_epochs or len(history) or 1) // 10))
    fig.update_layout(title=title, margin=_MARGIN, height=340, legend=dict(orientation="h", y=-0.25))
    return fig


def probability_figure(probabilities: Sequence[float], labels: Sequence[str], title: str | None = None, height: int = 230) -> go.Figure:
    """Horizontal bars of class probabilities, largest at the top, in emotion colours."""
    probs = np.asarray(probabilities, dtype=np.float64)
    order = list(np.argsort(probs))  # ascending: plotly draws the first bar at the bottom
    names = [labels[i] for i in order]
    fig = go.Figure(go.Bar(
        x=probs[order] * 100, y=names, orientation="h",
        marker_color=[emotion_hex(n) for n in names],
        text=[f"{p * 100:.1f}%" for p in probs[order]], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.1f}%<extra></extra>",
    ))
    fig.update_layout(title=title, xaxis=dict(range=[0, 115], showticklabels=False, title=None),
                      margin=dict(l=10, r=10, t=30 if title else 5, b=5), height=height, showlegend=False)
    return fig


def emotion_timeline_figure(times: Sequence[float], probabilities: np.ndarray, labels: Sequence[str],
                            title: str | None = None, height: int = 320) -> go.Figure:
    """One face over a video: its 7 probabilities as a stacked area over time (s), and a band on top
    with the dominant label of each stretch. Clicking a point selects its time (st.plotly_chart on_select)."""
    times = np.asarray(times, dtype=float)
    probs = np.asarray(probabilities, dtype=float).reshape(len(times), len(labels))
    top = [labels[int(i)] for i in probs.argmax(axis=1)] if len(times) else []
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.12, 0.88], vertical_spacing=0.03)
    start = 0
    for i in range(1, len(top) + 1):  # the band: one bar per stretch of one dominant label
        if i == len(top) or top[i] != top[start]:
            end = times[i] if i < len(times) else times[-1]
            fig.add_trace(go.Bar(x=[max(end - times[start], 1e-3)], y=["dominant"], base=[times[start]], orientation="h",
                                 marker_color=emotion_hex(top[start]), showlegend=False, name=top[start],
                                 hovertemplate=f"{top[start]}: %{{base:.1f}}-{end:.1f} s<extra></extra>"), row=1, col=1)
            start = i
    for j, name in enumerate(labels):
        # Invisible markers: Plotly selects a point on click only where a trace has markers (measured in
        # Chromium: lines alone give no selection), and the page shows the frame at a clicked time.
        fig.add_trace(go.Scatter(x=times, y=probs[:, j], name=name, mode="lines+markers", stackgroup="p", line_width=0.5,
                                 marker=dict(size=7, opacity=0),
                                 line_color=emotion_hex(name), hovertemplate=f"{name} %{{y:.0%}} at %{{x:.2f}} s<extra></extra>"),
                      row=2, col=1)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title_text="probability", row=2, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      barmode="overlay", legend=dict(orientation="h", y=-0.25), hovermode="x unified")
    return fig
