"""Small models trained the way other tools train theirs, on the built-in demo set.

- "notebook": the classic FER-2013 notebook's convention (`fer_cnn_model.h5`): 48x48 RGB input,
  pixels in [0, 1], classes in the image folders' alphabetical order.
- "fer_package": the `fer` package's mini-Xception convention: 64x64 grayscale, pixels in
  [-1, 1], classes in FER-2013 CSV order.

Each is a small mini-Xception trained for a few epochs on the demo set's train split (about
half a minute on 2 cores), so that importing it with the right conventions gives correct labels and
the wrong ones visibly do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_core.labels import ALPHABETICAL_LABELS, FER_LABELS, remap_indices
from fer_core.preprocess import prepare_faces


@dataclass(frozen=True)
class Convention:
    name: str
    input_shape: tuple[int, int, int]
    scale: str
    labels: tuple[str, ...]
    order: str  # "csv" | "alphabetical"

    @property
    def preprocessing(self) -> dict[str, str]:
        return {"color": "rgb" if self.input_shape[2] == 3 else "grayscale", "scale": self.scale}


NOTEBOOK = Convention("notebook", (48, 48, 3), "0-1", ALPHABETICAL_LABELS, "alphabetical")
FER_PACKAGE = Convention("fer_package", (64, 64, 1), "-1-1", FER_LABELS, "csv")


def build_cnn(input_shape: tuple[int, int, int], num_classes: int = 7, name: str = "foreign_cnn"):
    """A mini-Xception (the `fer` package's architecture family) for any input shape."""
    from fer_core.training.architectures import build_model

    model = build_model("mini_xception", input_shape=input_shape, num_classes=num_classes)
    model.name = name
    return model


def train_foreign(conv: Convention, dataset, epochs: int = 6, seed: int = 0):
    """A model trained on `dataset`'s train split in `conv`'s conventions (its own label order)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    train = dataset.splits["train"]
    x = prepare_faces(train.images, conv.input_shape, conv.preprocessing)
    y = remap_indices(train.labels, FER_LABELS, conv.labels)  # dataset indices -> the model's order
    model = build_cnn(conv.input_shape, name=conv.name)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed).batch(64, drop_remainder=True)
    opts = tf.data.Options()
    opts.autotune.enabled = False  # NOTES.md: autotune stalls epochs on this CPU
    model.fit(ds.with_options(opts).prefetch(2), epochs=epochs, shuffle=False, verbose=0)
    return model


def model_predictions(model, conv: Convention, images: np.ndarray) -> np.ndarray:
    """The model's predicted class indices, in FER_LABELS order (what it means, not its raw index)."""
    x = prepare_faces(images, conv.input_shape, conv.preprocessing)
    raw = np.asarray(model(x, training=False)).argmax(axis=1)
    return remap_indices(raw, conv.labels, FER_LABELS)
