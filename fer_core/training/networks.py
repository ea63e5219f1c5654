"""The Keras layer graphs behind fer_core.training.architectures (imports Keras: load it lazily).

One builder per architecture: `(inputs, num_classes, seeds) -> outputs`; see the
descriptions in fer_core.training.architectures. The output layer is float32 under any dtype policy:
with bf16 mixed precision (fer_core.training.precision) the softmax and the loss stay float32.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
from keras import layers

# Faster-moving BatchNorm statistics than Keras' 0.99: short runs (a few hundred steps)
# otherwise evaluate with statistics still dominated by their initial values.
BN_MOMENTUM = 0.9


def seeds(seed: int | None) -> Iterator[int | None]:
    """A distinct seed per initializer (or None forever when no seed was given)."""
    i = 0
    while True:
        yield None if seed is None else seed + i
        i += 1


def _he(seeds: Iterator[int | None]) -> keras.initializers.Initializer:
    return keras.initializers.HeNormal(seed=next(seeds))


def _glorot(seeds: Iterator[int | None]) -> keras.initializers.Initializer:
    return keras.initializers.GlorotUniform(seed=next(seeds))


def _dropout(rate: float, seeds: Iterator[int | None]) -> layers.Dropout:
    return layers.Dropout(rate, seed=next(seeds))


def _seed_cnn(inputs: keras.KerasTensor, num_classes: int, seeds: Iterator[int | None]) -> keras.KerasTensor:
    x = inputs
    for b, filters in enumerate((64, 128, 256), start=1):
        for c in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                              kernel_initializer=_he(seeds), name=f"block{b}_conv{c}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{b}_bn{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
        x = _dropout(0.25, seeds)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(256, activation="relu", kernel_initializer=_he(seeds), name="fc")(x)
    x = _dropout(0.5, seeds)(x)
    return layers.Dense(num_classes, activation="softmax", kernel_initializer=_glorot(seeds),
                        dtype="float32", name="predictions")(x)


def _mini_xception(inputs: keras.KerasTensor, num_classes: int, seeds: Iterator[int | None]) -> keras.KerasTensor:
    x = inputs
    for c in (1, 2):
        x = layers.Conv2D(8, 3, padding="same", use_bias=False, kernel_initializer=_he(seeds),
                          name=f"stem_conv{c}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"stem_bn{c}")(x)
        x = layers.Activation("relu", name=f"stem_relu{c}")(x)
    for m, filters in enumerate((16, 32, 64, 128), start=1):
        # Shortcut: 2x2 average pooling then a 1x1 conv (ResNet-D style) instead of a
        # 1x1 conv with stride 2, whose oneDNN gradient crashes the process (segfault /
        # double free) on batches whose size is not a multiple of 4 (TF 2.21 CPU).
        residual = layers.AveragePooling2D(2, strides=2, padding="same", name=f"module{m}_shortcut_pool")(x)
        residual = layers.Conv2D(filters, 1, padding="same", use_bias=False,
                                 kernel_initializer=_he(seeds), name=f"module{m}_shortcut")(residual)
        residual = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"module{m}_shortcut_bn")(residual)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_initializer=_he(seeds), pointwise_initializer=_he(seeds),
                                   name=f"module{m}_sepconv1")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"module{m}_bn1")(x)
        x = layers.Activation("relu", name=f"module{m}_relu1")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                   depthwise_initializer=_he(seeds), pointwise_initializer=_he(seeds),
                                   name=f"module{m}_sepconv2")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"module{m}_bn2")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"module{m}_pool")(x)
        x = layers.Add(name=f"module{m}_add")([x, residual])
    x = _dropout(0.2, seeds)(x)
    x = layers.Conv2D(num_classes, 3, padding="same", kernel_initializer=_glorot(seeds),
                      name="class_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return layers.Activation("softmax", dtype="float32", name="predictions")(x)


def _vgg(inputs: keras.KerasTensor, num_classes: int, seeds: Iterator[int | None],
         widths: tuple[int, ...], dense: int) -> keras.KerasTensor:
    """VGG-style stages of two 3x3 Conv+BN+ReLU, max-pooling and dropout, GAP, Dense, softmax."""
    x = inputs
    for s, (filters, drop) in enumerate(zip(widths, (0.2, 0.25, 0.3, 0.35)), start=1):
        for c in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                              kernel_initializer=_he(seeds), name=f"stage{s}_conv{c}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"stage{s}_bn{c}")(x)
            x = layers.Activation("relu", name=f"stage{s}_relu{c}")(x)
        x = layers.MaxPooling2D(2, name=f"stage{s}_pool")(x)
        x = _dropout(drop, seeds)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(dense, use_bias=False, kernel_initializer=_he(seeds), name="fc")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="fc_bn")(x)
    x = layers.Activation("relu", name="fc_relu")(x)
    x = _dropout(0.5, seeds)(x)
    return layers.Dense(num_classes, activation="softmax", kernel_initializer=_glorot(seeds),
                        dtype="float32", name="predictions")(x)


def _vgg_fer(inputs: keras.KerasTensor, num_classes: int, seeds: Iterator[int | None]) -> keras.KerasTensor:
    return _vgg(inputs, num_classes, seeds, (64, 128, 256, 512), 512)


def _vgg_compact(inputs: keras.KerasTensor, num_classes: int, seeds: Iterator[int | None]) -> keras.KerasTensor:
    return _vgg(inputs, num_classes, seeds, (32, 64, 128, 256), 256)


def _vgg_fer64(inputs: keras.KerasTensor, num_classes: int, seeds: Iterator[int | None]) -> keras.KerasTensor:
    # The face enters at 48 px like every model's (one engine, one crop) and is upsampled inside the
    # network: each stage then sees 4/3 more detail, and the last one a 4x4 map instead of 3x3.
    x = layers.Resizing(64, 64, interpolation="bilinear", name="upsample64")(inputs)
    return _vgg(x, num_classes, seeds, (64, 128, 256, 512), 512)


def _basic_block(x: keras.KerasTensor, filters: int, stride: int, name: str,
                 seeds: Iterator[int | None]) -> keras.KerasTensor:
    """ResNet basic block (two 3x3 convs); a downsampling shortcut pools then applies a 1x1 conv
    (ResNet-D; a strided 1x1 conv's oneDNN gradient crashes on odd batch sizes, see mini_xception)."""
    shortcut = x
    if stride != 1 or int(x.shape[-1]) != filters:
        if stride != 1:
            shortcut = layers.AveragePooling2D(stride, strides=stride, padding="same", name=f"{name}_pool")(shortcut)
        shortcut = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=_he(seeds),
                                 name=f"{name}_shortcut")(shortcut)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_shortcut_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, kernel_initializer=_he(seeds),
                      name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=_he(seeds),
                      name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, gamma_initializer="zeros", name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def _resnet18(inputs: keras.KerasTensor, num_classes: int, seeds: Iterator[int | None]) -> keras.KerasTensor:
    """ResNet-18 for 48 px faces: a 3x3 stem without max-pooling, stages of 2 basic blocks at
    64-128-256-512 filters (48 -> 24 -> 12 -> 6 px), GAP, dropout, softmax."""
    x = layers.Conv2D(64, 3, padding="same", use_bias=False, kernel_initializer=_he(seeds), name="stem_conv")(inputs)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for s, filters in enumerate((64, 128, 256, 512), start=1):
        for b in (1, 2):
            x = _basic_block(x, filters, 2 if (b == 1 and s > 1) else 1, f"stage{s}_block{b}", seeds)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = _dropout(0.3, seeds)(x)
    return layers.Dense(num_classes, activation="softmax", kernel_initializer=_glorot(seeds),
                        dtype="float32", name="predictions")(x)


BUILDERS = {
    "seed_cnn": _seed_cnn,
    "mini_xception": _mini_xception,
    "vgg_fer": _vgg_fer,
    "vgg_compact": _vgg_compact,
    "vgg_fer64": _vgg_fer64,
    "resnet18": _resnet18,
}
