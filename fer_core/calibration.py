"""How far to trust a model's confidence: expected calibration error, reliability bins, temperature.

A model is calibrated when, of the faces it labels with 80% confidence, about 80% are right.
`expected_calibration_error` measures the gap (15 equal-width confidence bins, weighted by how
many faces fall in each); `reliability_bins` gives the bins for a reliability diagram.
Temperature scaling (Guo et al., 2017) divides the model's logits by one number T fitted on the
validation split (never on the test split): T > 1 softens over-confident answers, T < 1 sharpens
timid ones (a label-smoothed model's floor of ~1% per class); the top class, hence accuracy, never
changes. Softmax models give probabilities, not logits: log-probabilities differ from the logits
by a constant per face, which softmax ignores, so `apply_temperature` works on either.

A foundation module (numpy and scipy only). The temperature is stored in the run's meta.json (`calibration`, written by `python -m fer_core
calibrate RUN`) and applied by the one engine (fer_core.store.prediction.ModelRunner), so
Evaluate, Predict, the webcam and videos all show calibrated probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_BINS = 15
#: Temperatures are searched in this range (log-uniform); a model needing more is broken, not miscalibrated.
T_RANGE = (0.05, 20.0)


def _checked(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y, dtype=np.int64).reshape(-1)
    if p.ndim != 2 or len(p) != len(t):
        raise ValueError(f"probabilities (N, K) and N labels are needed; got {p.shape} and {t.shape}")
    return p, t


def reliability_bins(probs: np.ndarray, y: np.ndarray, bins: int = DEFAULT_BINS) -> list[dict[str, Any]]:
    """Per confidence bin [lo, hi): count, mean confidence and accuracy of the top class (None when empty)."""
    p, t = _checked(probs, y)
    conf = p.max(axis=1) if len(p) else np.zeros(0)
    right = (p.argmax(axis=1) == t) if len(p) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=False), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": n,
                    "confidence": float(conf[mask].mean()) if n else None,
                    "accuracy": float(right[mask].mean()) if n else None})
    return out


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = DEFAULT_BINS) -> float:
    """Sum over bins of |accuracy - confidence| weighted by the bin's share of the faces (0 = calibrated)."""
    table = reliability_bins(probs, y, bins)
    n = sum(b["count"] for b in table)
    if n == 0:
        return float("nan")
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in table if b["count"]))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T), row by row (float32 in, float32 out); T = 1 returns the input."""
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a positive number; got {temperature!r}")
    p = np.asarray(probs)
    if t == 1.0 or p.size == 0:
        return p
    z = np.log(np.clip(p.astype(np.float64), 1e-12, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probs: np.ndarray, y: np.ndarray) -> float:
    p, t = _checked(probs, y)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(t)), t], 1e-12, 1.0))))


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The T minimising the negative log-likelihood of `y` under apply_temperature(probs, T)."""
    from scipy.optimize import minimize_scalar

    p, t = _checked(probs, y)
    if len(t) < 20:
        raise ValueError(f"fitting a temperature needs at least 20 labelled faces; got {len(t)}")
    logp = np.log(np.clip(p, 1e-12, 1.0))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(lse - z[np.arange(len(t)), t]))

    res = minimize_scalar(nll, bounds=tuple(np.log(T_RANGE)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def calibration_report(probs: np.ndarray, y: np.ndarray, temperature: float) -> dict[str, Any]:
    """ECE and NLL before and after `temperature` on the same faces (JSON-ready)."""
    after = apply_temperature(probs, temperature)
    return {
        "temperature": round(float(temperature), 4),
        "n": int(len(np.asarray(y).reshape(-1))),
        "ece_before": round(expected_calibration_error(probs, y), 4),
        "ece_after": round(expected_calibration_error(after, y), 4),
        "nll_before": round(negative_log_likelihood(probs, y), 4),
        "nll_after": round(negative_log_likelihood(after, y), 4),
    }
