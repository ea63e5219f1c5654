"""`python -m fer_core batch SRC... --out DIR`: label a corpus of photos and videos (fer_core.corpus).

On a terminal a progress bar (files/s, faces/s, time left); in a pipe or a log one line per 10%.
Ctrl-C or a kill keeps every finished shard; `--resume` finishes the job. Exit status: 0 every
file done and read, 5 done but some files could not be read (their rows say why), 130 stopped
early (`--resume` finishes it), 2 the job could not run (bad option, no model, OUT not empty).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fer_core.cli.common import add_common, console
from fer_core.errors import EXIT_INPUT_FAILED, FerError


def _reporter(enabled_bar: bool, quiet: bool) -> tuple[Any, Any]:
    """A progress callback and a close function: a tqdm bar on a terminal, else a line per 10%."""
    state: dict[str, Any] = {"bar": None, "tenth": -1}

    def report(p: Any) -> None:
        if quiet:
            return
        if enabled_bar:
            if state["bar"] is None:
                from tqdm import tqdm

                state["bar"] = tqdm(total=p.total, initial=p.done, desc="files", unit="file", file=sys.stderr,
                                    dynamic_ncols=True)
            bar = state["bar"]
            bar.n = p.done
            bar.set_postfix_str(f"{p.faces_per_s:.1f} faces/s, {p.failed} failed", refresh=False)
            bar.refresh()
            return
        tenth = int(10 * p.fraction)
        if tenth > state["tenth"]:
            state["tenth"] = tenth
            print(p.line(), file=sys.stderr, flush=True)

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return report, close


def cmd_batch(args: argparse.Namespace) -> int:
    from fer_core.corpus.job import BatchSettings, run_batch

    if args.workers < 0:
        raise FerError("--workers must be 0 (one per core) or more")
    settings = BatchSettings(detector=args.detector, max_fps=None if args.max_fps == 0 else args.max_fps,
                             whole_image=args.whole_image, shard_size=args.shard_size)
    report, close = _reporter(args.progress_bars, args.no_progress)
    try:
        manifest = run_batch(args.sources, args.out, run_id=args.model, settings=settings, engine=args.engine,
                             address=args.address, workers=args.workers, resume=args.resume, progress=report)
    finally:
        close()
    c, con = manifest["counts"], console()
    total = manifest["inputs"]["files"]
    run = manifest["runs"][-1]
    rate = run["files"] / run["seconds"] if run["seconds"] else 0.0
    con.print(f"{c['done']:,} of {total:,} file(s) done ({c['photos']:,} photos, {c['videos']:,} videos): "
              f"{c['faces']:,} face(s), {c['no_face']:,} without a face, {c['failed']:,} could not be read; "
              f"{c['rows']:,} rows in {args.out}/rows ({rate:.1f} files/s, {manifest['runs'][-1]['engine']} engine)")
    if manifest["state"] != "done":
        con.print(f"stopped early ({manifest['state']}): `python -m fer_core batch --out {args.out} --resume` "
                  "finishes the job")
        return 130
    return EXIT_INPUT_FAILED if c["failed"] else 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "batch", help="label a corpus: folders, zips, globs, list files of photos and videos -> Parquet",
        epilog="exit status: 0 every file done; 5 done, but some files could not be read (their rows say why); "
               "130 stopped early (--resume finishes it); 2 the job could not run",
    )
    p.add_argument("sources", nargs="*", metavar="SRC",
                   help="folders (recursive), globs, zips, list files (.txt/.lst: a path a line; .csv: the column "
                        "path, file or source), photos, videos; none with --resume")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the job's folder: rows/ (Parquet shards), sources.parquet, manifest.json")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (default: worker processes on this machine) or ray (Ray Data; pip install -r "
                        "requirements-ray.txt)")
    p.add_argument("--address", metavar="auto|ray://HOST:PORT",
                   help="with --engine ray: an existing Ray cluster (default: a local Ray started for the job)")
    p.add_argument("--model", metavar="RUN", help="run id or name (default: the default model)")
    p.add_argument("--detector", default="auto", help="face detector (default: auto)")
    p.add_argument("--max-fps", type=float, default=2.0, metavar="F",
                   help="video frames analysed per second of video (default 2; 0: every frame)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="local: detection processes; ray: workers (default 0: one per core)")
    p.add_argument("--whole-image", action="store_true", help="classify the whole photo when no face is found")
    p.add_argument("--shard-size", type=int, default=256, metavar="N", help="photos per Parquet shard (default 256)")
    p.add_argument("--resume", action="store_true", help="finish the job in --out (its sources, model and settings)")
    add_common(p)
    # With Ray the model loads in the workers: the driver never imports TensorFlow (seconds and ~0.8 GB).
    p.set_defaults(func=cmd_batch, loads_models=lambda args: args.engine == "local")
