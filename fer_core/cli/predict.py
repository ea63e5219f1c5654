"""`python -m fer_core predict PHOTO|FOLDER ...`: faces found and labelled, one line per face, a CSV.

Folders are read recursively (image files only). Photos are decoded and classified a chunk at
a time, and the CSV is written as they go, so a folder of any size runs in bounded memory and
an interrupted run keeps the rows written so far. Exit status: 0 when every input was read
(with or without faces), 5 (EXIT_INPUT_FAILED) when any input could not be read (missing,
empty, corrupt, not an image, too large), 2 for errors that stop the command (no model, ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fer_core.cli.common import add_common, console
from fer_core.errors import EXIT_INPUT_FAILED, FerError


def _face_lines(result: Any) -> list[str]:
    if not result.faces:
        return [result.summary()]
    lines = []
    for f in result.faces:
        what = "whole image" if f.whole_image else f"face {f.index + 1} at ({f.box.x}, {f.box.y}, {f.box.w}x{f.box.h})"
        lines.append(f"{result.name}: {what}: {f.label} {f.confidence * 100:.0f}%")
    return lines


def _annotated_name(name: str, used: set[str]) -> str:
    stem = Path(name).with_suffix("").as_posix().replace("/", "__")
    fname, k = f"{stem}_annotated.png", 2
    while fname in used:
        fname, k = f"{stem}_{k}_annotated.png", k + 1
    used.add(fname)
    return fname


def cmd_predict(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from fer_core.inference.batch_predict import STILL_IMAGE_DETECT_WIDTH, annotate, results_table, write_results_csv
    from fer_core.inference.classifier import EmotionClassifier
    from fer_core.inference.faces import make_detector
    from fer_core.inference.images import encode_png
    from fer_core.inference.sources import path_sources, predict_sources
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore

    if args.chunk < 1:
        raise FerError("--chunk must be 1 or more")
    con = console()
    sources = path_sources(args.images)
    store = ModelStore()
    run = resolve_run(store, args.run)
    classifier = EmotionClassifier.from_store(store, run.run_id, warm_up_to=1)
    detector = make_detector(args.detector, max_width=STILL_IMAGE_DETECT_WIDTH)
    annotate_dir = Path(args.annotate) if args.annotate else None
    if annotate_dir is not None:
        annotate_dir.mkdir(parents=True, exist_ok=True)
    csv_file = open(args.csv, "w", encoding="utf-8", newline="") if args.csv else None  # noqa: SIM115
    bar = None
    if args.progress_bars and len(sources) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(sources), desc="photos", unit="photo", file=sys.stderr)
    counts = {"read": 0, "failed": 0, "faces": 0}
    used: set[str] = set()
    try:
        for result, image in predict_sources(sources, detector, classifier, args.whole_image, args.chunk):
            counts["failed" if result.error else "read"] += 1
            counts["faces"] += sum(not f.whole_image for f in result.faces)
            for line in _face_lines(result):
                (bar.write(line, file=sys.stdout) if bar is not None else con.print(escape(line)))
            if csv_file is not None:
                write_results_csv(results_table([result]), csv_file, header=counts["read"] + counts["failed"] == 1)
            if annotate_dir is not None and image is not None:
                (annotate_dir / _annotated_name(result.name, used)).write_bytes(encode_png(annotate(image, result)))
            if bar is not None:
                bar.update(1)
    except KeyboardInterrupt:
        done = counts["read"] + counts["failed"]
        con.print(f"interrupted after {done} of {len(sources)} photo(s)"
                  + (f"; their rows are in {args.csv}" if csv_file is not None else ""))
        return 130
    finally:
        if bar is not None:
            bar.close()
        if csv_file is not None:
            csv_file.close()
    con.print(f"{counts['read'] + counts['failed']} photo(s), {counts['faces']} face(s) found"
              + (f", {counts['failed']} could not be read" if counts["failed"] else "")
              + (f"; results written to {args.csv}" if args.csv else ""))
    return EXIT_INPUT_FAILED if counts["failed"] else 0


def add_parsers(sub: Any) -> None:
    pr = sub.add_parser(
        "predict", help="find faces in photos (files or folders) and classify their expression",
        epilog="exit status: 0 every input was read; 5 some input could not be read (the others were "
               "processed and written); 2 the command could not run (no model, bad option); 130 interrupted",
    )
    pr.add_argument("images", nargs="+", metavar="PHOTO_OR_FOLDER",
                    help="image files (JPEG, PNG, WebP, ...) or folders of them (read recursively)")
    pr.add_argument("--run", help="run id or name (default: the default model)")
    pr.add_argument("--detector", default="auto", help="face detector (default: auto)")
    pr.add_argument("--whole-image", action="store_true", help="classify the whole image when no face is found")
    pr.add_argument("--csv", metavar="FILE", help="write one row per face to a CSV file (as the photos are done)")
    pr.add_argument("--annotate", metavar="DIR", help="write annotated copies of the images into DIR")
    pr.add_argument("--chunk", type=int, default=32, metavar="N",
                    help="photos decoded and classified together (memory use grows with N; default 32)")
    add_common(pr)
    pr.set_defaults(func=cmd_predict, loads_models=True)
