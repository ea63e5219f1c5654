"""Where the app's face crop falls against FER-2013's own crop, and what it costs the model.

    .venv/bin/python benchmarks/box_offset.py [--data ../shared/data/fer2013.zip] [--fit 2000] [--report N]

FER-2013's faces are crops someone else made: to know how the app's crops (the detector's box,
squared, DEFAULT_MARGIN added: fer_core.inference.crops) differ from them, each face is upscaled 4x
(48 -> 192 px) and set in the middle of a 576 px canvas filled with its mean grey, and the app's
detector looks for it there. The box found, in units of the FER crop's side: its centre offset
(right and down positive) and the side of the crop the app would take. The offset is measured on
`--fit` faces of the train split (the split models learn from; nothing is tuned on PublicTest);
PublicTest then gives the default model's accuracy on the detected faces three ways: the FER crop
itself (the ceiling), the app's crop at DEFAULT_MARGIN, and the crop at the margin that matches
FER-2013's framing measured on train.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.robustness import scores  # noqa: E402
from fer_core.paths import shared_fer2013_zip  # noqa: E402

UPSCALE = 4
PAD = 192  # pixels of grey around the upscaled face on every side


def canvas(face: np.ndarray) -> np.ndarray:
    """A 48x48 grey face upscaled UPSCALE times in the middle of a grey BGR canvas."""
    big = cv2.resize(face, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    fill = int(face.mean())
    out = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_CONSTANT, value=fill)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)


def detect(detector, faces: np.ndarray) -> list[object | None]:
    """The box nearest the canvas centre for each face (None where the detector found nothing near it)."""
    side = 48 * UPSCALE
    centre = PAD + side / 2.0
    found = []
    for face in faces:
        boxes = detector.detect(canvas(face))
        best = min(boxes, key=lambda b: np.hypot(b.center[0] - centre, b.center[1] - centre), default=None)
        near = best is not None and np.hypot(best.center[0] - centre, best.center[1] - centre) < side / 2
        found.append(best if near else None)
    return found


def geometry(boxes: list) -> np.ndarray:
    """(n, 3): centre offset x, y and box side (max of w, h), in FER-crop sides, of the boxes found."""
    side = 48.0 * UPSCALE
    centre = PAD + side / 2.0
    return np.array([((b.center[0] - centre) / side, (b.center[1] - centre) / side, max(b.w, b.h) / side)
                     for b in boxes if b is not None], dtype=np.float64).reshape(-1, 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="FER-2013 source (default: the team's copy in ../shared)")
    ap.add_argument("--fit", type=int, default=2000, help="train faces the offset is measured on")
    ap.add_argument("--report", type=int, default=None, help="PublicTest faces (default: all 3,589)")
    ap.add_argument("--detector", default="auto")
    args = ap.parse_args()
    source = args.data or shared_fer2013_zip()
    if source is None:
        sys.exit("no FER-2013 here: pass --data fer2013.zip (the Kaggle image-folder zip)")
    from fer_core.data import load_dataset
    from fer_core.inference.crops import DEFAULT_MARGIN, crop_face
    from fer_core.inference.faces import make_detector
    from fer_core.store.default_model import resolve_run
    from fer_core.store.prediction import ModelRunner
    from fer_core.store.runs import ModelStore

    ds = load_dataset(str(source))
    rng = np.random.default_rng(0)
    train, test = ds.splits["train"], ds.splits["test"]
    fit_idx = rng.choice(len(train.labels), size=min(args.fit, len(train.labels)), replace=False)
    fit_faces = np.asarray(train.images)[fit_idx].reshape(-1, 48, 48)
    detector = make_detector(args.detector)
    started = time.perf_counter()
    g = geometry(detect(detector, fit_faces))
    print(f"detector: {detector!r}; train faces found: {len(g)} of {len(fit_faces)} ({len(g) / len(fit_faces):.1%}); "
          f"{time.perf_counter() - started:.0f} s")
    q = np.percentile(g, [25, 50, 75], axis=0)
    for i, what in enumerate(("centre offset right", "centre offset down", "box side")):
        print(f"  {what:<20} median {q[1, i]:+.3f}  IQR [{q[0, i]:+.3f}, {q[2, i]:+.3f}]  (FER crop sides)")
    side = float(q[1, 2])
    fitted = (1.0 / side - 1.0) / 2.0  # side * (1 + 2 m) = 1: the crop as wide as FER-2013's
    print(f"  app crop at margin {DEFAULT_MARGIN}: {side * (1 + 2 * DEFAULT_MARGIN):.3f} FER crop sides; "
          f"the margin giving FER-2013's framing: {fitted:.3f}")

    faces = np.asarray(test.images).reshape(-1, 48, 48)
    y = np.asarray(test.labels, dtype=np.int64)
    if args.report and args.report < len(y):
        keep = np.linspace(0, len(y) - 1, args.report).round().astype(int)
        faces, y = faces[keep], y[keep]
    store = ModelStore(ROOT / "models")
    run = resolve_run(store, None)
    runner = ModelRunner.from_run(store, run.run_id)
    boxes = detect(detector, faces)
    hit = np.array([b is not None for b in boxes])
    print(f"\nPublicTest: {hit.sum()} of {len(y)} faces found ({hit.mean():.1%}); model {run.run_id}; "
          "accuracy / macro F1 on the faces found:")
    rows = [("FER-2013's own crop (ceiling)", [f for f, h in zip(faces, hit) if h])]
    for margin, align in ((0.1, True), (0.0, True), (round(fitted, 3), True), (round(fitted, 3), False)):
        crops = [crop_face(canvas(f), b, margin, align) for f, b in zip(faces, boxes) if b is not None]
        rows.append((f"app crop, margin {margin:+.3f}{'' if align else ', not aligned'}"
                     f"{' (DEFAULT_MARGIN)' if margin == DEFAULT_MARGIN else ''}", crops))
    for name, crops in rows:
        acc, f1 = scores(runner, crops, y[hit])
        print(f"  {name:<50} {acc:.1%} / {f1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
