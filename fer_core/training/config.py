"""Training settings (TrainConfig): defaults, validation with clear messages, the cosine schedule."""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import numpy as np

from fer_core.training.architectures import ARCHITECTURES, DEFAULT_ARCHITECTURE
from fer_core.training.precision import PRECISIONS, default_precision

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("plateau", "cosine")
INPUT_SHAPE = (48, 48, 1)
STOP_CHECK_EVERY = 20  # batches

# Augmentation ranges of both training feeds (pipeline.py's tf.data, feeding.py's NumPy one).
ROTATION_DEG = 10.0
SHIFT_FRACTION = 0.1
ZOOM_FRACTION = 0.1
ERASE_PROBABILITY = 0.5
ERASE_AREA = (0.02, 0.2)
ERASE_ASPECT = (0.3, 3.3)


def _cli(*flags: str, type: type, help: str, choices: tuple[str, ...] | None = None) -> dict[str, Any]:  # noqa: A002
    """A field's command-line option(s), value type, help and choices: fer_core.cli.train builds the
    `train` parser from these, so a setting is defined once (tests/test_cli.py checks the Train page too)."""
    return {"cli": flags, "type": type, "help": help, "choices": choices}


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (stored as meta.json "params")."""

    architecture: str = field(default=DEFAULT_ARCHITECTURE, metadata=_cli(
        "--arch", type=str, choices=tuple(ARCHITECTURES), help=f"architecture (default: {DEFAULT_ARCHITECTURE})"))
    epochs: int = field(default=30, metadata=_cli("--epochs", type=int, help="full passes over the training images"))
    batch_size: int = field(default=64, metadata=_cli("--batch-size", type=int, help="images per training step"))
    learning_rate: float = field(default=1e-3, metadata=_cli("--lr", "--learning-rate", type=float,
                                                             help="learning rate"))
    optimizer: str = field(default="adam", metadata=_cli(  # SGD: Nesterov momentum 0.9
        "--optimizer", type=str, choices=OPTIMIZERS, help="adam, adamw or sgd (Nesterov momentum 0.9)"))
    augment: bool = field(default=True, metadata=_cli("--augment", type=bool,
                                                      help="flips, rotations, shifts and zoom of the training images"))
    random_erasing: bool = field(default=False, metadata=_cli("--random-erasing", type=bool,
                                                              help="erase a random patch of training images"))
    camera_augment: bool = field(default=False, metadata=_cli(
        "--camera-augment", type=bool,
        help="blur, JPEG, noise, brightness/contrast, low resolution and occlusion of training images (webcam-like)"))
    mixup: float = field(default=0.0, metadata=_cli(
        "--mixup", type=float,
        help="mixup: blend pairs of training faces and their targets, weight from Beta(alpha, alpha); "
             "the alpha, 0 off (0.2 is usual)"))
    cutmix: float = field(default=0.0, metadata=_cli(
        "--cutmix", type=float,
        help="CutMix: paste a patch of another training face, targets by area, Beta(alpha, alpha); "
             "the alpha, 0 off (1.0 is usual; with --mixup each batch gets one of the two)"))
    teachers: list[str] | None = field(default=None, metadata=_cli(
        "--teacher", "--teachers", type=str,
        help="distil from these runs (ids or names, comma-separated): their mean probabilities on each "
             "training face (with its mirror image) become its target"))
    distill_weight: float = field(default=0.7, metadata=_cli(
        "--distill-weight", type=float,
        help="with --teacher: the teachers' share of each target, the rest being the true label (default 0.7)"))
    class_weights: bool = field(default=False, metadata=_cli(  # sklearn compute_class_weight("balanced")
        "--class-weights", type=bool, help="weigh classes by inverse frequency (balanced)"))
    validation: str = field(default="0.2", metadata=_cli(
        "--val", "--validation", type=str,
        help="validation: a fraction of train such as 0.2 (stratified) or a split name such as test"))
    early_stopping_patience: int = field(default=8, metadata=_cli(
        "--patience", "--early-stopping-patience", type=int, help="early-stopping patience in epochs (0: off)"))
    reduce_lr_patience: int = field(default=4, metadata=_cli(
        "--reduce-lr-patience", type=int, help="plateau schedule: halve the rate after this many epochs without a "
                                               "better val_loss (0: off)"))
    lr_schedule: str = field(default="plateau", metadata=_cli(
        "--lr-schedule", type=str, choices=LR_SCHEDULES,
        help="plateau: halve the rate when val_loss stalls (default); cosine: decay to ~0 over --epochs"))
    warmup_epochs: int = field(default=0, metadata=_cli(
        "--warmup-epochs", type=int, help="cosine schedule: linear warm-up from a tenth of the rate (default 0)"))
    label_smoothing: float = field(default=0.0, metadata=_cli("--label-smoothing", type=float,
                                                              help="label smoothing in [0, 1)"))
    weight_decay: float | None = field(default=None, metadata=_cli(
        "--weight-decay", type=float, help="decoupled weight decay (default: 1e-4 for adamw, none otherwise)"))
    seed: int = field(default=1234, metadata=_cli("--seed", type=int, help="random seed (weights, split, shuffles)"))
    name: str | None = field(default=None, metadata=_cli("--name", type=str, help="a name for the run"))
    max_train_images: int | None = field(default=None, metadata=_cli(
        "--max-train-images", type=int, help="use a stratified subset of train (quick runs)"))
    # "bf16": bfloat16 compute with float32 weights and a float32 softmax (fer_core.training.precision);
    # the default where the CPU (AMX / AVX512-BF16) or GPU runs it natively.
    precision: str = field(default_factory=default_precision, metadata=_cli(
        "--precision", type=str, choices=PRECISIONS,
        help="bf16: bfloat16 compute, float32 weights (default where the CPU or GPU runs it natively)"))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with a clear message for any value out of range."""
        from fer_core.training.architectures import ARCHITECTURES

        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"Unknown architecture {self.architecture!r}. Known architectures: {', '.join(ARCHITECTURES)}."
            )
        _check_int("epochs", self.epochs, 1, 10_000)
        _check_int("batch_size", self.batch_size, 1, 4096)
        _check_int("early_stopping_patience", self.early_stopping_patience, 0, 10_000)
        _check_int("reduce_lr_patience", self.reduce_lr_patience, 0, 10_000)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        _check_int("warmup_epochs", self.warmup_epochs, 0, 10_000)
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})")
        if not isinstance(self.precision, str) or self.precision.lower() not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        self.precision = self.precision.lower()
        if self.max_train_images is not None:
            _check_int("max_train_images", self.max_train_images, 14, 10**9)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or not 0 < lr <= 1:
            raise ValueError(f"learning_rate must be a number in (0, 1]; got {lr!r}")
        self.learning_rate = float(lr)
        wd = self.weight_decay
        if wd is not None:
            if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not math.isfinite(wd) or not 0 <= wd < 0.1:
                raise ValueError(f"weight_decay must be a number in [0, 0.1); got {wd!r}")
            self.weight_decay = float(wd)
        ls = self.label_smoothing
        if isinstance(ls, bool) or not isinstance(ls, (int, float)) or not 0 <= ls < 1:
            raise ValueError(f"label_smoothing must be a number in [0, 1); got {ls!r}")
        self.label_smoothing = float(ls)
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        self.optimizer = self.optimizer.lower()
        if not isinstance(self.lr_schedule, str) or self.lr_schedule.lower() not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}; got {self.lr_schedule!r}")
        self.lr_schedule = self.lr_schedule.lower()
        for flag in ("augment", "random_erasing", "camera_augment", "class_weights"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false; got {getattr(self, flag)!r}")
        for name in ("mixup", "cutmix"):
            alpha = getattr(self, name)
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 10:
                raise ValueError(f"{name} must be a Beta alpha in [0, 10] (0: off); got {alpha!r}")
            setattr(self, name, float(alpha))
        dw = self.distill_weight
        if isinstance(dw, bool) or not isinstance(dw, (int, float)) or not 0 <= dw <= 1:
            raise ValueError(f"distill_weight must be a number in [0, 1]; got {dw!r}")
        self.distill_weight = float(dw)
        self.teachers = _teacher_list(self.teachers)
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"name must be text; got {self.name!r}")
        self.validation = str(self.validation).strip()
        frac = self.validation_fraction
        if frac is not None:
            if not 0 < frac < 1 or frac > 0.5:
                raise ValueError(f"validation fraction must be in (0, 0.5]; got {self.validation!r}")
        elif not self.validation or self.validation == "train":
            raise ValueError(
                f"validation must be a fraction of train such as '0.2' or another split name such as 'test'; "
                f"got {self.validation!r}"
            )

    @property
    def validation_fraction(self) -> float | None:
        """The validation fraction, or None when validation names a split."""
        try:
            return float(self.validation)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict (unknown keys are an error, missing ones take defaults)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_settings(cls, data: dict[str, Any], recommended: bool = False) -> TrainConfig:
        """from_dict (or the architecture's recommended recipe overridden by `data`) for settings a user
        gave (the Train page, the CLI, a run the worker trains): FerError "bad training settings: ..."."""
        from fer_core.errors import FerError
        from fer_core.training.architectures import DEFAULT_ARCHITECTURE

        try:
            if recommended:
                rest = {k: v for k, v in data.items() if k != "architecture"}
                return cls.recommended(data.get("architecture") or DEFAULT_ARCHITECTURE, **rest)
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise FerError(f"bad training settings: {exc}") from None

    @classmethod
    def recommended(cls, architecture: str, **overrides: Any) -> TrainConfig:
        """The recommended recipe of an architecture (ARCHITECTURES), with overrides."""
        from fer_core.training.architectures import get_spec

        return cls(**{**get_spec(architecture).recommended_config(), **overrides})


#: Each field's default (the Train page starts its extra settings from these).
CONFIG_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig) if f.default_factory is MISSING}


def _teacher_list(value: Any) -> list[str] | None:
    """Teachers as a list of run ids or names (from a list, or text separated by commas); None when none."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
        raise ValueError(f"teachers must be run ids or names separated by commas; got {value!r}")
    names = [t.strip() for t in items if t.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"a teacher is named twice: {', '.join(names)}")
    if len(names) > 8:
        raise ValueError(f"at most 8 teachers; got {len(names)}")
    return names or None


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number in [{lo}, {hi}]; got {value!r}")


# --------------------------------------------------------------------------- data


def cosine_lr(epoch: int, lr: float | None = None, *, base: float, epochs: int, warmup: int = 0) -> float:
    """Learning rate of `epoch` (0-based): a linear warm-up from base/10 to `base` over `warmup`
    epochs, then cosine decay from `base` to base/100 over the remaining epochs."""
    if warmup > 0 and epoch < warmup:
        return float(base * (0.1 + 0.9 * epoch / warmup))
    floor = base / 100
    span = max(epochs - warmup - 1, 1)
    progress = min(max(epoch - warmup, 0), span) / span
    return float(floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
