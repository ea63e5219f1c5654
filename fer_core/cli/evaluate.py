"""`evaluate`, `predict` and `runs`: use the models of the store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fer_core.cli.common import add_common, console, load_data, pct, print_evaluation
from fer_core.errors import FerError


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fer_core.inference.evaluation import evaluate_run
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore

    store = ModelStore()
    run = resolve_run(store, args.run)
    ds = load_data(args.data, args.progress_bars)
    if args.split not in ds.splits:
        raise FerError(f"the dataset has no {args.split!r} split (it has: {', '.join(ds.splits)})")
    result = evaluate_run(store, run.run_id, ds, split=args.split, tta=args.tta)
    print_evaluation(result)
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2),
                                   encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- predict


def cmd_predict(args: argparse.Namespace) -> int:
    from fer_core.inference.batch_predict import predict_files, results_csv

    con = console()
    rows = predict_files(
        [Path(p) for p in args.images], run_id=args.run, detector=args.detector,
        whole_image_if_no_face=args.whole_image, annotate_dir=Path(args.annotate) if args.annotate else None,
    )
    for row in rows:
        con.print(row["summary"])
    if args.csv:
        Path(args.csv).write_text(results_csv([r["row"] for r in rows if r.get("row")]), encoding="utf-8")
        con.print(f"results written to {args.csv}")
    return 0


# --------------------------------------------------------------------------- runs


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fer_core.store.runs import ModelStore

    store = ModelStore()
    table = Table(title=f"model store {store.root}")
    for col in ("run", "architecture", "status", "epochs", "val acc", "dataset"):
        table.add_column(col, no_wrap=col in ("run", "status"))
    for run in store.list_runs():
        meta = run.meta
        ds = meta.get("dataset") or {}
        table.add_row(run.run_id, str(meta.get("architecture", "-")),
                      run.status + (f" ({run.error})" if run.error else ""),
                      str(len(meta.get("history") or [])), pct(run.metrics.get("val_accuracy")),
                      str(ds.get("name", "-")))
    console().print(table)
    return 0


def add_parsers(sub: Any) -> None:
    e = sub.add_parser("evaluate", help="evaluate a run on a dataset split and print the metric table")
    e.add_argument("run", nargs="?", help="run id (default: the default model)")
    e.add_argument("--data", default="demo", help="dataset source (default: demo)")
    e.add_argument("--split", default="test")
    e.add_argument("--tta", action="store_true", help="test-time augmentation (average with the flipped image)")
    e.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    add_common(e)
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="find faces in images and classify their expression")
    pr.add_argument("images", nargs="+", help="image files (JPEG, PNG, WebP)")
    pr.add_argument("--run", help="run id (default: the default model)")
    pr.add_argument("--detector", default="auto", help="face detector (default: auto)")
    pr.add_argument("--whole-image", action="store_true", help="classify the whole image when no face is found")
    pr.add_argument("--csv", metavar="FILE", help="write one row per face to a CSV file")
    pr.add_argument("--annotate", metavar="DIR", help="write annotated copies of the images into DIR")
    add_common(pr)
    pr.set_defaults(func=cmd_predict)

    r = sub.add_parser("runs", help="list the runs in the model store")
    r.set_defaults(func=cmd_runs)
