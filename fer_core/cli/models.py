"""CLI commands for models made elsewhere: `import`, `conventions` and `export`.

    python -m fer_core import fer_cnn_model.h5 --labels alphabetical --scale unit [--check DATA]
    python -m fer_core conventions RUN --data DATA [--apply]
    python -m fer_core export [RUN] --format tflite-float16 --out DIR [--check DATA]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_core.cli.common import add_common, console, load_data
from fer_core.errors import FerError

EXIT_CHECK_FAILED = 4  # an export whose accuracy moved more than allowed
# Pixel scalings on the command line are words (fer_core.preprocess.SCALE_WORDS): argparse reads
# `--scale -1-1` as an unknown option. The stored spellings (0-1, 0-255, --scale=-1-1) still work.
SCALE_HELP = "unit = [0, 1], symmetric = [-1, 1], raw = 0-255 pixels"
_RANGES = {"0-1": "[0, 1]", "-1-1": "[-1, 1]", "0-255": "0-255"}


def _scale_text(scale: str) -> str:
    from fer_core.preprocess import scale_word

    return f"{scale_word(scale)} {_RANGES.get(scale, '')}".strip()


def _scale_type(allow_auto: bool) -> Any:
    def scale(value: str) -> str:
        from fer_core.preprocess import canonical_scale

        if allow_auto and value.strip().lower() == "auto":
            return "auto"
        try:
            return canonical_scale(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc) + (", or auto" if allow_auto else "")) from None

    return scale


def _print_scores(report: dict[str, Any]) -> None:
    from rich.table import Table

    con = console()
    synthetic = " (synthetic demo set)" if report.get("synthetic") else ""
    table = Table(title=f"label order x input scaling on {report['n']:,} {report['split']} images{synthetic}")
    for col in ("label order", "scaling", "accuracy", "macro F1", ""):
        table.add_column(col)
    cur = report.get("current") or {}
    for s in report["scores"]:
        mark = []
        if s is report["scores"][0]:
            mark.append("best fit")
        if s["labels"] == cur.get("labels") and s["scale"] == cur.get("scale"):
            mark.append("stored")
        table.add_row(s["order"], _scale_text(s["scale"]), f"{s['accuracy']:.1%}",
                      f"{s['macro_f1']:.3f}", ", ".join(mark))
    con.print(table)
    if report["matches"]:
        con.print("[green]The stored label order and scaling fit the data best.[/green]")
    else:
        best = report["best"]
        con.print(f"[yellow]warning: the stored conventions do not fit best; the best fit is label order "
                  f"{best['order']} with scaling {_scale_text(best['scale'])} ({best['accuracy']:.1%}).[/yellow]")


def cmd_import(args: argparse.Namespace) -> int:
    from fer_core.store.conventions import apply_conventions, check_run_conventions
    from fer_core.store.importing import import_model
    from fer_core.store.runs import ModelStore

    auto_labels, auto_scale = args.labels == "auto", args.scale == "auto"
    if (auto_labels or auto_scale) and not args.check:
        raise FerError("--labels auto / --scale auto need --check DATA to find the conventions that fit")
    store = ModelStore()
    run = import_model(
        Path(args.file), labels="csv" if auto_labels else args.labels,
        scale="0-1" if auto_scale else args.scale, name=args.name, store=store,
    )
    meta = run.meta
    con = console()
    con.print(f"imported {args.file} as run [bold]{run.run_id}[/bold]: input {tuple(meta['input_shape'])} "
              f"{meta['preprocessing']['color']}, scaling {_scale_text(meta['preprocessing']['scale'])}, "
              f"labels {', '.join(meta['labels'])} ({meta['label_order']}), {meta['num_params']:,} parameters")
    if args.check:
        ds = load_data(args.check, args.progress_bars)
        report = check_run_conventions(store, run.run_id, ds, args.split)
        if auto_labels or auto_scale:
            best = report["best"]
            labels = best["labels"] if auto_labels else meta["labels"]
            scale = best["scale"] if auto_scale else meta["preprocessing"]["scale"]
            apply_conventions(store, run.run_id, labels, scale)
            report = check_run_conventions(store, run.run_id, ds, args.split)
            con.print(f"conventions set from the check: labels {', '.join(labels)}, scaling {_scale_text(scale)}")
        _print_scores(report)
    return 0


def cmd_conventions(args: argparse.Namespace) -> int:
    from fer_core.store.conventions import apply_conventions, check_run_conventions
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore

    store = ModelStore()
    run = resolve_run(store, args.run)
    if args.labels or args.scale:
        meta = store.read_meta(run.run_id)
        apply_conventions(store, run.run_id, args.labels or meta.get("labels"),
                          args.scale or (meta.get("preprocessing") or {}).get("scale", "0-1"))
        console().print(f"run {run.run_id}: conventions updated")
    ds = load_data(args.data, args.progress_bars)
    report = check_run_conventions(store, run.run_id, ds, args.split)
    if args.apply and not report["matches"]:
        best = report["best"]
        apply_conventions(store, run.run_id, best["labels"], best["scale"])
        console().print(f"run {run.run_id}: set label order {best['order']}, scaling {_scale_text(best['scale'])}")
        report = check_run_conventions(store, run.run_id, ds, args.split)
    _print_scores(report)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fer_core.store.atomic import atomic_write_json
    from fer_core.store.default_model import resolve_run
    from fer_core.store.export import (
        CLEAR_MARGIN,
        EXPORT_FORMATS,
        conventions,
        export_run,
        verify_export,
    )
    from fer_core.store.runs import ModelStore

    store = ModelStore()
    run = resolve_run(store, args.run)
    formats = list(EXPORT_FORMATS) if "all" in args.format else list(dict.fromkeys(args.format))
    ds = load_data(args.check, args.progress_bars) if args.check else None
    con = console()
    table = Table(title=f"export of {run.run_id}" + (f", checked on {args.check} ({args.split})" if ds else ""))
    for col in ("format", "file", "size", "accuracy", "original", "difference", "same class", "in clear cases"):
        table.add_column(col)
    failed = []
    for fmt in formats:
        path, sidecar = export_run(store, run.run_id, fmt, Path(args.out))
        row = [fmt, str(path), f"{path.stat().st_size / 1e6:.2f} MB", "-", "-", "-", "-", "-"]
        if ds is not None:
            check = verify_export(store, run.run_id, fmt, path.read_bytes(), ds, args.split)
            atomic_write_json(sidecar, {**conventions(store, run.run_id, fmt), "check": check.as_dict()})
            row[3:] = [f"{check.exported_accuracy:.2%}", f"{check.original_accuracy:.2%}",
                       f"{check.difference_points:+.2f} pt", f"{check.agreement:.2%}",
                       f"{check.clear_agreement:.2%} of {check.n_clear:,}" if check.n_clear else "none"]
            if check.problem:
                failed.append(check.problem)
        table.add_row(*row)
    con.print(table)
    con.print("each model file has a .json beside it with its labels, input shape and scaling")
    if ds is not None:
        con.print(f"clear cases: images where the original's top class leads the runner-up by more than "
                  f"{CLEAR_MARGIN:.2f} in probability; quantisation may flip a near-tie, not those")
    if failed:
        con.print(f"[red]warning: {'; '.join(failed)}[/red]")
        return EXIT_CHECK_FAILED
    return 0


def add_parsers(sub: Any) -> None:
    from fer_core.preprocess import SCALE_WORDS
    from fer_core.store.export import EXPORT_FORMATS

    words = "{" + ",".join(SCALE_WORDS) + "}"
    im = sub.add_parser("import", help="import a .keras / .h5 model trained elsewhere into the model store")
    im.add_argument("file", help="the model file (.keras, or legacy .h5 / .hdf5)")
    im.add_argument("--labels", required=True,
                    help="the model's output order: 'csv' (FER-2013 CSV order), 'alphabetical' (image-folder "
                         "order), 'auto' (pick the best fit, needs --check), or 7 class names separated by commas")
    im.add_argument("--scale", required=True, type=_scale_type(allow_auto=True), metavar=words[:-1] + ",auto}",
                    help=f"pixel scaling the model was trained with: {SCALE_HELP}; 'auto' picks the best fit "
                         "(needs --check)")
    im.add_argument("--name", help="a name for the imported run")
    im.add_argument("--check", metavar="DATA",
                    help="score every label order and scaling on this dataset's test split")
    im.add_argument("--split", help="split to check on (default: test)")
    add_common(im)
    im.set_defaults(func=cmd_import, loads_models=True)

    cv = sub.add_parser("conventions", help="check (and fix) a run's label order and input scaling on a dataset")
    cv.add_argument("run", nargs="?", help="run id (default: the default model)")
    cv.add_argument("--data", default="demo", help="dataset source (default: demo)")
    cv.add_argument("--split", help="split to check on (default: test)")
    cv.add_argument("--labels", help="set the label order first: csv, alphabetical, or 7 names")
    cv.add_argument("--scale", type=_scale_type(allow_auto=False), metavar=words,
                    help=f"set the input scaling first: {SCALE_HELP}")
    cv.add_argument("--apply", action="store_true", help="store the best-fitting conventions")
    add_common(cv)
    cv.set_defaults(func=cmd_conventions, loads_models=True)

    ex = sub.add_parser("export", help="export a run as .keras, legacy .h5 or TFLite")
    ex.add_argument("run", nargs="?", help="run id (default: the default model)")
    ex.add_argument("--format", action="append", required=True, choices=list(EXPORT_FORMATS) + ["all"],
                    help="output format (repeat for several, or 'all')")
    ex.add_argument("--out", default=".", help="folder to write into (default: current folder)")
    ex.add_argument("--check", metavar="DATA",
                    help="compare the exported file's accuracy with the original's on this dataset")
    ex.add_argument("--split", default="test", help="split for --check (default: test)")
    add_common(ex)
    ex.set_defaults(func=cmd_export, loads_models=True)
