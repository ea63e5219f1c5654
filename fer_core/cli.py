"""Command line: `python -m fer_core data|train|evaluate|predict|runs|import|conventions|export`.

Heavy imports (TensorFlow, OpenCV models) happen inside each command, so `--help` is
instant. Errors meant for the user (fer_core.errors.FerError, bad settings) print as
`error: ...` with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fer_core.errors import FerError, TrainingBusyError

EXIT_ERROR = 2
EXIT_BUSY = 3  # the store's training lock is held by another job (fer_core.jobs reads it)


# --------------------------------------------------------------------------- output helpers


def _console() -> Any:
    from rich.console import Console

    # Not a terminal (a pipe, a log file): wide lines rather than wrapped cells.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _tqdm_progress(desc: str, enabled: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A (done, total) callback drawing a tqdm bar, and a close function."""
    if not enabled:
        return (lambda done, total: None), (lambda: None)
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False)
        b = bar["bar"]
        b.total = total
        b.n = done
        b.refresh()

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


def _load_dataset(source: str, show_progress: bool, use_cache: bool = True) -> Any:
    from fer_core.data import load_dataset

    update, close = _tqdm_progress("decoding images", show_progress)
    try:
        return load_dataset(source, use_cache=use_cache, progress=update)
    finally:
        close()


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"


# --------------------------------------------------------------------------- data


def cmd_data(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fer_core.labels import FER_LABELS

    ds = _load_dataset(args.source, args.progress_bars, use_cache=not args.no_cache)
    con = _console()
    title = ds.name + ("  [synthetic]" if ds.synthetic else "")
    table = Table(title=title)
    table.add_column("class")
    splits = list(ds.splits)
    for s in splits:
        table.add_column(s, justify="right")
    counts = ds.report.counts
    for label in FER_LABELS:
        table.add_row(label, *[str(counts.get(s, {}).get(label, 0)) for s in splits])
    table.add_row("total", *[str(len(ds.splits[s].labels)) for s in splits], style="bold")
    con.print(table)
    summary = ds.report.summary()
    con.print(f"source: {ds.report.source} ({ds.report.format}), fingerprint {ds.fingerprint[:12]}")
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        con.print(f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(ds.report.to_dict(), indent=2), encoding="utf-8")
        con.print(f"report written to {args.json}")
    return 0


# --------------------------------------------------------------------------- train


def _keras_progress_callback(enabled: bool, bars: bool = True) -> list[Any]:
    """A Keras callback printing a line per epoch, and with `bars` a tqdm bar of its batches."""
    if not enabled:
        return []
    import keras
    from tqdm import tqdm

    class TqdmEpochs(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.bar: Any = None
            self.epochs = 0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.epochs = int(self.params.get("epochs") or 0)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if not bars:
                return
            self.bar = tqdm(total=self.params.get("steps"), desc=f"epoch {epoch + 1}/{self.epochs}",
                            unit="batch", file=sys.stderr, leave=False)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if self.bar is not None:
                self.bar.update(1)
                if logs and batch % 10 == 0:
                    self.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}")

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            logs = logs or {}
            tqdm.write(
                f"epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f} "
                f"acc {logs.get('accuracy', float('nan')):.4f} "
                f"val_loss {logs.get('val_loss', float('nan')):.4f} "
                f"val_acc {logs.get('val_accuracy', float('nan')):.4f}",
                file=sys.stderr,
            )

    return [TqdmEpochs()]


def _train_config(args: argparse.Namespace) -> Any:
    from fer_core.training import TrainConfig

    if args.config_json:
        try:
            data = json.loads(args.config_json)
        except ValueError as exc:
            raise FerError(f"--config-json is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FerError("--config-json must be a JSON object of training settings")
    else:
        data = {}
    cli_values = {
        "architecture": args.arch, "epochs": args.epochs, "batch_size": args.batch_size,
        "learning_rate": args.lr, "optimizer": args.optimizer, "augment": args.augment,
        "random_erasing": args.random_erasing, "class_weights": args.class_weights,
        "validation": args.val, "early_stopping_patience": args.patience,
        "label_smoothing": args.label_smoothing, "lr_schedule": args.lr_schedule, "seed": args.seed, "name": args.name,
        "max_train_images": args.max_train_images, "precision": args.precision,
        "warmup_epochs": args.warmup_epochs, "weight_decay": args.weight_decay,
    }
    data.update({k: v for k, v in cli_values.items() if v is not None})
    arch = data.get("architecture") or "mini_xception"
    try:
        if args.recommended:
            return TrainConfig.recommended(arch, **{k: v for k, v in data.items() if k != "architecture"})
        return TrainConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise FerError(f"bad training settings: {exc}") from None


_RESUME_CONFLICTS = ("arch", "recommended", "epochs", "batch_size", "lr", "optimizer", "augment", "random_erasing",
                     "class_weights", "val", "patience", "label_smoothing", "lr_schedule", "seed", "name",
                     "max_train_images", "run_id", "config_json", "precision", "warmup_epochs", "weight_decay")


def cmd_resume(args: argparse.Namespace) -> int:
    """`train --resume RUN`: continue a stopped, failed or killed run with its own settings."""
    from fer_core.store import ModelStore
    from fer_core.training import resume, resume_check

    given = [f"--{k.replace('_', '-')}" for k in _RESUME_CONFLICTS
             if getattr(args, k, None) is not None and not (k == "recommended" and not args.recommended)]
    if given:
        raise FerError(f"--resume continues the run with the settings it was started with; drop {', '.join(given)}")
    store = ModelStore()
    store.check_not_training()
    resume_check(store, args.resume)  # finished / no checkpoint: say so before loading any data
    ds = _load_dataset(args.data, args.progress_bars)
    con = _console()
    try:
        run_id = resume(
            ds, args.resume, store=store,
            callbacks=_keras_progress_callback(not args.no_progress, args.progress_bars),
            on_start=lambda rid: con.print(f"resuming run {rid} in {store.root}"),
        )
    except KeyboardInterrupt:
        return 130
    return _report_run(args, store, run_id, ds, con)


def cmd_train(args: argparse.Namespace) -> int:
    from fer_core.store import ModelStore

    if args.resume:
        return cmd_resume(args)
    config = _train_config(args)
    store = ModelStore()
    store.check_not_training()
    ds = _load_dataset(args.data, args.progress_bars)

    from fer_core.training import build_run_meta, train

    run_id = args.run_id
    if run_id:
        store.create_run(build_run_meta(ds, config), run_id=run_id)
    con = _console()
    try:
        run_id = train(
            ds, config, store=store, run_id=run_id,
            callbacks=_keras_progress_callback(not args.no_progress, args.progress_bars),
            on_start=lambda rid: con.print(f"training run {rid} ({config.architecture}) in {store.root}"),
        )
    except TrainingBusyError:
        if args.run_id:
            _delete_quietly(store, args.run_id)
        raise
    except KeyboardInterrupt:
        return 130
    return _report_run(args, store, run_id, ds, con)


def _report_run(args: argparse.Namespace, store: Any, run_id: str, ds: Any, con: Any) -> int:
    """Print how a run ended (and evaluate it with --evaluate); exit status 0 unless it failed."""
    info = store.get(run_id)
    metrics = info.metrics
    con.print(
        f"run {run_id}: {info.status}; best epoch {info.meta.get('best_epoch')}, "
        f"val accuracy {_pct(metrics.get('val_accuracy'))}; model at {info.model_path}"
    )
    if args.evaluate and info.usable:
        from fer_core.evaluation import evaluate_run

        split = args.evaluate
        result = evaluate_run(store, run_id, ds, split=split)
        _print_evaluation(result)
    return 0 if info.status in ("finished", "stopped") else 1


def _delete_quietly(store: Any, run_id: str) -> None:
    try:
        store.delete(run_id)
    except FerError:
        pass


# --------------------------------------------------------------------------- evaluate


def _print_evaluation(result: dict[str, Any]) -> None:
    from rich.table import Table

    con = _console()
    per_class = result.get("per_class") or {}
    table = Table(title=f"{result.get('run_id', '')} on {result.get('split')} ({result.get('n')} images)"
                  + ("  TTA" if result.get("tta") else ""))
    for col in ("class", "precision", "recall", "f1", "support", "ROC AUC"):
        table.add_column(col, justify="left" if col == "class" else "right")

    def num(v: Any) -> str:
        return "-" if v is None else f"{float(v):.3f}"

    for label in result.get("labels") or []:
        row = per_class.get(label) or {}
        table.add_row(label, num(row.get("precision")), num(row.get("recall")), num(row.get("f1")),
                      str(int(row.get("support") or 0)), num(row.get("roc_auc")))
    con.print(table)
    con.print(
        f"accuracy {_pct(result.get('accuracy'))}   macro F1 {num(result.get('macro_f1'))}   "
        f"macro ROC AUC {num(result.get('macro_roc_auc'))}   log loss {num(result.get('log_loss'))}   "
        f"({result.get('images_per_second')} images/s)"
    )
    if result.get("warning"):
        con.print(f"[yellow]warning:[/yellow] {result['warning']}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fer_core.default_model import resolve_run
    from fer_core.evaluation import evaluate_run
    from fer_core.store import ModelStore

    store = ModelStore()
    run = resolve_run(store, args.run)
    ds = _load_dataset(args.data, args.progress_bars)
    if args.split not in ds.splits:
        raise FerError(f"the dataset has no {args.split!r} split (it has: {', '.join(ds.splits)})")
    result = evaluate_run(store, run.run_id, ds, split=args.split, tta=args.tta)
    _print_evaluation(result)
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2),
                                   encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- predict


def cmd_predict(args: argparse.Namespace) -> int:
    from fer_core.batch_predict import predict_files, results_csv

    con = _console()
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

    from fer_core.store import ModelStore

    store = ModelStore()
    table = Table(title=f"model store {store.root}")
    for col in ("run", "architecture", "status", "epochs", "val acc", "dataset"):
        table.add_column(col, no_wrap=col in ("run", "status"))
    for run in store.list_runs():
        meta = run.meta
        ds = meta.get("dataset") or {}
        table.add_row(run.run_id, str(meta.get("architecture", "-")),
                      run.status + (f" ({run.error})" if run.error else ""),
                      str(len(meta.get("history") or [])), _pct(run.metrics.get("val_accuracy")),
                      str(ds.get("name", "-")))
    _console().print(table)
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fer_core", description="fer-studio: facial emotion recognition on FER-2013.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--no-progress", action="store_true",
                        help="no progress output (bars are drawn only when stderr is a terminal)")

    d = sub.add_parser("data", help="load a dataset and print its class table and data problems")
    d.add_argument("source", help="'demo', a Kaggle image-folder zip, its extracted folder, or fer2013.csv")
    d.add_argument("--no-cache", action="store_true", help="decode again even if a cached copy exists")
    d.add_argument("--json", metavar="FILE", help="also write the full load report as JSON")
    common(d)
    d.set_defaults(func=cmd_data)

    t = sub.add_parser("train", help="train a model into the model store")
    t.add_argument("--data", default="demo", help="dataset source (default: demo)")
    t.add_argument("--arch", help="architecture: mini_xception (default), seed_cnn, vgg_fer, vgg_compact")
    t.add_argument("--recommended", action="store_true", help="start from the architecture's recommended recipe")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--random-erasing", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=None)
    t.add_argument("--val", help="validation: a fraction of train such as 0.2 (stratified) or a split name")
    t.add_argument("--patience", type=int, help="early-stopping patience in epochs (0: off)")
    t.add_argument("--label-smoothing", type=float)
    t.add_argument("--lr-schedule", choices=["plateau", "cosine"],
                   help="plateau: halve the rate when val_loss stalls (default); cosine: decay over --epochs")
    t.add_argument("--weight-decay", type=float, help="decoupled weight decay (default: 1e-4 for adamw, 0 otherwise)")
    t.add_argument("--warmup-epochs", type=int, help="cosine schedule: linear warm-up epochs (default 0)")
    t.add_argument("--precision", choices=["float32", "bf16"],
                   help="bf16: bfloat16 compute, float32 weights (default where the CPU or GPU runs it natively)")
    t.add_argument("--resume", metavar="RUN",
                   help="continue a stopped, failed or killed run from its last complete epoch (same --data)")
    t.add_argument("--seed", type=int)
    t.add_argument("--name", help="a name for the run")
    t.add_argument("--max-train-images", type=int, help="use a stratified subset of train (quick runs)")
    t.add_argument("--run-id", help=argparse.SUPPRESS)
    t.add_argument("--config-json", help="training settings as one JSON object (CLI flags override it)")
    t.add_argument("--evaluate", metavar="SPLIT", nargs="?", const="test", help="evaluate on SPLIT (default test) after training")
    common(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a run on a dataset split and print the metric table")
    e.add_argument("run", nargs="?", help="run id (default: the default model)")
    e.add_argument("--data", default="demo", help="dataset source (default: demo)")
    e.add_argument("--split", default="test")
    e.add_argument("--tta", action="store_true", help="test-time augmentation (average with the flipped image)")
    e.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    common(e)
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="find faces in images and classify their expression")
    pr.add_argument("images", nargs="+", help="image files (JPEG, PNG, WebP)")
    pr.add_argument("--run", help="run id (default: the default model)")
    pr.add_argument("--detector", default="auto", help="face detector (default: auto)")
    pr.add_argument("--whole-image", action="store_true", help="classify the whole image when no face is found")
    pr.add_argument("--csv", metavar="FILE", help="write one row per face to a CSV file")
    pr.add_argument("--annotate", metavar="DIR", help="write annotated copies of the images into DIR")
    common(pr)
    pr.set_defaults(func=cmd_predict)

    r = sub.add_parser("runs", help="list the runs in the model store")
    r.set_defaults(func=cmd_runs)

    from fer_core.cli_models import add_parsers

    add_parsers(sub, common)  # import, conventions, export
    return p


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    # Progress bars redraw many times a second: on a terminal that is one line, in a pipe or a
    # log file it is hundreds. Without a terminal, print per-epoch lines at most.
    args.progress_bars = not getattr(args, "no_progress", True) and sys.stderr.isatty()
    try:
        return int(args.func(args) or 0)
    except TrainingBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except FerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
