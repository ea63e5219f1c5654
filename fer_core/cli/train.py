"""`python -m fer_core train`: train a run (or --resume one) with progress per epoch."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any

from fer_core.cli.common import add_common, console, load_data, pct, print_evaluation
from fer_core.errors import FerError


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
    from fer_core.training.config import TrainConfig

    data = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    return TrainConfig.from_settings(data, recommended=args.recommended)


def _refuse_settings(args: argparse.Namespace, mode: str, extra: tuple[str, ...] = ()) -> None:
    """--run and --resume train with the settings stored in the run: refuse any given on the command line."""
    from fer_core.training.config import TrainConfig

    names = (*(f.name for f in fields(TrainConfig)), "recommended", "run_id", *extra)
    given = [f"--{k.replace('_', '-')}" for k in names
             if getattr(args, k, None) is not None and not (k == "recommended" and not args.recommended)]
    if given:
        raise FerError(f"{mode} trains with the settings stored in the run; drop {', '.join(given)}")


def cmd_resume(args: argparse.Namespace) -> int:
    """`train --resume RUN`: continue a stopped, failed or killed run with its own settings."""
    from fer_core.store.default_model import resolve_run
    from fer_core.store.runs import ModelStore
    from fer_core.training.jobs import resume_source
    from fer_core.training.resuming import resume, resume_check

    _refuse_settings(args, "--resume", extra=("run",))
    store = ModelStore()
    store.check_not_training()
    args.resume = resolve_run(store, args.resume).run_id  # a run id or a unique run name
    resume_check(store, args.resume)  # finished / no checkpoint: say so before loading any data
    ds = load_data(args.data or resume_source(store, args.resume, "demo"), args.progress_bars)
    con = console()
    try:
        run_id = resume(
            ds, args.resume, store=store,
            callbacks=_keras_progress_callback(not args.no_progress, args.progress_bars),
            on_start=lambda rid: con.print(f"resuming run {rid} in {store.root}"),
        )
    except KeyboardInterrupt:
        return 130
    return _report_run(args, store, run_id, ds, con)


def cmd_run(args: argparse.Namespace) -> int:
    """`train --run RUN`: the worker of a run the app created (training.worker has the contract)."""
    from fer_core.store.runs import ModelStore
    from fer_core.training.worker import train_created_run

    _refuse_settings(args, "--run", extra=("data",))
    store = ModelStore()
    con = console()
    datasets: list[Any] = []

    def load(source: str) -> Any:
        datasets.append(load_data(source, args.progress_bars))
        return datasets[-1]

    try:
        run_id = train_created_run(
            store, args.run, load,
            callbacks=_keras_progress_callback(not args.no_progress, args.progress_bars),
            on_start=lambda rid: con.print(f"training run {rid} in {store.root}"),
        )
    except KeyboardInterrupt:
        return 130
    return _report_run(args, store, run_id, datasets[-1], con)


def cmd_train(args: argparse.Namespace) -> int:
    from fer_core.store.runs import ModelStore

    if args.resume:
        return cmd_resume(args)
    if args.run:
        return cmd_run(args)
    config = _train_config(args)
    store = ModelStore()
    store.check_not_training()
    ds = load_data(args.data or "demo", args.progress_bars)

    from fer_core.training.loop import train

    con = console()
    try:
        run_id = train(
            ds, config, store=store, run_id=args.run_id,
            callbacks=_keras_progress_callback(not args.no_progress, args.progress_bars),
            on_start=lambda rid: con.print(f"training run {rid} ({config.architecture}) in {store.root}"),
        )
    except KeyboardInterrupt:
        return 130
    return _report_run(args, store, run_id, ds, con)


def _report_run(args: argparse.Namespace, store: Any, run_id: str, ds: Any, con: Any) -> int:
    """Print how a run ended (and evaluate it with --evaluate); exit status 0 unless it failed."""
    info = store.get(run_id)
    metrics = info.metrics
    con.print(
        f"run {run_id}: {info.status}; best epoch {info.meta.get('best_epoch')}, "
        f"val accuracy {pct(metrics.get('val_accuracy'))}; model at {info.model_path}"
    )
    if args.evaluate and info.usable:
        from fer_core.inference.evaluation import evaluate_run

        split = args.evaluate
        result = evaluate_run(store, run_id, ds, split=split)
        print_evaluation(result)
    return 0 if info.status in ("finished", "stopped") else 1


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field, from the field's metadata (flags, type, help, choices); unset: None."""
    from fer_core.training.config import TrainConfig

    for f in fields(TrainConfig):
        meta = f.metadata
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": meta["help"]}
        if meta["type"] is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = meta["type"]
            if meta.get("choices"):
                kwargs["choices"] = meta["choices"]
        parser.add_argument(*meta["cli"], **kwargs)


def add_parsers(sub: Any) -> None:
    t = sub.add_parser("train", help="train a model into the model store")
    t.add_argument("--data", help="dataset source (default: demo)")
    t.add_argument("--recommended", action="store_true", help="start from the architecture's recommended recipe")
    add_config_options(t)
    t.add_argument("--resume", metavar="RUN",
                   help="continue a stopped, failed or killed run (id or name) from its last complete epoch, "
                        "on the dataset it was trained on (or --data: the same data, checked by fingerprint)")
    t.add_argument("--run-id", help="id of the new run (default: date-time-architecture)")
    t.add_argument("--run", metavar="RUN_ID",
                   help="train a run the app created (status 'starting') with the settings and dataset stored "
                        "in it: how the Train page's worker process is started (docs/DESIGN.md)")
    t.add_argument("--evaluate", metavar="SPLIT", nargs="?", const="test", help="evaluate on SPLIT (default test) after training")
    add_common(t)
    t.set_defaults(func=cmd_train, loads_models=True)
