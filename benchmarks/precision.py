"""Training and prediction throughput in float32 and bf16 (mixed bfloat16), per architecture.

    .venv/bin/python benchmarks/precision.py [--images N] [--epochs N] [--batch N] [--arch NAME ...]

Same process, same data, same seed: each architecture is trained through the project's pipeline
(`fer_core.training.pipeline.make_dataset`, augmentation on) under each precision
(`fer_core.training.precision.precision_scope`), timed over whole epochs after a warm-up epoch;
prediction is timed with a compiled call on the saved (float32) model and on the bf16 model itself.
Prints images/s and the bf16 / float32 ratio. The data are FER-2013 faces when the shared zip is
there (the demo set otherwise): throughput does not depend on the pixels, but this keeps it real.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def _faces(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    from fer_core.data import load_dataset
    from fer_core.paths import shared_fer2013_zip

    source = str(shared_fer2013_zip()) if shared_fer2013_zip() else "demo"
    train = load_dataset(source).splits["train"]
    idx = np.random.default_rng(0).choice(len(train.labels), size=min(n, len(train.labels)), replace=False)
    return train.images[idx], train.labels[idx], source


def bench(arch: str, precision: str, x: np.ndarray, y: np.ndarray, batch: int, epochs: int) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from fer_core.store.model_files import inference_copy
    from fer_core.training.architectures import build_model
    from fer_core.training.pipeline import make_dataset
    from fer_core.training.precision import precision_scope

    keras.utils.set_random_seed(0)
    with precision_scope(precision):
        model = build_model(arch)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    data = make_dataset(x, y, batch, training=True, augment=True, seed=0)
    model.fit(data, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing and graph building
    t0 = time.perf_counter()
    history = model.fit(data, epochs=epochs, verbose=0, shuffle=False)
    train_ips = len(x) * epochs / (time.perf_counter() - t0)

    faces = (x[:256].astype("float32") / 255.0)[..., None]
    out: dict[str, Any] = {"train": train_ips, "loss": float(history.history["loss"][-1])}
    for name, m in (("predict", model), ("predict_saved", inference_copy(model))):
        fn = tf.function(lambda t, m=m: m(t, training=False), reduce_retracing=True)
        fn(faces)  # trace
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            fn(faces).numpy()
        out[name] = len(faces) * reps / (time.perf_counter() - t0)
    out["saved_dtype"] = str(inference_copy(model).layers[-1].compute_dtype)
    return out


def main() -> None:
    from fer_core.training.architectures import ARCHITECTURES
    from fer_core.training.precision import bf16_supported

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1536, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--arch", nargs="*", default=list(ARCHITECTURES))
    args = ap.parse_args()

    x, y, source = _faces(args.images)
    import tensorflow as tf

    print(f"Throughput (images/s): {len(x)} faces of {source}, {args.epochs} timed epochs, batch {args.batch}, "
          f"TF {tf.__version__}, {os.cpu_count()} CPUs, native bf16: {'yes' if bf16_supported() else 'no'}")
    print(f"{'architecture':<15} {'train f32':>10} {'train bf16':>11} {'ratio':>6} "
          f"{'predict f32':>12} {'predict bf16':>13} {'ratio':>6}  saved model")
    for arch in args.arch:
        f32 = bench(arch, "float32", x, y, args.batch, args.epochs)
        b16 = bench(arch, "bf16", x, y, args.batch, args.epochs)
        print(f"{arch:<15} {f32['train']:>10.0f} {b16['train']:>11.0f} {b16['train'] / f32['train']:>5.2f}x "
              f"{f32['predict']:>12.0f} {b16['predict']:>13.0f} {b16['predict'] / f32['predict']:>5.2f}x  "
              f"{b16['saved_dtype']}", flush=True)


if __name__ == "__main__":
    main()
