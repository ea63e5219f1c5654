"""Video files: frames/s of `analyse_video` (default model and settings, annotated copy written) for
1 and 4 faces at 640x480 30 frames/s and for 1080p, beside the baseline other tools use (the `fer`
package's `Video`: Haar detection + `model.predict` on every frame, cv2.VideoWriter), as a ratio;
and the peak memory of clips of growing length (streamed frames: it must not grow with length).

    .venv/bin/python benchmarks/video.py                   # ~3 min on the 2-core machine
    .venv/bin/python benchmarks/video.py --minutes 1 10    # memory and time of a 10-minute clip too

Each measurement runs in its own process (peak RSS = that process's ru_maxrss, model included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _classifier():
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.store.default_model import default_run
    from fer_core.store.runs import ModelStore

    store = ModelStore(ROOT / "models")
    run = default_run(store)
    return EmotionClassifier.from_store(store, run.run_id), run.run_id


def child_ours(clip: str, out_dir: str) -> dict:
    from fer_core.inference.faces import make_detector
    from fer_core.inference.video import VideoOutputs, analyse_video

    clf, run_id = _classifier()
    out = Path(out_dir)
    result = analyse_video(clip, clf, make_detector("auto"),
                           VideoOutputs(csv=out / "f.csv", summary=out / "s.json", video=out / "a.mp4"))
    return {"frames": result.frames_read, "seconds": result.seconds, "fps": result.fps, "rows": result.rows,
            "model": run_id}


def child_baseline(clip: str, out_dir: str) -> dict:
    """What `fer.Video.analyze` does per frame: Haar cascade on the full frame, the model on each face
    (`model.predict`), boxes drawn, cv2.VideoWriter (mp4v)."""
    import cv2
    import numpy as np

    from fer_core.inference.crops import crop_face
    from fer_core.inference.boxes import Box

    clf, run_id = _classifier()
    model = clf.model
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    cap = cv2.VideoCapture(clip)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(Path(out_dir) / "baseline.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    frames = faces = 0
    t0 = time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        for (x, y, bw, bh) in cascade.detectMultiScale(gray, 1.1, 5, minSize=(40, 40)):
            x_in = clf.runner.prepare([crop_face(frame, Box(int(x), int(y), int(bw), int(bh)), 0.0)])
            p = model.predict(x_in, verbose=0)[0]
            faces += 1
            cv2.rectangle(frame, (int(x), int(y)), (int(x + bw), int(y + bh)), (0, 255, 0), 2)
            cv2.putText(frame, f"{int(np.argmax(p))}", (int(x), int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
        writer.write(frame)
        frames += 1
    writer.release()
    seconds = time.perf_counter() - t0
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds, "rows": faces, "model": run_id}


def _measure(kind: str, clip: Path) -> dict:
    """Run one measurement in a child process; its figures and peak RSS (MB)."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, __file__, "--child", kind, str(clip), out], capture_output=True,
                              text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the speed clips (default 20 s)")
    ap.add_argument("--minutes", type=float, nargs="*", default=[0.5, 2.0],
                    help="clip lengths (minutes) for the memory check (default 0.5 2)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "CLIP", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, clip, out = args.child
        figures = (child_ours if kind == "ours" else child_baseline)(clip, out)
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process's peak
        print(json.dumps(figures))
        return

    from benchmarks.clips import ClipPlan, make_clip

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print(f"Speed: {args.seconds:.0f} s clips, 30 frames/s, default model and settings, annotated copy written "
              "(ours: H.264 + CSV + summary; baseline: mp4v); each in its own process")
        print(f"{'clip':<22}{'ours fps':>10}{'baseline fps':>14}{'ratio':>8}{'ours MB':>9}")
        for name, plan in (("640x480, 1 face", ClipPlan(seconds=args.seconds)),
                           ("640x480, 4 faces", ClipPlan(seconds=args.seconds, faces=4)),
                           ("1920x1080, 1 face", ClipPlan(seconds=args.seconds, size=(1920, 1080)))):
            clip = make_clip(tmp_path / f"{name.replace(' ', '_').replace(',', '')}.mp4", plan)
            ours, base = _measure("ours", clip), _measure("baseline", clip)
            print(f"{name:<22}{ours['fps']:>10.1f}{base['fps']:>14.1f}{ours['fps'] / base['fps']:>7.1f}x"
                  f"{ours['peak_rss_mb']:>9.0f}", flush=True)
        print("\nMemory against clip length (640x480, 1 face; streamed frames: flat)")
        print(f"{'minutes':>8}{'frames':>9}{'fps':>8}{'seconds':>9}{'peak RSS MB':>13}")
        for minutes in args.minutes:
            clip = make_clip(tmp_path / f"long_{minutes}.mp4", ClipPlan(seconds=minutes * 60))
            r = _measure("ours", clip)
            print(f"{minutes:>8g}{r['frames']:>9}{r['fps']:>8.1f}{r['seconds']:>9.0f}{r['peak_rss_mb']:>13.0f}", flush=True)
            clip.unlink()


if __name__ == "__main__":
    main()
