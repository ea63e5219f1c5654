"""Train the strong recipes on a GPU machine that has JAX but no TensorFlow (a maintainer's tool).

    # here: the train split of the zip, decoded by fer_core, packed small enough to travel
    .venv/bin/python docs/train_on_gpu.py pack ../shared/data/fer2013.zip .devdata
    # there (KERAS_BACKEND=jax): a timing probe, then every recipe at once until the time budget
    python3 docs/train_on_gpu.py run .devdata docs/gpu_recipes.json STORE --budget 500
    # an ensemble distilled into one model: the members, then the student taught by them
    python3 docs/train_on_gpu.py run .devdata docs/gpu_recipes/ensemble.json STORE --budget 420
    python3 docs/train_on_gpu.py run .devdata docs/gpu_recipes/student.json STORE --budget 300

A recipe with "teachers" (run names) is distilled from runs of earlier rounds in STORE: they are
copied into its store folder first (fer_core.training.distill computes their soft labels there).
`run` trains each recipe of the JSON list (TrainConfig fields, without "epochs") with the project's
engine (fer_core.training.loop.train, the one behind `python -m fer_core train`) into STORE, all
recipes at once on the one GPU, each in its own process and store folder. A 3-epoch probe of every
recipe (run together, as the real runs will be) measures seconds per epoch; each recipe then gets the
number of epochs its cosine schedule can finish within the budget. bf16 is checked first: where a
compiled bf16 prediction is not finite (XLA's CPU backend, for one), the runs use float32.
The runs record the zip's own name and fingerprint, so that `python -m fer_core evaluate` on the zip
here recognises the dataset they were trained on. Evaluate (PublicTest, TTA) and ship here, with
TensorFlow: `python -m fer_core evaluate RUN --data ../shared/data/fer2013.zip --tta`.
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Several runs share the GPU: JAX must not take most of its memory up front, and a later process
# reuses what an earlier one compiled.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "/tmp/fer-jax-cache")

PROBE_EPOCHS = 3
SAVE_MARGIN_S = 20.0  # after the last epoch: final meta, model copy, packing the results
SLACK = 1.08  # epochs run a little slower than the probe's (checkpoints of better models, contention)


def pack(source: str, out: Path) -> None:
    """The train split of `source`, decoded by fer_core, as out/train.npy.xz + out/dataset.json."""
    from fer_core.data import load_dataset

    ds = load_dataset(source)
    train = ds.split("train")
    out.mkdir(parents=True, exist_ok=True)
    with lzma.open(out / "train.npz.xz", "wb", preset=6) as fh:
        np.savez(fh, images=train.images, labels=train.labels, sources=train.sources)
    info = {"name": ds.name, "fingerprint": ds.fingerprint, "source": ds.report.source,
            "format": ds.report.format, "synthetic": ds.synthetic, "train_images": len(train)}
    (out / "dataset.json").write_text(json.dumps(info, indent=1))
    print(f"packed {len(train)} train images of {ds.name} ({(out / 'train.npz.xz').stat().st_size / 1e6:.1f} MB)")


def load_packed(folder: Path) -> Any:
    """The packed train split as a fer_core Dataset carrying the original file's identity."""
    from fer_core.data import Dataset, LoadReport, Split

    info = json.loads((folder / "dataset.json").read_text())
    with lzma.open(folder / "train.npz.xz", "rb") as fh:
        arrays = np.load(fh, allow_pickle=False)
        split = Split(arrays["images"], arrays["labels"], arrays["sources"])
    report = LoadReport(source=info["source"], format=info["format"])
    return Dataset(name=info["name"], splits={"train": split}, fingerprint=info["fingerprint"],
                   synthetic=bool(info.get("synthetic")), report=report)


def bf16_works() -> bool:
    """Whether a compiled bf16 prediction of vgg_fer is finite on this backend and device."""
    import keras

    from fer_core.training.architectures import build_model
    from fer_core.training.precision import precision_scope

    with precision_scope("bf16"):
        model = build_model("vgg_fer", seed=0)
        x = np.random.default_rng(0).random((16, 48, 48, 1), dtype=np.float32)
        ok = bool(np.isfinite(model.predict(x, verbose=0)).all())
    keras.backend.clear_session()
    return ok


def train_one(folder: Path, recipe: dict[str, Any], store_dir: Path, epochs: int, deadline: float) -> None:
    """One run of `recipe` for `epochs` epochs; asks the run to stop at `deadline` (a wall-clock time)."""
    import keras

    from fer_core.store.runs import ModelStore
    from fer_core.training.config import TrainConfig
    from fer_core.training.loop import train

    store = ModelStore(store_dir)
    config = TrainConfig(**{**recipe, "epochs": epochs})
    state: dict[str, str] = {}

    class Deadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if time.time() > deadline and "run" in state and not store.stop_requested(state["run"]):
                store.request_stop(state["run"])  # the engine's own stop: the run ends "stopped"

    run_id = train(load_packed(folder), config, store, callbacks=[Deadline()],
                   on_start=lambda rid: state.update(run=rid),
                   checkpoint_every_s=60.0)  # a resume checkpoint a minute, not one per 1-2 s epoch
    print(json.dumps({"run": run_id, "store": str(store_dir)}), flush=True)


def bring_teachers(recipe: dict[str, Any], root: Path, store: Path) -> None:
    """Copy the runs `recipe` names as teachers (by name or run id) from earlier rounds' store folders under
    `root`, or from the shipped models (models/), into `store`."""
    import shutil

    wanted = set(recipe.get("teachers") or [])
    found: dict[str, Path] = {}
    for meta in [*sorted((ROOT / "models").glob("*/meta.json")), *sorted(root.glob("**/meta.json"))]:
        name = json.loads(meta.read_text()).get("name")
        for key in {name, meta.parent.name} & wanted:
            if root / "probe" not in meta.parents and store not in meta.parents:
                found[key] = meta.parent  # the latest round's run of that name wins
    missing = wanted - set(found)
    if missing:
        raise SystemExit(f"teachers not found under {root}: {', '.join(sorted(missing))}")
    for folder in found.values():
        if not (store / folder.name).exists():
            shutil.copytree(folder, store / folder.name, ignore=shutil.ignore_patterns("last*", "*.npz"))


def _launch(args: argparse.Namespace, recipes: list[dict[str, Any]], stores: list[Path], epochs: list[int],
            deadline: float) -> None:
    env = dict(os.environ)
    procs = []
    for recipe, store, n in zip(recipes, stores, epochs):
        if recipe.get("teachers"):
            store.mkdir(parents=True, exist_ok=True)
            bring_teachers(recipe, args.store, store)
        cmd = [sys.executable, __file__, "one", str(args.data), json.dumps(recipe), str(store),
               "--epochs", str(n), "--deadline", str(deadline)]
        procs.append(subprocess.Popen(cmd, env=env))
    for p in procs:
        p.wait()


def _epoch_seconds(store: Path) -> float:
    """Steady seconds per epoch (the slowest after the first) of the one run in `store`."""
    from fer_core.store.runs import ModelStore

    runs = ModelStore(store)
    secs = [e["seconds"] for run in runs.list_runs() for e in runs.history(run.run_id)]
    if len(secs) < 2:
        raise SystemExit(f"the probe in {store} ran {len(secs)} epochs: see its events.jsonl")
    return max(secs[1:])


def run(args: argparse.Namespace) -> None:
    started = time.time()
    end = started + args.budget
    recipes = json.loads(Path(args.recipes).read_text())
    precision = args.precision or ("bf16" if bf16_works() else "float32")
    print(f"precision: {precision}", flush=True)
    recipes = [{**r, "precision": precision} for r in recipes]
    # one store folder per recipe and round (a later round's student finds its teachers in earlier ones)
    stores = [args.store / f"{Path(args.recipes).stem}-r{i}" for i in range(len(recipes))]
    if args.epochs:  # measured before: no probe
        _launch(args, recipes, stores, [args.epochs] * len(recipes), end - SAVE_MARGIN_S)
        print(f"done in {time.time() - started:.0f} s", flush=True)
        return
    probe = [args.store / "probe" / s.name for s in stores]
    probe_started = time.time()
    _launch(args, [{**r, "early_stopping_patience": 0, "warmup_epochs": 0} for r in recipes], probe,
            [PROBE_EPOCHS] * len(recipes), end)
    probe_wall = time.time() - probe_started
    steady = [_epoch_seconds(p) for p in probe]
    fixed = [probe_wall - PROBE_EPOCHS * s for s in steady]  # start-up, data, compiling, final saves
    left = end - time.time() - SAVE_MARGIN_S
    epochs = [max(int(r.get("warmup_epochs", 0)) + 2, min(args.max_epochs, math.floor((left - f) / (s * SLACK))))
              for r, s, f in zip(recipes, steady, fixed)]
    for r, s, f, n in zip(recipes, steady, fixed, epochs):
        print(f"{r.get('name')}: {s:.2f} s/epoch (+{f:.0f} s fixed), {n} epochs", flush=True)
    _launch(args, recipes, stores, epochs, end - SAVE_MARGIN_S)
    print(f"done in {time.time() - started:.0f} s", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack", help="pack the train split of a dataset to travel")
    a.add_argument("source")
    a.add_argument("out", type=Path)
    b = sub.add_parser("run", help="probe, then train every recipe within the budget")
    b.add_argument("data", type=Path)
    b.add_argument("recipes", type=Path)
    b.add_argument("store", type=Path)
    b.add_argument("--budget", type=float, required=True, help="seconds, start to the last run's end")
    b.add_argument("--max-epochs", type=int, default=300)
    b.add_argument("--epochs", type=int, help="epochs of every recipe, skipping the probe (timings known)")
    b.add_argument("--precision", choices=("float32", "bf16"), help="skip the bf16 check")
    c = sub.add_parser("one", help="(internal) one run of one recipe")
    c.add_argument("data", type=Path)
    c.add_argument("recipe")
    c.add_argument("store", type=Path)
    c.add_argument("--epochs", type=int, required=True)
    c.add_argument("--deadline", type=float, required=True)
    args = p.parse_args()
    if args.command == "pack":
        pack(args.source, args.out)
    elif args.command == "run":
        run(args)
    else:
        train_one(args.data, json.loads(args.recipe), args.store, args.epochs, args.deadline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
