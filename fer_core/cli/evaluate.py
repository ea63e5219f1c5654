"""`evaluate` and `runs`: how good the models of the store are, and which there are."""

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
    if args.list:
        return _list_evaluations(store, run)
    if args.show is not None:
        saved = store.list_evaluations(run.run_id)
        if not 1 <= args.show <= len(saved):
            raise FerError(f"{run.name} has {len(saved)} saved evaluation(s); "
                           f"`evaluate {run.run_id} --list` numbers them")
        result = store.read_evaluation(saved[args.show - 1])
    else:
        ds = load_data(args.data, args.progress_bars)
        if args.split not in ds.splits:
            raise FerError(f"the dataset has no {args.split!r} split (it has: {', '.join(ds.splits)})")
        result = evaluate_run(store, run.run_id, ds, split=args.split, tta=args.tta)
    print_evaluation(result)
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2),
                                   encoding="utf-8")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore
    from fer_core.training.calibrate import calibrate_run

    store = ModelStore()
    run = resolve_run(store, args.run)
    source = args.data or ((run.meta or {}).get("dataset") or {}).get("source") or "demo"
    ds = load_data(source, args.progress_bars)
    rec = calibrate_run(store, run.run_id, ds, write=not args.dry_run)
    con = console()
    con.print(f"{run.name}: temperature {rec['temperature']:.3f}, fitted on {rec['n']:,} faces of the {rec['fitted_on']}")
    con.print(f"  expected calibration error {rec['ece_before']:.3f} -> {rec['ece_after']:.3f}   "
              f"log loss {rec['nll_before']:.3f} -> {rec['nll_after']:.3f}   (accuracy does not change)")
    con.print("  not recorded (--dry-run)" if args.dry_run else
              "  recorded in meta.json: Evaluate, Predict, Webcam and Video now show calibrated probabilities")
    return 0


def _list_evaluations(store: Any, run: Any) -> int:
    from rich.markup import escape
    from rich.table import Table

    saved = store.list_evaluations(run.run_id)
    if not saved:
        console().print(f"{escape(run.name)} has no saved evaluation yet: "
                        f"python -m fer_core evaluate {run.run_id} --data DATA")
        return 0
    table = Table(title=f"saved evaluations of {escape(run.name)} ({run.run_id})")
    for col in ("#", "dataset", "split", "TTA", "images", "accuracy", "macro F1", "when"):
        table.add_column(col, justify="right" if col in ("#", "images", "accuracy", "macro F1") else "left")
    for i, e in enumerate(saved, 1):
        table.add_row(str(i), escape(e.dataset_name) + (" [yellow](synthetic demo data)[/yellow]" if e.synthetic else ""),
                      e.key.split, "yes" if e.key.tta else "no", f"{e.n:,}", pct(e.accuracy),
                      "-" if e.macro_f1 is None else f"{e.macro_f1:.3f}",
                      "shipped" if e.bundled else e.timestamp[:16].replace("T", " "))
    console().print(table)
    console().print(f"show one: python -m fer_core evaluate {run.run_id} --show N")
    return 0


# --------------------------------------------------------------------------- runs


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from fer_core.store.runs import ModelStore

    store = ModelStore()
    table = Table(title=f"model store {store.root}")
    for col in ("run", "name", "architecture", "status", "epochs", "val acc", "dataset"):
        table.add_column(col, no_wrap=col in ("run", "status"))
    for run in store.list_runs():
        meta = run.meta
        ds = meta.get("dataset") or {}
        shipped = meta.get("shipped") or {}
        # A shipped model's training story (stopped by its time budget, say) is in its meta, not its status.
        status = ("shipped, default" if shipped.get("default") else "shipped") if shipped else run.status
        table.add_row(run.run_id, escape(run.name) if run.name != run.run_id else "-",
                      str(meta.get("architecture", "-")), status + (f" ({run.error})" if run.error else ""),
                      str(len(store.history(run.run_id))), pct(run.metrics.get("val_accuracy")),
                      escape(str(ds.get("name", "-"))) + (" (synthetic)" if ds.get("synthetic") else ""))
    console().print(table)
    return 0


def add_parsers(sub: Any) -> None:
    e = sub.add_parser(
        "evaluate", help="evaluate a run on a dataset split and print the metric table",
        description="Evaluations are kept side by side, one per (dataset, split, TTA): a new one replaces only "
                    "the one with the same three. --list shows them, --show N prints one without recomputing.",
    )
    e.add_argument("run", nargs="?", help="run id or name (default: the default model)")
    e.add_argument("--data", default="demo", help="dataset source (default: demo)")
    e.add_argument("--split", default="test")
    e.add_argument("--tta", action="store_true", help="test-time augmentation (average with the flipped image)")
    e.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    shown = e.add_mutually_exclusive_group()
    shown.add_argument("--list", action="store_true", help="list the run's saved evaluations (nothing is computed)")
    shown.add_argument("--show", type=int, metavar="N", help="print saved evaluation N of --list (nothing is computed)")
    add_common(e)
    e.set_defaults(func=cmd_evaluate, loads_models=True)

    c = sub.add_parser(
        "calibrate", help="fit a run's temperature on its validation split (calibrated probabilities everywhere)",
        description="Temperature scaling: one number that softens over-confident (or sharpens timid) probabilities, "
                    "fitted on the run's own validation split (drawn again as training drew it) and recorded in "
                    "meta.json. Accuracy does not change; Evaluate reports the calibration error (ECE).",
    )
    c.add_argument("run", nargs="?", help="run id or name (default: the default model)")
    c.add_argument("--data", help="the dataset the run trained on (default: the source its meta.json records)")
    c.add_argument("--dry-run", action="store_true", help="fit and print, record nothing")
    add_common(c)
    c.set_defaults(func=cmd_calibrate, loads_models=True)

    r = sub.add_parser("runs", help="list the runs in the model store")
    r.set_defaults(func=cmd_runs)
