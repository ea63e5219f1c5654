"""Export a run's model for use elsewhere, and check the exported file against the original.

Formats:
    keras           the Keras 3 archive (.keras), as stored
    h5              legacy HDF5 (.h5) for older notebooks and tools
    tflite-float16  TensorFlow Lite with float16 weights (.tflite, about half the size)
    tflite-dynamic  TensorFlow Lite with dynamic-range int8 weights (.tflite, about a quarter)

A model file does not say which label order or pixel scaling it expects; every export comes
with a sidecar JSON (`conventions`) holding the run's labels, input_shape and preprocessing.
`verify_export` runs the exported file (Keras, or the LiteRT interpreter for .tflite) on a
labelled split and reports its accuracy next to the original's and how often they agree: on all
images, and on the images where the original is clear about its answer (its top class leads the
runner-up by more than CLEAR_MARGIN in probability). Quantisation moves probabilities by a few
hundredths, so it may flip a near-tie but not a clear answer: a clear-case agreement under 100%
points at a broken export, whatever the model, while the overall figure also counts near-ties.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_core.errors import ModelFileError
from fer_core.labels import FER_LABELS
from fer_core.preprocess import DEFAULT_PREPROCESSING
from fer_core.store.atomic import atomic_write_bytes, atomic_write_json, now_iso
from fer_core.store.runs import ModelStore

EXPORT_FORMATS: dict[str, dict[str, str]] = {
    "keras": {"suffix": ".keras", "title": "Keras 3 (.keras)", "mime": "application/octet-stream"},
    "h5": {"suffix": ".h5", "title": "legacy Keras HDF5 (.h5)", "mime": "application/x-hdf5"},
    "tflite-float16": {"suffix": ".tflite", "title": "TFLite, float16 weights", "mime": "application/octet-stream"},
    "tflite-dynamic": {"suffix": ".tflite", "title": "TFLite, dynamic-range int8 weights",
                       "mime": "application/octet-stream"},
}
TFLITE_MAX_DIFF_POINTS = 0.5  # the accepted accuracy change of a TFLite export, in points
CLEAR_MARGIN = 0.1  # the original's top-2 probability lead above which an export must give the same class


def _check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise ModelFileError(f"Unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}.")


def export_filename(run_id: str, fmt: str) -> str:
    _check_format(fmt)
    tag = "" if fmt in ("keras", "h5") else "-" + fmt.split("-", 1)[1]
    return f"{run_id}{tag}{EXPORT_FORMATS[fmt]['suffix']}"


def conventions(store: ModelStore, run_id: str, fmt: str | None = None) -> dict[str, Any]:
    """What a user of the exported file must know: labels (output order), input shape, scaling."""
    meta = store.read_meta(run_id)
    out = {
        "labels": list(meta.get("labels") or FER_LABELS),
        "input_shape": list(meta.get("input_shape") or [48, 48, 1]),
        "preprocessing": {**DEFAULT_PREPROCESSING, **(meta.get("preprocessing") or {})},
        "outputs": "softmax probabilities, one per label, in the order of 'labels'",
        "run_id": run_id,
        "name": meta.get("name") or run_id,
        "architecture": meta.get("architecture"),
        "exported_at": now_iso(),
    }
    if fmt:
        out["format"] = fmt
    return out


def _tflite_bytes(model: Any, quantization: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        # Keras prints the whole temporary SavedModel signature to stdout while converting.
        with contextlib.redirect_stdout(io.StringIO()):
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - converter errors are long C++ traces
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"TFLite conversion failed: {first}") from None


def export_bytes(store: ModelStore, run_id: str, fmt: str) -> bytes:
    """The exported model file's content."""
    _check_format(fmt)
    model = store.load_model(run_id)  # compile=False: no optimizer state goes into the export
    if fmt in ("keras", "h5"):
        import keras

        with tempfile.TemporaryDirectory(prefix="fer-export-") as tmp:
            out = Path(tmp) / f"model{EXPORT_FORMATS[fmt]['suffix']}"
            keras.saving.save_model(model, out)
            return out.read_bytes()
    return _tflite_bytes(model, fmt.split("-", 1)[1])


def export_run(store: ModelStore, run_id: str, fmt: str, out_dir: Path | str) -> tuple[Path, Path]:
    """Write the exported model and its conventions JSON into `out_dir`: (model path, json path)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = export_bytes(store, run_id, fmt)
    target = out_dir / export_filename(run_id, fmt)
    atomic_write_bytes(target, data)
    sidecar = target.with_name(target.name + ".json")
    atomic_write_json(sidecar, conventions(store, run_id, fmt))
    return target, sidecar


# --------------------------------------------------------------------------- running exported files


class TFLiteRunner:
    """Batched inference with a .tflite model (LiteRT interpreter; tf.lite's as a fallback)."""

    def __init__(self, content: bytes, num_threads: int = 2) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - ai-edge-litert is in requirements.txt
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter  # noqa: N806
        try:
            self._it = Interpreter(model_content=content, num_threads=num_threads)
            self._in = self._it.get_input_details()[0]
            self._out = self._it.get_output_details()[0]
        except Exception as exc:  # noqa: BLE001 - anything the interpreter makes of bad bytes
            raise ModelFileError(f"Not a usable TFLite model: {str(exc)[:200] or type(exc).__name__}") from None
        self._batch = -1

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self._in["shape_signature"][1:])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if len(x) != self._batch:
            self._it.resize_tensor_input(self._in["index"], list(x.shape), strict=False)
            self._it.allocate_tensors()
            self._batch = len(x)
        self._it.set_tensor(self._in["index"], x)
        self._it.invoke()
        return np.array(self._it.get_tensor(self._out["index"]))


def _exported_predict_fn(data: bytes, fmt: str, input_shape: Sequence[int]) -> Callable[[np.ndarray], np.ndarray]:
    if fmt.startswith("tflite"):
        return TFLiteRunner(data)
    from fer_core.store.model_files import load_model_file
    from fer_core.store.prediction import make_predict_fn

    with tempfile.TemporaryDirectory(prefix="fer-verify-") as tmp:
        path = Path(tmp) / f"model{EXPORT_FORMATS[fmt]['suffix']}"
        path.write_bytes(data)
        model = load_model_file(path)
    return make_predict_fn(model, input_shape)


@dataclass
class ExportCheck:
    format: str
    split: str
    n: int
    size_bytes: int
    original_size_bytes: int
    original_accuracy: float
    exported_accuracy: float
    agreement: float  # share of images where both give the same class
    max_probability_difference: float
    seconds: float
    clear_agreement: float = 1.0  # the same share among the n_clear images the original is clear about
    n_clear: int = 0  # images whose top class leads the runner-up by more than CLEAR_MARGIN in the original
    gained: int = 0  # images the export gets right and the original wrong
    lost: int = 0  # images the original gets right and the export wrong

    @property
    def difference_points(self) -> float:
        return 100.0 * (self.exported_accuracy - self.original_accuracy)

    @property
    def problem(self) -> str | None:
        """Why the export does not score like the original, or None.

        Its accuracy moved by TFLITE_MAX_DIFF_POINTS or more, and by more faces than chance flips of
        near-ties explain (McNemar: |gained - lost| > 2 sqrt(gained + lost)). On a small set (the 560 demo
        faces: 0.5 points is 3 faces) a few flips of near-ties either way are noise, not a broken export.
        """
        if abs(self.difference_points) < TFLITE_MAX_DIFF_POINTS:
            return None
        if abs(self.gained - self.lost) <= 2.0 * (self.gained + self.lost) ** 0.5:
            return None
        return (f"{self.format} moved accuracy by {self.difference_points:+.2f} points "
                f"({self.gained} images gained, {self.lost} lost; allowed: under {TFLITE_MAX_DIFF_POINTS} points "
                "or within chance)")

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "difference_points": self.difference_points, "problem": self.problem}


def top2_margin(probs: np.ndarray) -> np.ndarray:
    """Per row: the top probability minus the runner-up's (0 for a tie, near 1 for a sure answer)."""
    top2 = np.sort(np.asarray(probs), axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def clear_agreement(original: np.ndarray, exported: np.ndarray, margin: float = CLEAR_MARGIN) -> tuple[float, int]:
    """(share of same classes, count) over the rows where `original`'s top class leads by more than `margin`.

    1.0 with a count of 0 when the original is clear about no row.
    """
    clear = top2_margin(original) > margin
    n = int(clear.sum())
    if n == 0:
        return 1.0, 0
    same = np.asarray(original).argmax(axis=1) == np.asarray(exported).argmax(axis=1)
    return float(same[clear].mean()), n


def verify_export(
    store: ModelStore,
    run_id: str,
    fmt: str,
    data: bytes,
    dataset: Any,
    split: str = "test",
    *,
    max_images: int | None = None,
    batch_size: int = 256,
) -> ExportCheck:
    """Accuracy of the exported file vs the run's model on a labelled split, and their agreement."""
    from fer_core.store.prediction import ModelRunner, make_predict_fn

    _check_format(fmt)
    splits = getattr(dataset, "splits", {})
    if split not in splits:
        raise ModelFileError(f"The dataset has no {split!r} split to check the export on.")
    meta = store.read_meta(run_id)
    labels = meta.get("labels") or FER_LABELS
    model = store.load_model(run_id)
    input_shape = meta.get("input_shape") or list(model.inputs[0].shape[1:])
    prep = meta.get("preprocessing")
    images, y = splits[split].images, np.asarray(splits[split].labels)
    if max_images is not None and len(y) > max_images:
        idx = np.linspace(0, len(y) - 1, max_images).round().astype(int)
        images, y = images[idx], y[idx]
    if len(y) == 0:
        raise ModelFileError(f"The {split} split is empty: nothing to check the export on.")
    t0 = time.perf_counter()
    po, pe = (
        ModelRunner(fn, labels, input_shape, prep).probabilities(images, batch_size=batch_size)
        for fn in (make_predict_fn(model, input_shape), _exported_predict_fn(data, fmt, input_shape))
    )
    a, b = po.argmax(axis=1), pe.argmax(axis=1)
    clear, n_clear = clear_agreement(po, pe)
    return ExportCheck(
        format=fmt,
        split=split,
        n=int(len(y)),
        size_bytes=len(data),
        original_size_bytes=int(store.model_path(run_id).stat().st_size),
        original_accuracy=float((a == y).mean()),
        exported_accuracy=float((b == y).mean()),
        agreement=float((a == b).mean()),
        max_probability_difference=float(np.abs(po - pe).max()),
        seconds=time.perf_counter() - t0,
        clear_agreement=clear,
        n_clear=n_clear,
        gained=int(((b == y) & (a != y)).sum()),
        lost=int(((a == y) & (b != y)).sum()),
    )


def check_summary(check: ExportCheck) -> str:
    """One line for the UI/CLI: accuracy of both, the difference and agreement."""
    line = (f"{EXPORT_FORMATS[check.format]['title']}: {check.exported_accuracy:.2%} on {check.n:,} {check.split} "
            f"images vs {check.original_accuracy:.2%} for the original ({check.difference_points:+.2f} points); "
            f"same class for {check.agreement:.2%} of images and {clear_cases(check)}; "
            f"{check.size_bytes / 1e6:.2f} MB (original {check.original_size_bytes / 1e6:.2f} MB)")
    return line


def clear_cases(check: ExportCheck) -> str:
    """'100.00% of the 544 clear cases': the agreement where the original's top class leads by > CLEAR_MARGIN."""
    if check.n_clear == 0:
        return f"no clear case (the original's top class never leads by more than {CLEAR_MARGIN:.2f})"
    return f"{check.clear_agreement:.2%} of the {check.n_clear:,} clear cases"


def dumps_conventions(store: ModelStore, run_id: str, fmt: str) -> bytes:
    return json.dumps(conventions(store, run_id, fmt), indent=2).encode("utf-8")
