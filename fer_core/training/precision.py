"""Training precision: float32 or bfloat16 mixed precision (bf16 compute, float32 weights).

bf16 runs on this project's CPUs' AMX / AVX512-BF16 units (about 1.2-2x the float32
training throughput, see benchmarks/precision.py) and on recent GPUs. The softmax output
layer of every architecture stays float32, and models are always *saved* as float32
(fer_core.store.model_files.float32_config), so the app, the CLI, exports and TFLite load and predict in float32
whatever precision trained them. Nothing here imports TensorFlow at module level.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

PRECISIONS = ("float32", "bf16")
_POLICY = {"float32": "float32", "bf16": "mixed_bfloat16"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags Linux reports (empty where unknown)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_supported(flags: set[str] | None = None) -> bool:
    """Whether bf16 runs natively here: a CPU with AMX-BF16 / AVX512-BF16, or an NVIDIA GPU.

    Elsewhere bf16 is emulated and slower than float32, so it is not the default there.
    """
    flags = cpu_flags() if flags is None else flags
    if flags & {"amx_bf16", "avx512_bf16"}:
        return True
    return Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())


def default_precision() -> str:
    """"bf16" where the hardware runs it natively, "float32" otherwise."""
    return "bf16" if bf16_supported() else "float32"


def default_precision_reason(flags: set[str] | None = None) -> str:
    """Why `default_precision()` chose what it chose, in a few words (the Train page says it)."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "bf16: this CPU has AMX-BF16 units (about 2x float32 training speed)"
    if "avx512_bf16" in flags:
        return "bf16: this CPU has AVX512-BF16"
    if bf16_supported(flags):
        return "bf16: this machine has an NVIDIA GPU"
    return "float32: this CPU has no native bfloat16 (bf16 would be emulated, slower)"


def keras_policy(precision: str) -> str:
    """The Keras dtype policy name of a precision ("float32" | "bf16")."""
    try:
        return _POLICY[precision]
    except KeyError:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}") from None


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Models built inside use `precision` (Keras' global dtype policy, restored on exit)."""
    import keras

    policy = keras_policy(precision)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
