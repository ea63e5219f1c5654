"""Dataset load times and training throughput, printed as plain tables.

    .venv/bin/python benchmarks/data_and_training.py [--zip PATH] [--images N] [--steps N]

0. Parsing a FER-2013-style CSV (--csv-rows random rows, no cache) and building the demo set.
1. First load (decode) and cached load of the shared FER-2013 zip (or any source given).
2. Training images/second of each architecture, fed two ways in the same run:
   NumPy arrays straight into `model.fit` (Keras builds its own tf.data, autotune on)
   versus the project's pipeline (`fer_core.training.pipeline.make_dataset`, autotune off, with
   augmentation). Each is timed over whole epochs after a warm-up epoch, so the
   iterator tear-down (where the autotune stall in NOTES.md shows up) is included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def bench_load(source: str) -> tuple[float, float, Any]:
    from fer_core.data import load_dataset

    with tempfile.TemporaryDirectory() as cache:
        os.environ["FER_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        ds = load_dataset(source)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds2 = load_dataset(source)
        cached = time.perf_counter() - t0
        assert ds2.num_images == ds.num_images
    return first, cached, ds2


def bench_csv_and_demo(rows: int) -> tuple[float, float]:
    """Seconds to parse a FER-2013-style CSV of `rows` random faces (no cache), and to build the demo set."""
    from fer_core.data import load_dataset

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FER_CACHE_DIR"] = str(Path(tmp) / "cache")
        path = Path(tmp) / "speed.csv"
        pix = rng.integers(0, 256, (rows, 2304))
        path.write_text("emotion,pixels,Usage\n" + "".join(
            f"{i % 7},{' '.join(map(str, r))},Training\n" for i, r in enumerate(pix)))
        t0 = time.perf_counter()
        load_dataset(path, use_cache=False)
        csv_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_dataset("demo", use_cache=False)
        return csv_s, time.perf_counter() - t0


def bench_training(arch: str, x: np.ndarray, y: np.ndarray, batch: int, epochs: int) -> dict[str, float]:
    import keras

    from fer_core.training.architectures import build_model
    from fer_core.training.pipeline import make_dataset

    results: dict[str, float] = {}
    onehot = keras.utils.to_categorical(y, 7)
    for feed in ("numpy", "pipeline"):
        keras.utils.set_random_seed(0)
        model = build_model(arch)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        if feed == "numpy":
            xs = (x.astype("float32") / 255.0)[..., None]

            def fit(n: int) -> None:
                model.fit(xs, onehot, batch_size=batch, epochs=n, verbose=0, shuffle=True)
        else:
            data = make_dataset(x, y, batch, training=True, augment=True, seed=0)

            def fit(n: int) -> None:
                model.fit(data, epochs=n, verbose=0)
        fit(1)  # warm-up: tracing and graph building
        t0 = time.perf_counter()
        fit(epochs)
        results[feed] = len(x) * epochs / (time.perf_counter() - t0)
    return results


def main() -> None:
    from fer_core.paths import shared_fer2013_zip

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", help="dataset to time loading (default: ../shared/data/fer2013.zip, else demo)")
    ap.add_argument("--images", type=int, default=2048, help="training images per epoch for the throughput test")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per feed (after one warm-up epoch)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--arch", nargs="*", default=["mini_xception", "seed_cnn", "vgg_fer"])
    ap.add_argument("--csv-rows", type=int, default=3000, help="rows of the CSV whose parsing is timed")
    args = ap.parse_args()

    csv_s, demo_s = bench_csv_and_demo(args.csv_rows)
    print(f"\nCSV parse: {args.csv_rows:,} rows in {csv_s:.2f} s ({args.csv_rows / csv_s:,.0f} rows/s; "
          f"FER-2013's 35,887 rows: ~{35887 / args.csv_rows * csv_s:.1f} s)   demo set built in {demo_s:.2f} s")

    source = args.source or (str(shared_fer2013_zip()) if shared_fer2013_zip() else "demo")
    first, cached, ds = bench_load(source)
    n = ds.num_images
    print(f"\nDataset load: {source}")
    print(f"{'images':>8} {'first load s':>13} {'cached load s':>14}")
    print(f"{n:>8} {first:>13.2f} {cached:>14.3f}")

    train = ds.splits["train"]
    rng = np.random.default_rng(0)
    idx = rng.choice(len(train.labels), size=min(args.images, len(train.labels)), replace=False)
    x, y = train.images[idx], train.labels[idx]

    import tensorflow as tf

    print(f"\nTraining throughput (images/s), {len(x)} images x {args.epochs} epochs, batch {args.batch}, "
          f"TF {tf.__version__}, {os.cpu_count()} CPUs")
    print(f"{'architecture':<15} {'params':>10} {'numpy fit':>10} {'pipeline':>10}")
    from fer_core.training.architectures import build_model

    for arch in args.arch:
        params = build_model(arch).count_params()
        r = bench_training(arch, x, y, args.batch, args.epochs)
        print(f"{arch:<15} {params:>10,} {r['numpy']:>10.0f} {r['pipeline']:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
