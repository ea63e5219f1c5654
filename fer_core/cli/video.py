"""`python -m fer_core video IN`: emotions over time in a video file (table, summary, annotated copy)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fer_core.cli.common import add_common, console
from fer_core.errors import FerError


class _Progress:
    """A tqdm bar on a terminal (frames, frames/s, ETA); one line per 10% when stderr is a pipe."""

    def __init__(self, bars: bool, enabled: bool):
        self.bars, self.enabled, self.bar, self.tenth = bars, enabled, None, -1

    def __call__(self, done: int, total: int, fps: float) -> None:
        if not self.enabled:
            return
        total = max(total, done, 1)
        if self.bars:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc="frames", unit="frame", file=sys.stderr, leave=False)
            self.bar.total, self.bar.n = total, done
            self.bar.refresh()
            return
        tenth = min(10, done * 10 // total)
        if tenth > self.tenth:
            self.tenth = tenth
            eta = (total - done) / fps if fps > 0 else float("nan")
            print(f"frames {done}/{total} ({tenth * 10}%), {fps:.1f} frames/s, ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_video(args: argparse.Namespace) -> int:
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.inference.faces import make_detector
    from fer_core.inference.video import VideoOptions, VideoOutputs, analyse_video
    from fer_core.inference.video_io import probe
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore

    outputs = VideoOutputs(csv=args.csv, parquet=args.parquet, summary=args.summary, video=args.out)
    if not any((args.csv, args.parquet, args.summary, args.out)):
        raise FerError("say what to write: --out annotated.mp4, --csv frames.csv, --parquet frames.parquet "
                       "and/or --summary tracks.json")
    if args.every_n < 1 or (args.max_fps is not None and args.max_fps <= 0):
        raise FerError("--every-n must be 1 or more and --max-fps above 0")
    probe(args.video)  # a file that is no video is said before any model loads
    store = ModelStore()
    run = resolve_run(store, args.run)
    classifier = EmotionClassifier.from_store(store, run.run_id, warm_up_to=4)
    detector = make_detector(args.detector)
    con = console()
    progress = _Progress(args.progress_bars, not args.no_progress)
    try:
        result = analyse_video(args.video, classifier, detector, outputs,
                               VideoOptions(every_n=args.every_n, max_fps=args.max_fps), progress=progress)
    finally:
        progress.close()
    info = result.info
    con.print(f"{info.path}: {info.width}x{info.height}, {info.duration_s:.1f} s at {info.fps:g} frames/s"
              + (f", turned {info.rotation} degrees" if info.rotation else ""))
    con.print(f"{result.frames_read} frames read, {result.frames_processed} analysed, {result.rows} face rows, "
              f"{len(result.tracks)} face track(s); {result.fps:.1f} frames/s")
    for t in result.tracks:
        d = t.as_dict()
        con.print(f"  face #{d['track_id']}: {d['first_s']:.1f}-{d['last_s']:.1f} s, on screen {d['seconds']:.1f} s, "
                  f"mostly {d['dominant']} ({d['share'].get(d['dominant'], 0):.0%})")
    for note in result.notes:
        con.print(f"note: {note}")
    for kind, path in result.outputs.items():
        con.print(f"{kind}: {path}")
    if result.stopped:
        con.print(f"{result.stopped} after {result.frames_read} of about {info.frames} frames: "
                  "the files above hold what was done")
        return 130
    return 0


def add_parsers(sub: Any) -> None:
    v = sub.add_parser(
        "video", help="emotions over time in a video file: per-frame table, per-face summary, annotated copy",
        epilog="exit status: 0 done; 2 the command could not run (not a video, no model, bad option); "
               "130 interrupted (what was done is written)",
    )
    v.add_argument("video", metavar="IN", help="video file (mp4, mov, webm, mkv, avi)")
    v.add_argument("--out", metavar="FILE", help="annotated copy (H.264 MP4 with the sound, plays in browsers)")
    v.add_argument("--csv", metavar="FILE", help="one row per face per analysed frame (written as it goes)")
    v.add_argument("--parquet", metavar="FILE", help="the same table as Parquet")
    v.add_argument("--summary", metavar="FILE", help="per-face summary as JSON (time on screen, share per emotion)")
    v.add_argument("--run", "--model", dest="run", help="run id or name (default: the default model)")
    v.add_argument("--detector", default="auto", help="face detector (default: auto)")
    v.add_argument("--every-n", type=int, default=1, metavar="N", help="analyse every N-th frame (default 1)")
    v.add_argument("--max-fps", type=float, metavar="F", help="analyse at most F frames per second of video")
    add_common(v)
    v.set_defaults(func=cmd_video, loads_models=True)
