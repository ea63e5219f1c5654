"""Training precision: which hardware gets bf16 by default, the policy scope, and bf16-trained models
saved and loaded as float32 (what the app, CLI and exports run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_core.store.model_files import float32_config
from fer_core.store.runs import ModelStore
from fer_core.training.architectures import ARCHITECTURES, build_model
from fer_core.training.config import TrainConfig
from fer_core.training.precision import (
    PRECISIONS,
    bf16_supported,
    cpu_flags,
    default_precision,
    keras_policy,
    precision_scope,
)


def test_cpu_flags_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\nbogomips\t: 1\n")
    assert {"amx_bf16", "avx512f", "sse2"} <= cpu_flags(info)
    assert cpu_flags(tmp_path / "missing") == set()


def test_bf16_only_where_it_runs_natively() -> None:
    assert bf16_supported({"amx_bf16"}) and bf16_supported({"avx512_bf16", "avx2"})
    no_gpu = not Path("/proc/driver/nvidia/gpus").is_dir()
    if no_gpu:
        assert not bf16_supported({"avx2", "avx512f"})  # emulated bf16 is slower than float32
    assert default_precision() == ("bf16" if bf16_supported() else "float32")
    assert TrainConfig().precision == default_precision()


def test_the_default_precision_says_why() -> None:
    from fer_core.training.precision import default_precision_reason

    assert default_precision_reason({"amx_bf16", "avx512_bf16"}).startswith("bf16: this CPU has AMX-BF16")
    assert default_precision_reason({"avx512_bf16"}) == "bf16: this CPU has AVX512-BF16"
    assert default_precision_reason({"sse2"}).startswith("float32") or Path("/proc/driver/nvidia/gpus").is_dir()


def test_unknown_precision_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="float32, bf16"):
        keras_policy("fp16")
    with pytest.raises(ValueError, match="precision must be one of float32, bf16"):
        TrainConfig(precision="fp16")
    assert TrainConfig(precision="float32").precision == "float32" and PRECISIONS == ("float32", "bf16")


def test_precision_scope_sets_and_restores_the_global_policy() -> None:
    import keras

    before = keras.mixed_precision.global_policy().name
    with precision_scope("bf16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(RuntimeError), precision_scope("bf16"):
        raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == before


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_bf16_models_keep_a_float32_softmax(arch: str) -> None:
    with precision_scope("bf16"):
        model = build_model(arch, seed=0)
    assert model.layers[-1].dtype_policy.name == "float32"
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in model.layers)


def test_bf16_model_is_saved_and_loaded_as_float32(tmp_path: Path) -> None:
    import keras

    with precision_scope("bf16"):
        model = build_model("mini_xception", seed=0)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 48, 48, 1), dtype=np.float32)
    y = keras.utils.to_categorical(np.arange(8) % 7, 7)
    model.fit(x, y, epochs=1, verbose=0)
    store = ModelStore(tmp_path)
    run = store.create_run({"architecture": "mini_xception"})
    store.save_model(run.run_id, model)
    loaded = store.load_model(run.run_id)
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}
    assert getattr(loaded, "optimizer", None) is None  # inference file: no optimizer slots
    out = np.asarray(loaded(x, training=False))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.asarray(model(x, training=False), dtype=np.float32), atol=3e-2)


def test_float32_config_rewrites_every_mixed_policy() -> None:
    config = {"layers": [
        {"config": {"dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}}},
        {"config": {"dtype": "mixed_float16", "units": 7}},
        {"config": {"dtype": {"class_name": "DTypePolicy", "config": {"name": "float32"}}}},
    ]}
    out = float32_config(config)
    assert out["layers"][0]["config"]["dtype"]["config"]["name"] == "float32"
    assert out["layers"][1]["config"] == {"dtype": "float32", "units": 7}
    assert out["layers"][2] == config["layers"][2]
    assert config["layers"][0]["config"]["dtype"]["config"]["name"] == "mixed_bfloat16"  # input untouched
