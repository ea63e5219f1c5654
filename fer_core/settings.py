"""Every setting fer-studio reads from the environment, in one place: the names, defaults and parsing.

    FER_MODELS_DIR          the model store (default: models/ in the project)      paths.models_dir
    FER_CACHE_DIR           decoded-dataset cache (default: $XDG_CACHE_HOME or ~/.cache, /fer-studio)
    FER2013_ZIP             the team's FER-2013 zip, where not ../shared/data/fer2013.zip
    FER_PRELOAD             "0" / "false" / "no" / "off": no background preload of the default model
    FER_MAX_MODEL_MB        largest model file accepted (default 256)
    FER_RTC_CONFIGURATION   the webcam's WebRTC configuration (JSON text or a path to a JSON file)
    RAY_ADDRESS             Ray's own: the cluster a `batch --engine ray` joins when --address is not given
                            (set by `ray job submit`)

Read at call time (a test or a server may change them). No other module reads os.environ
(tests/test_layout.py); a process started for a training copies the environment as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

MODELS_DIR = "FER_MODELS_DIR"
CACHE_DIR = "FER_CACHE_DIR"
FER2013_ZIP = "FER2013_ZIP"
PRELOAD = "FER_PRELOAD"
MAX_MODEL_MB = "FER_MAX_MODEL_MB"
RTC_CONFIGURATION = "FER_RTC_CONFIGURATION"
RAY_ADDRESS = "RAY_ADDRESS"
DEFAULT_MAX_MODEL_MB = 256.0


def text(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The variable's value, stripped ("" when unset)."""
    return (os.environ if environ is None else environ).get(name, "").strip()


def xdg_cache_home() -> str:
    return text("XDG_CACHE_HOME")


def preload_enabled() -> bool:
    return text(PRELOAD).lower() not in ("0", "false", "no", "off")


def max_model_mb() -> float:
    """FER_MAX_MODEL_MB as a number (the default when unset or not a number; at least 0.001)."""
    try:
        mb = float(text(MAX_MODEL_MB) or DEFAULT_MAX_MODEL_MB)
    except ValueError:
        mb = DEFAULT_MAX_MODEL_MB
    return max(mb, 0.001)
