"""Architectures: registry, output shapes, parameter budgets, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.training.architectures import ARCHITECTURES, build_model, get_spec


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("mini_xception", 20_000, 100_000),
        ("seed_cnn", 1_200_000, 1_230_000),  # the seed design: 1,215,431 with grayscale input
        ("vgg_fer", 2_000_000, 6_000_000),  # < ~25 MB as float32
        ("vgg_compact", 1_000_000, 1_500_000),  # vgg_fer at half the width: ~1/4 of its weights
        ("vgg_fer64", 2_000_000, 6_000_000),  # vgg_fer's weights: the upsampling has none
        ("resnet18", 10_000_000, 12_000_000),  # ResNet-18's 11M
    ],
)
def test_build_shapes_and_param_budget(name: str, lo: int, hi: int) -> None:
    model = build_model(name)
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)
    assert lo <= model.count_params() <= hi
    probs = np.asarray(model(np.random.default_rng(0).random((2, 48, 48, 1), dtype=np.float32), training=False))
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_seed_cnn_is_the_seed_design() -> None:
    model = build_model("seed_cnn")
    assert model.count_params() == 1_215_431
    convs = [layer.filters for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert convs == [64, 64, 128, 128, 256, 256]


def test_registry_specs() -> None:
    assert set(ARCHITECTURES) == {"seed_cnn", "mini_xception", "vgg_fer", "vgg_compact", "vgg_fer64", "resnet18"}
    for name, spec in ARCHITECTURES.items():
        assert spec.name == name
        assert spec.epochs > 0 and spec.batch_size > 0 and 0 < spec.learning_rate < 1
        assert spec.optimizer in ("adam", "adamw", "sgd")
        assert spec.description


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match="mini_xception") as exc:
        build_model("resnet999")
    assert "seed_cnn" in str(exc.value) and "vgg_fer" in str(exc.value)
    with pytest.raises(ValueError):
        get_spec("nope")


def test_rgb_input_and_class_count() -> None:
    model = build_model("mini_xception", input_shape=(64, 64, 3), num_classes=5)
    assert model.input_shape == (None, 64, 64, 3)
    assert model.output_shape == (None, 5)


def test_seed_makes_weights_reproducible() -> None:
    a = build_model("mini_xception", seed=7).get_weights()
    b = build_model("mini_xception", seed=7).get_weights()
    c = build_model("mini_xception", seed=8).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_training_steps_on_odd_batch_sizes_do_not_crash() -> None:
    """oneDNN (TF 2.21 CPU) crashes the process in the gradient of a 1x1 stride-2 conv on
    batches whose size is not a multiple of 4: every architecture must train on such batches.
    Runs in a subprocess because the failure is a segfault, not an exception."""
    import os
    import subprocess
    import sys

    from fer_core.paths import PROJECT_ROOT

    code = (
        "import numpy as np\n"
        "from fer_core.training.architectures import ARCHITECTURES, build_model\n"
        "rng = np.random.default_rng(0)\n"
        "for name in ARCHITECTURES:\n"
        "    m = build_model(name, seed=0)\n"
        "    m.compile(optimizer='adam', loss='categorical_crossentropy')\n"
        "    for b in (5,):\n"
        "        x = rng.random((b, 48, 48, 1), dtype=np.float32)\n"
        "        m.train_on_batch(x, np.eye(7, dtype=np.float32)[rng.integers(0, 7, b)])\n"
        "print('trained', flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert proc.returncode == 0 and "trained" in proc.stdout, proc.stderr[-2000:]


def test_listing_architectures_does_not_import_tensorflow() -> None:
    """The Train page lists architectures on first render: that must not cost a TF import."""
    import subprocess
    import sys

    from fer_core.paths import PROJECT_ROOT

    code = (
        "import sys\n"
        "from fer_core.training.architectures import ARCHITECTURES, get_spec\n"
        "assert get_spec('vgg_fer').name == 'vgg_fer' and len(ARCHITECTURES) == 6\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_vgg_compact_is_vgg_fer_at_half_width() -> None:
    full, half = build_model("vgg_fer"), build_model("vgg_compact")
    convs = [layer.name for layer in full.layers if layer.name.endswith(("_conv1", "_conv2"))]
    assert convs == [layer.name for layer in half.layers if layer.name.endswith(("_conv1", "_conv2"))]
    for name in convs:
        assert half.get_layer(name).filters * 2 == full.get_layer(name).filters
    assert half.get_layer("fc").units * 2 == full.get_layer("fc").units


def test_vgg_fer64_is_vgg_fer_on_a_64_px_face() -> None:
    full, big = build_model("vgg_fer"), build_model("vgg_fer64")
    assert full.count_params() == big.count_params() and big.input_shape == (None, 48, 48, 1)
    assert big.get_layer("upsample64").output.shape[1:3] == (64, 64)
    assert big.get_layer("stage4_pool").output.shape[1:3] == (4, 4) and full.get_layer("stage4_pool").output.shape[1:3] == (3, 3)


def test_resnet18_has_eight_basic_blocks_down_to_6_px() -> None:
    model = build_model("resnet18")
    adds = [layer for layer in model.layers if type(layer).__name__ == "Add"]
    assert len(adds) == 8
    assert [a.output.shape[1] for a in adds] == [48, 48, 24, 24, 12, 12, 6, 6]
    assert not [layer.name for layer in model.layers
                if type(layer).__name__ == "Conv2D" and layer.kernel_size == (1, 1) and layer.strides != (1, 1)]
