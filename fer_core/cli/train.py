"""`python -m fer_core train`: train a run (or --resume one) with progress per epoch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fer_core.cli.common import add_common, console, load_data, pct, print_evaluation
from fer_core.errors import FerError, TrainingBusyError


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
    from fer_core.store.runs import ModelStore
    from fer_core.training.resuming import resume, resume_check

    given = [f"--{k.replace('_', '-')}" for k in _RESUME_CONFLICTS
             if getattr(args, k, None) is not None and not (k == "recommended" and not args.recommended)]
    if given:
        raise FerError(f"--resume continues the run with the settings it was started with; drop {', '.join(given)}")
    store = ModelStore()
    store.check_not_training()
    resume_check(store, args.resume)  # finished / no checkpoint: say so before loading any data
    ds = load_data(args.data, args.progress_bars)
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


def cmd_train(args: argparse.Namespace) -> int:
    from fer_core.store.runs import ModelStore

    if args.resume:
        return cmd_resume(args)
    config = _train_config(args)
    store = ModelStore()
    store.check_not_training()
    ds = load_data(args.data, args.progress_bars)

    from fer_core.training.loop import build_run_meta, train

    run_id = args.run_id
    if run_id:
        store.create_run(build_run_meta(ds, config), run_id=run_id)
    con = console()
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
        f"val accuracy {pct(metrics.get('val_accuracy'))}; model at {info.model_path}"
    )
    if args.evaluate and info.usable:
        from fer_core.inference.evaluation import evaluate_run

        split = args.evaluate
        result = evaluate_run(store, run_id, ds, split=split)
        print_evaluation(result)
    return 0 if info.status in ("finished", "stopped") else 1


def _delete_quietly(store: Any, run_id: str) -> None:
    try:
        store.delete(run_id)
    except FerError:
        pass


def add_parsers(sub: Any) -> None:
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
    add_common(t)
    t.set_defaults(func=cmd_train, loads_models=True)
